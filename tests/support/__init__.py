"""Support code of the test-suite, one concern per module (import as ``from tests.support.aws import ...``).

- ``aws``: the hermetic AWS environment, boto3 clients on moto, creating and reading back streams.
- ``moto_server``: starting moto, in this process (the tests) or in its own (the benchmarks).
- ``recorders``: botocore hooks recording what clients sent (``PutLogEventsRecorder``, ``ApiCallRecorder``).
- ``faults``: CloudWatch errors fabricated in-process (``FaultInjector``, ``Switch``, the ``FAULTS`` table).
- ``proxy``: ``FaultProxy``, a fault-injecting HTTP proxy in front of moto (also for child processes).
- ``problems``: ``on_error`` callbacks that collect what the sink reported (``Problems``, ``ProblemLog``).
- ``sinks``: adding a text-mode sink to loguru and logging numbered records.
- ``programs``: running child Python programs, and program texts they share.
- ``hostile``: values whose str(), repr(), isinstance() or iteration raise.
- ``waiting``: ``wait_for``, polling a condition with a deadline.
- ``fleet``: child processes released at the same instant.
- ``memory_shipper``: the worker without I/O (``MemoryShipper``, ``WorkerRig``).
- ``filesystems``: real small filesystems (a size-limited tmpfs, a read-only one) for the spool.

``bench/`` imports ``aws``, ``moto_server``, ``recorders`` and ``proxy``: those import neither pytest nor
moto at import time.
"""

from pathlib import Path

#: The repository root: child programs run from here, so ``import tests...`` works in them too.
REPO_ROOT = Path(__file__).resolve().parents[2]
