"""Prototype for issue 12 (a durable spool): SQLite or an append-only segment file, measured side by side.

The smallest version of each storage the spool could use, behind the same four calls: ``append`` a chunk
(one worker wake-up's records, packed), ``sync`` (fsync), ``pending`` (what is undelivered, in order, after a
restart; damage skipped and counted), ``delivered`` (drop the oldest chunk). Measured here:

- chunks/s and records/s into the spool, and the process CPU per record of append + read back + delivered,
  with each durability policy: survive a process kill (the data reached the OS) or a power loss (fsync);
- crash consistency under repeated SIGKILL of a writer process at random moments, then a new process on
  the same directory: every chunk the writer reported appended and not delivered must come back intact;
- ENOSPC on a real full filesystem (a 4 MiB tmpfs, when this process may mount one): what the failing
  append raises, whether the spool stays readable, and whether appends work again once space is freed.

    python -m bench.spool_engines [--records 100000] [--kills 20]

Nothing here is used by the package: it informs the choice (see the closing note of issue 12).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORD = struct.Struct("<qI")  # timestamp (ms), payload length
FRAME = struct.Struct("<4sII")  # magic, length, CRC32 of the chunk
MAGIC = b"LCW1"


def pack(records: list[tuple[int, bytes]]) -> bytes:
    return b"".join(RECORD.pack(ts, len(payload)) + payload for ts, payload in records)


def unpack(blob: bytes) -> list[tuple[int, bytes]]:
    records, at = [], 0
    while at < len(blob):
        ts, size = RECORD.unpack_from(blob, at)
        at += RECORD.size
        records.append((ts, blob[at : at + size]))
        at += size
    return records


class SqliteSpool:
    """One table, one row per chunk, WAL; ``synchronous`` NORMAL (kill-safe) or FULL (fsync per commit)."""

    def __init__(self, directory: Path, full_sync: bool = False) -> None:
        self.db = sqlite3.connect(directory / "spool.db", isolation_level=None, timeout=5)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if full_sync else 'NORMAL'}")
        self.db.execute("CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        self.damaged = 0

    def append(self, blob: bytes) -> None:
        self.db.execute("INSERT INTO chunks (data) VALUES (?)", (blob,))

    def sync(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def pending(self) -> Iterator[tuple[int, bytes]]:
        yield from self.db.execute("SELECT id, data FROM chunks ORDER BY id")

    def delivered(self, key: int) -> None:
        self.db.execute("DELETE FROM chunks WHERE id = ?", (key,))

    def close(self) -> None:
        self.db.close()


class SegmentSpool:
    """Append-only frames (magic, length, CRC32, chunk) in one file; a separate 8-byte+CRC delivered offset.

    A damaged frame is skipped by scanning for the next magic; a torn tail ends the read.
    """

    def __init__(self, directory: Path, fsync_each: bool = False) -> None:
        self.path = directory / "segment.log"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.ack_path = directory / "delivered"
        self.fsync_each = fsync_each
        self.damaged = 0
        self.start = self._read_ack()

    def _read_ack(self) -> int:
        try:
            data = self.ack_path.read_bytes()
            offset, crc = struct.unpack("<QI", data)
            return offset if zlib.crc32(data[:8]) == crc else 0
        except (OSError, struct.error):
            return 0

    def append(self, blob: bytes) -> None:
        frame = FRAME.pack(MAGIC, len(blob), zlib.crc32(blob)) + blob
        written = os.write(self.fd, frame)
        if written != len(frame):
            raise OSError(28, f"short write ({written} of {len(frame)} bytes)")
        if self.fsync_each:
            os.fsync(self.fd)

    def sync(self) -> None:
        os.fsync(self.fd)

    def pending(self) -> Iterator[tuple[int, bytes]]:
        data = self.path.read_bytes()
        at = self.start
        while at + FRAME.size <= len(data):
            magic, size, crc = FRAME.unpack_from(data, at)
            body = data[at + FRAME.size : at + FRAME.size + size]
            if magic == MAGIC and len(body) == size and zlib.crc32(body) == crc:
                yield at + FRAME.size + size, body
                at += FRAME.size + size
                continue
            self.damaged += 1
            found = data.find(MAGIC, at + 1)
            if found < 0:
                return
            at = found

    def delivered(self, key: int) -> None:
        offset = struct.pack("<Q", key)
        tmp = self.ack_path.with_suffix(".tmp")
        tmp.write_bytes(offset + struct.pack("<I", zlib.crc32(offset)))
        os.replace(tmp, self.ack_path)  # atomic: the old or the new offset, never half of one
        self.start = key

    def close(self) -> None:
        os.close(self.fd)


ENGINES: dict[str, Any] = {
    "sqlite WAL, synchronous=NORMAL": lambda d: SqliteSpool(d),
    "sqlite WAL, synchronous=FULL": lambda d: SqliteSpool(d, full_sync=True),
    "segment, write() per chunk": lambda d: SegmentSpool(d),
    "segment, fsync per chunk": lambda d: SegmentSpool(d, fsync_each=True),
}


def chunk_of(first: int, count: int, size: int) -> bytes:
    body = b"x" * max(0, size - 24)
    return pack(
        [(1_700_000_000_000 + n, b'{"n": %012d, "m": "' % n + body + b'"}') for n in range(first, first + count)]
    )


def throughput(name: str, records: int, per_chunk: int, size: int) -> list[str]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("SPOOL_BENCH_DIR")) as tmp:  # /tmp: ext4 here
        spool = ENGINES[name](Path(tmp))
        chunks = [chunk_of(n, per_chunk, size) for n in range(0, records, per_chunk)]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for blob in chunks:
            spool.append(blob)
        wall_in = time.perf_counter() - wall0
        back = 0
        for key, blob in list(spool.pending()):
            back += len(unpack(blob))
            spool.delivered(key)
        cpu = time.process_time() - cpu0
        spool.close()
        assert back == records, (back, records)
    return [
        name,
        f"{len(chunks) / wall_in:,.0f}",
        f"{records / wall_in:,.0f}",
        f"{cpu / records * 1e6:.2f} µs",
    ]


WRITER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from bench.spool_engines import ENGINES, chunk_of, unpack
spool = ENGINES[sys.argv[1]](Path(sys.argv[2]))
# Restart: deliver (drop) what an earlier writer left, in order, then append numbered chunks for ever.
last = -1
for key, blob in list(spool.pending()):
    last = unpack(blob)[-1][0] - 1_700_000_000_000
    spool.delivered(key)
first = (last // 100 + 1) * 100
print("start", first, flush=True)
while True:
    spool.append(chunk_of(first, 100, 200))
    print("appended", first, flush=True)  # after append returned: this chunk must survive the kill
    first += 100
"""


