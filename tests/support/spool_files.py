"""Spool files for the spool's tests: numbered events, and the file a killed process leaves behind."""

from __future__ import annotations

from pathlib import Path

from loguru_cloudwatch._queue import Event
from loguru_cloudwatch._spool_dir import create_own

#: The stream the events of these files were written for, unless a test names another.
STREAM = "app-stream"


def events(first: int, count: int, size: int = 40, *, start_ms: int = 1_700_000_000_000) -> list[Event]:
    """``count`` events numbered from ``first``: sequence n, timestamp ``start_ms`` + n, a message naming n
    (``record 000042 éé…``, about ``size`` bytes)."""
    out = []
    for seq in range(first, first + count):
        message = f"record {seq:06d} " + "é" * max(0, (size - 14) // 2)
        out.append((start_ms + seq, seq, message, len(message.encode())))
    return out


def dead_file(
    directory: Path,
    stream: str,
    chunks: int,
    per_chunk: int,
    *,
    delivered: int = 0,
    in_flight: int = 0,
    group: str = "memory",
    start_ms: int = 1_700_000_000_000,
) -> Path:
    """What a killed process of ``group`` (``WorkerRig``'s by default) leaves: a spool file of ``chunks``
    chunks of ``per_chunk`` events numbered from 1, marked delivered and in flight as given, its lock
    released."""
    owned = create_own(directory, group, 1 << 20)
    for n in range(chunks):
        owned.spool.append(stream, events(1 + n * per_chunk, per_chunk, start_ms=start_ms))
    if delivered:
        owned.spool.delivered_through(delivered)
    if in_flight:
        owned.spool.mark_in_flight(in_flight)
    owned.spool.close()
    owned.ownership.release(remove=False)
    return owned.spool.path
