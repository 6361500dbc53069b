"""Damaged spool files left by dead processes, then a real sink started on the directory, against moto over
real HTTP: it starts, delivers everything it can read (to each dead process's stream, in order), skips and
reports what it cannot (each file by name), counts every record it could not deliver, and ships its own
records all along.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._spool_dir import DAMAGED_SUFFIX, SPOOL_SUFFIX, create_own
from loguru_cloudwatch._spool_file import FORMAT_VERSION
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.problems import Problems
from tests.support.spool_files import dead_file, events
from tests.support.waiting import wait_for

GROUP = "spool-damage"
STREAM = "the-new-process"


def recent_ms() -> int:
    """A timestamp CloudWatch takes (within its 14-day window): a minute ago."""
    return int(time.time() * 1000) - 60_000


def flip_a_byte_of(path: Path, text: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[raw.index(text) + 8] ^= 0x01  # inside the message text: only the chunk's CRC notices
    path.write_bytes(bytes(raw))


def torn_copy(directory: Path, stream: str) -> Path:
    """A file as a kill in the middle of a commit leaves it: the database with its WAL, the WAL cut inside
    its last frame: the third of its three appends. The two before it are intact; the torn one never
    happened (its append had not returned: nothing reported it on disk)."""
    (directory / "scratch").mkdir()
    owned = create_own(directory / "scratch", GROUP, 1 << 20)
    for n in range(3):
        owned.spool.append(stream, events(1 + n * 10, 10, start_ms=recent_ms()))
    target = directory / f"torn{SPOOL_SUFFIX}"
    shutil.copyfile(owned.spool.path, target)  # while the connection is open: the chunks are in the WAL
    wal = Path(f"{owned.spool.path}-wal").read_bytes()
    Path(f"{target}-wal").write_bytes(wal[: len(wal) - 100])
    owned.spool.close()
    owned.ownership.release(remove=True)
    return target


# Where the truncated file is cut (seeded): 5 leaves a chunk unreadable and a row unlisted (a damaged b-tree
# page), 6 leaves two rows unlisted, 7 leaves no readable database at all.
@pytest.mark.parametrize("cut_seed", [5, 6, 7])
def test_damaged_files_never_stop_the_sink_and_every_lost_record_is_counted_and_named(
    endpoint: str, logs_client: Any, tmp_path: Path, cut_seed: int
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    good = dead_file(tmp_path, "dead-good", chunks=3, per_chunk=20, group=GROUP, start_ms=recent_ms())
    flipped = dead_file(tmp_path, "dead-flipped", chunks=3, per_chunk=20, group=GROUP, start_ms=recent_ms())
    flip_a_byte_of(flipped, b"record 000025")  # its second chunk, records 21-40
    torn = torn_copy(tmp_path, "dead-torn")
    truncated = dead_file(tmp_path, "dead-truncated", chunks=5, per_chunk=20, group=GROUP, start_ms=recent_ms())
    raw = truncated.read_bytes()
    truncated.write_bytes(raw[: random.Random(cut_seed).randrange(len(raw) // 2, len(raw))])
    (tmp_path / f"zero{SPOOL_SUFFIX}").write_bytes(b"")
    (tmp_path / f"junk{SPOOL_SUFFIX}").write_text("not a database " * 300)
    newer = dead_file(tmp_path, "dead-newer", chunks=1, per_chunk=5, group=GROUP, start_ms=recent_ms())
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (FORMAT_VERSION + 1,))
    db.close()

    problems = Problems()
    sink = CloudWatchSink(
        GROUP, STREAM, endpoint_url=endpoint, spool_dir=tmp_path, serialize=False, flush_interval=0.2, on_error=problems
    )
    logger.add(sink, format="{message}")
    for n in range(5):
        logger.info("own {}", n)
    readable = [good, flipped, torn, truncated, tmp_path / f"zero{SPOOL_SUFFIX}", tmp_path / f"junk{SPOOL_SUFFIX}"]
    wait_for(lambda: not any(path.exists() for path in readable), timeout=60, message="every file dealt with")
    assert sink.force_flush(10), sink.stats

    def numbers(stream: str) -> list[int]:
        return [int(message.split()[1]) for message in read_messages(logs_client, GROUP, stream)]

    assert read_messages(logs_client, GROUP, STREAM) == [f"own {n}" for n in range(5)]
    assert numbers("dead-good") == list(range(1, 61))
    assert numbers("dead-flipped") == list(range(1, 21)) + list(range(41, 61))
    assert numbers("dead-torn") == list(range(1, 21))
    delivered_of_truncated = numbers("dead-truncated")
    assert delivered_of_truncated == sorted(set(delivered_of_truncated))  # in order, once
    assert set(delivered_of_truncated) <= set(range(1, 101))

    damaged = problems.of("spool_damaged")
    text = "\n".join(problem.message for problem in damaged)
    assert f"{flipped.name}: a chunk of 20 records could not be read (CRC mismatch)" in text
    assert f"junk{SPOOL_SUFFIX}: " in text and f"moved aside as junk{DAMAGED_SUFFIX}" in text
    assert f"{newer.name}: written in spool format {FORMAT_VERSION + 1}" in text
    assert (tmp_path / f"junk{DAMAGED_SUFFIX}").exists() and newer.exists()
    # Every record of a chunk skipped as damaged is counted, in the report and in stats.dropped; the truncated
    # file's whole-file loss (moved aside) is named but its records cannot be counted.
    stats = sink.stats
    assert stats.dropped == sum(problem.count for problem in damaged) >= 20
    assert (stats.sent, stats.resent) == (5 + 60 + 40 + 20 + len(delivered_of_truncated), 0)
    assert len(delivered_of_truncated) < 100 and truncated.name in text  # what could not be delivered is named
    assert not truncated.exists()  # delivered what it could, then moved aside: never adopted again