def kill_loop(name: str, kills: int, root: Path) -> list[str]:
    directory = Path(tempfile.mkdtemp(dir=root))
    lost = damaged = torn = 0
    rng = random.Random(12)
    for _ in range(kills):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, name, str(directory), str(Path(__file__).resolve().parent.parent)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().startswith("start")
        time.sleep(rng.uniform(0.05, 0.3))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        # Complete lines only: the kill may land in the middle of one.
        appended = [int(line.split()[1]) for line in out.split("\n")[:-1] if line.startswith("appended ")]
        spool = ENGINES[name](directory)
        present = set()
        for _key, blob in spool.pending():
            records = unpack(blob)
            numbers = [ts - 1_700_000_000_000 for ts, _ in records]
            if numbers != list(range(numbers[0], numbers[0] + 100)):
                damaged += 1
            present.add(numbers[0])
        lost += len([first for first in appended if first not in present])
        torn += spool.damaged
        spool.close()
    shutil.rmtree(directory)
    return [name, str(kills), str(lost), str(damaged), str(torn)]


@contextlib.contextmanager
def full_filesystem(size: str = "4m") -> Iterator[Path | None]:
    mountpoint = Path(tempfile.mkdtemp())
    try:
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)], capture_output=True
            ).returncode
            == 0
        )
        yield mountpoint if mounted else None
    finally:
        subprocess.run(["umount", str(mountpoint)], capture_output=True)
        mountpoint.rmdir()


def enospc(name: str) -> list[str]:
    """Fill a 4 MiB tmpfs (1 MiB of it by another file) with appends; then that file goes (space freed by
    someone else) and the spool must append again, and a new process must read every accepted chunk."""
    with full_filesystem() as mount:
        if mount is None:
            return [name, "no tmpfs (mount refused)", "", "", "", ""]
        filler = mount / "other-files"
        filler.write_bytes(b"\0" * 1024 * 1024)
        (mount / "spool").mkdir()
        spool = ENGINES[name](mount / "spool")
        accepted, error = 0, ""
        while True:
            try:
                spool.append(chunk_of(accepted * 100, 100, 200))
                accepted += 1
            except (OSError, sqlite3.Error) as failure:
                error = f"{type(failure).__name__}: {failure}"[:70]
                break
        before = accepted
        try:
            readable = str(sum(1 for _ in spool.pending()))
        except (OSError, sqlite3.Error) as failure:
            readable = f"read failed: {type(failure).__name__}"
        filler.unlink()
        try:
            spool.append(chunk_of(accepted * 100, 100, 200))
            accepted += 1
            again = "yes"
        except (OSError, sqlite3.Error) as failure:
            again = f"no ({type(failure).__name__}: {failure})"[:60]
        spool.close()
        reopened = ENGINES[name](mount / "spool")
        after = sum(1 for _ in reopened.pending())
        reopened.close()
    return [name, f"{before} chunks, then {error}", readable, again, f"{after} of {accepted}", str(reopened.damaged)]


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, ["-" * width for width in widths], *rows]:
        print("| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args(argv)
    rows = [throughput(name, args.records, 500, 200) for name in ENGINES]
    table(
        f"into the spool: {args.records} records of 200 bytes, chunks of 500",
        ["engine", "chunks/s", "records/s", "CPU per record (append + read + delivered)"],
        rows,
    )
    kill_safe = [name for name in ENGINES if "fsync" not in name and "FULL" not in name]
    with tempfile.TemporaryDirectory() as root:
        rows = [kill_loop(name, args.kills, Path(root)) for name in kill_safe]
    table(
        "SIGKILL at random moments (0.05-0.3 s) while appending, then a new process on the directory",
        ["engine", "kills", "chunks reported appended but lost", "chunks damaged", "torn/damaged frames skipped"],
        rows,
    )
    table(
        "ENOSPC: a 4 MiB tmpfs (1 MiB of it another file) filled by appends; then that file is removed",
        [
            "engine",
            "appends until the error",
            "chunks readable then",
            "append once space is freed",
            "chunks a new process reads",
            "damaged frames skipped",
        ],
        [enospc(name) for name in kill_safe],
    )


if __name__ == "__main__":
    main()
