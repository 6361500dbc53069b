"""``python bench/run_all.py``: the same as ``python -m bench`` (every benchmark, one summary)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
