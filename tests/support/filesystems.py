"""Real small filesystems for the spool's tests: a size-limited tmpfs (ENOSPC for real) and a read-only one.

Mounting needs root (or CAP_SYS_ADMIN); where this process may not mount, the tests that need it skip
and say why.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted_tmpfs(size_kib: int, *, read_only: bool = False) -> Iterator[Path]:
    """A fresh tmpfs of ``size_kib`` KiB mounted on a temporary directory, unmounted afterwards."""
    mountpoint = Path(tempfile.mkdtemp(prefix="lcw-fs-"))
    options = f"size={size_kib}k,mode=0777" + (",ro" if read_only else "")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if result.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"this process may not mount a tmpfs: {result.stderr.strip() or result.returncode}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
        mountpoint.rmdir()


def remount(mountpoint: Path, *, read_only: bool) -> None:
    """Make a mounted tmpfs read-only or writable again, in place."""
    mode = "ro" if read_only else "rw"
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mountpoint)], check=True, capture_output=True)
