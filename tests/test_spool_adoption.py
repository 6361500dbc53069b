"""Adopting dead processes' spool files, with the real worker and in-memory shippers (one per stream)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loguru_cloudwatch._retry import Timings
from loguru_cloudwatch._shipper import Shipper
from loguru_cloudwatch._spool import SpooledBacklog
from loguru_cloudwatch._spool_adoption import Adoptions
from loguru_cloudwatch._spool_dir import DAMAGED_SUFFIX, SPOOL_SUFFIX
from loguru_cloudwatch._spool_file import Chunk, SpoolFile
from loguru_cloudwatch._stats import Counters
from tests.support.memory_shipper import MemoryShipper, WorkerRig
from tests.support.spool_files import dead_file
from tests.support.waiting import wait_for


class Shippers:
    """One MemoryShipper per stream, made when the adoption asks for one."""

    def __init__(self) -> None:
        self.by_stream: dict[str, MemoryShipper] = {}

    def __call__(self, stream: str, counters: Counters) -> Shipper:
        return self.by_stream.setdefault(stream, MemoryShipper())

    def seqs(self, stream: str) -> list[int]:
        shipper = self.by_stream.get(stream)
        return [] if shipper is None else [event[1] for event in shipper.delivered]


def adopting_rig(directory: Path, shippers: Shippers) -> WorkerRig:
    rig = WorkerRig(MemoryShipper(), start=False, spool_dir=directory, flush_interval=0.2)
    assert isinstance(rig.backlog, SpooledBacklog)
    rig.backlog.adoptions = Adoptions(rig.config, rig.reporter, Timings(), shippers, rig.shipper.batch_cost)
    rig.worker.start()
    return rig


def test_a_dead_process_file_is_delivered_to_its_stream_in_order_and_removed(tmp_path: Path) -> None:
    path = dead_file(tmp_path, "dead-stream", chunks=5, per_chunk=100, delivered=130, in_flight=180)
    shippers = Shippers()
    rig = adopting_rig(tmp_path, shippers)
    try:
        wait_for(lambda: not path.exists(), timeout=10, message="the adopted file delivered and removed")
        assert shippers.seqs("dead-stream") == list(range(131, 501))  # the delivered part not again
        assert rig.backlog.adopted is not None
        assert rig.backlog.adopted.resent == 50  # 131..180: in the dead process's last send
        own = rig.log(3)
        assert rig.flush(5) and rig.shipper.messages() == own  # the sink's own records, to its own stream
    finally:
        rig.stop(2)
    assert not [p for p in tmp_path.iterdir() if p.suffix == SPOOL_SUFFIX]


def test_several_orphans_are_delivered_one_after_the_other(tmp_path: Path) -> None:
    paths = [dead_file(tmp_path, f"stream-{n}", chunks=2, per_chunk=50) for n in range(3)]
    shippers = Shippers()
    rig = adopting_rig(tmp_path, shippers)
    try:
        wait_for(lambda: not any(path.exists() for path in paths), timeout=20, message="all three delivered")
        assert all(shippers.seqs(f"stream-{n}") == list(range(1, 101)) for n in range(3))
    finally:
        rig.stop(2)


def test_an_unreadable_orphan_is_moved_aside_and_named_and_a_newer_one_left_alone(tmp_path: Path) -> None:
    (tmp_path / f"junk{SPOOL_SUFFIX}").write_text("not a database " * 200)
    newer = dead_file(tmp_path, "newer", chunks=1, per_chunk=5)
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = 99 WHERE key = 'format'")
    db.commit()
    db.close()
    shippers = Shippers()
    rig = adopting_rig(tmp_path, shippers)
    try:
        wait_for(lambda: (tmp_path / f"junk{DAMAGED_SUFFIX}").exists(), timeout=10, message="moved aside")
        wait_for(lambda: len(rig.problems) >= 2, timeout=10, message="both reported")
        messages = sorted(problem.message for problem in rig.problems if problem.kind == "spool_damaged")
        assert any(m.startswith(f"junk{SPOOL_SUFFIX}: ") and "moved aside as junk.damaged" in m for m in messages)
        assert any("spool format 99 by a newer loguru-cloudwatch" in message for message in messages)
        assert newer.exists() and shippers.by_stream == {}
    finally:
        rig.stop(2)


def test_a_file_of_another_log_group_is_left_for_a_sink_of_that_group(tmp_path: Path) -> None:
    # One directory, two applications: the rig's group is "memory"; the other's records belong to its group.
    other = dead_file(tmp_path, "their-stream", chunks=2, per_chunk=10, group="their-group")
    ours = dead_file(tmp_path, "our-stream", chunks=2, per_chunk=10)
    shippers = Shippers()
    rig = adopting_rig(tmp_path, shippers)
    try:
        wait_for(lambda: not ours.exists(), timeout=10, message="our group's file delivered")
        assert shippers.seqs("our-stream") == list(range(1, 21))
        assert "their-stream" not in shippers.by_stream
        assert rig.problems == []
    finally:
        rig.stop(2)
    assert other.exists()
    with SpoolFile(other, create=False) as spool:  # untouched, for a sink of its own group
        assert spool.group == "their-group"
        assert [event[1] for item in spool.read() if isinstance(item, Chunk) for event in item.events] == list(
            range(1, 21)
        )
