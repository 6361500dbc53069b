"""The spooled backlog under the real worker, on real files, without I/O to CloudWatch (``MemoryShipper``):
records reach disk within the persist interval, an outage longer than memory, the spool's bound, a
filesystem that is full or read-only, and what stop() leaves for the next start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loguru_cloudwatch import _spool_writer
from loguru_cloudwatch._spool import PERSIST_INTERVAL, SpooledBacklog
from loguru_cloudwatch._spool_dir import SPOOL_SUFFIX
from loguru_cloudwatch._spool_file import Chunk, EmptyFile, SpoolFile
from tests.support.filesystems import mounted_tmpfs, remount
from tests.support.memory_shipper import MemoryShipper, WorkerRig
from tests.support.waiting import wait_for


def on_disk(directory: Path) -> list[int]:
    """Sequence numbers of the undelivered events in the directory's spool files (read by another
    connection, as another process would)."""
    seqs: list[int] = []
    for path in sorted(directory.glob(f"*{SPOOL_SUFFIX}")):
        try:
            spool = SpoolFile(path, create=False)
        except EmptyFile:
            continue  # being created by the worker at this very moment
        with spool:
            seqs += [event[1] for item in spool.read() if isinstance(item, Chunk) for event in item.events]
    return seqs


def kinds(rig: WorkerRig) -> list[str]:
    return [problem.kind for problem in rig.problems]


def backlog_of(rig: WorkerRig) -> SpooledBacklog:
    assert isinstance(rig.backlog, SpooledBacklog)
    return rig.backlog


def test_records_are_on_disk_within_the_persist_interval_and_leave_it_once_delivered(tmp_path: Path) -> None:
    shipper = MemoryShipper()
    rig = WorkerRig(shipper, spool_dir=tmp_path)
    try:
        rig.log(10)
        # Nothing is due (flush_interval=60, no full batch), so the records wait: on disk.
        wait_for(lambda: len(on_disk(tmp_path)) == 10, timeout=PERSIST_INTERVAL * 20, message="on disk")
        assert shipper.sends == [] and len(rig.queue) == 0
        assert rig.backlog.pending == 10
        assert rig.flush(5)
        assert shipper.messages() == [f"m{i}" for i in range(10)]
        assert on_disk(tmp_path) == [] and rig.backlog.pending == 0
    finally:
        rig.stop(2)
    assert list(tmp_path.iterdir()) == []  # an empty spool file is removed at stop


def test_a_long_queue_reaches_the_disk_in_chunks_of_at_most_a_batch(tmp_path: Path) -> None:
    # After a spool outage memory may hold 100,000 records: one chunk of them all would be one huge
    # transaction and a chunk larger than the spool's bound. Not started: the test makes the move itself.
    rig = WorkerRig(MemoryShipper(), start=False, spool_dir=tmp_path, max_batch_size=40)
    backlog = backlog_of(rig)
    try:
        rig.log(100)
        backlog.persist()
        assert len(rig.queue) == 0 and backlog.on_disk == 100
        for _ in range(3):  # two fit in one 1 MiB batch, the third does not
            rig.queue.put(int(time.time() * 1000), "x" * 400_000, 400_000)
        backlog.persist()
        [path] = tmp_path.glob(f"*{SPOOL_SUFFIX}")
        with SpoolFile(path, create=False) as spool:
            index = spool.index()
        assert [count for _, _, _, count in index.chunks] == [40, 40, 20, 2, 1]
    finally:
        backlog.close()


def test_an_outage_longer_than_memory_keeps_memory_bounded_and_delivers_everything_in_order(tmp_path: Path) -> None:
    shipper = MemoryShipper(default="failed")
    rig = WorkerRig(shipper, spool_dir=tmp_path, max_queue_size=100, max_batch_size=300)
    try:
        logged = []
        for burst in range(20):  # 2,000 records, 20x what memory may hold
            logged += rig.log(100, prefix=f"b{burst}-")
            wait_for(lambda: len(rig.queue) == 0, timeout=5, message="the queue moved to disk")
            assert rig.queue.memory_bytes <= rig.config.max_queue_bytes
        assert rig.backlog.dropped == 0 and rig.backlog.pending == 2_000
        shipper.default = "delivered"
        assert rig.flush(20)
        assert shipper.messages() == logged  # in order, each once
        # The backlog left at full batch size, not one chunk per call.
        delivered_sends = [send for send in shipper.sends if send.events and send.events[0][2] in logged]
        assert max(len(send.events) for send in delivered_sends) == 300
    finally:
        rig.stop(2)


def test_a_full_spool_drops_the_oldest_chunks_counted_and_reported(tmp_path: Path) -> None:
    shipper = MemoryShipper(default="failed")
    limit = 1 << 20
    rig = WorkerRig(shipper, spool_dir=tmp_path, max_spool_bytes=limit)
    try:
        logged = []
        for burst in range(60):  # 60 chunks of about 45 KiB: 2.7 MB against 1 MiB
            logged += rig.log(100, prefix=f"b{burst:02d}-" + "x" * 400 + "-")
            wait_for(lambda: len(rig.queue) == 0, timeout=5, message="the queue moved to disk")
            assert sum(path.stat().st_size for path in tmp_path.iterdir()) <= limit  # the bound, on disk
        backlog = backlog_of(rig)
        dropped = backlog.dropped
        assert dropped > 0 and "spool_full" in kinds(rig)
        assert sum(p.count for p in rig.problems if p.kind == "spool_full") == dropped
        assert backlog.pending + dropped == len(logged)
        shipper.default = "delivered"
        assert rig.flush(20)  # the drops came before the flush: not its records
        assert shipper.messages() == logged[dropped:]  # the oldest went, the rest arrive in order
    finally:
        rig.stop(2)


def test_a_full_filesystem_sends_from_memory_and_the_spool_resumes_when_space_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_spool_writer, "RETRY_UNAVAILABLE", 0.2)
    with mounted_tmpfs(256) as root:
        filler = root / "filler"
        filler.write_bytes(b"\0" * 200 * 1024)
        shipper = MemoryShipper()
        rig = WorkerRig(shipper, spool_dir=root)
        try:
            first = rig.log(200, prefix="a" * 1000)  # 200 KB: does not fit in what is left
            wait_for(lambda: "spool_unavailable" in kinds(rig), timeout=5, message="the failure reported")
            [problem] = [p for p in rig.problems if p.kind == "spool_unavailable"]
            assert "full" in problem.message and "kept in memory" in problem.message
            assert rig.flush(5)
            assert shipper.messages() == first  # sent from memory meanwhile, nothing lost
            filler.unlink()
            rig.log(5, prefix="b")
            wait_for(lambda: len(on_disk(root)) == 5, timeout=5, message="on disk again")
            assert "recovered" in kinds(rig)
            assert rig.flush(5) and rig.backlog.dropped == 0
        finally:
            rig.stop(2)


def test_a_read_only_directory_is_reported_once_and_records_still_go_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_spool_writer, "RETRY_UNAVAILABLE", 0.2)
    with mounted_tmpfs(256) as root:
        remount(root, read_only=True)
        shipper = MemoryShipper()
        rig = WorkerRig(shipper, spool_dir=root)
        try:
            rig.log(3)
            wait_for(lambda: "spool_unavailable" in kinds(rig), timeout=5, message="the failure reported")
            assert rig.flush(5) and shipper.messages() == ["m0", "m1", "m2"]
            rig.log(3, prefix="n")
            assert rig.flush(5)
            assert kinds(rig).count("spool_unavailable") == 1  # the same failure is not repeated
            remount(root, read_only=False)
            rig.log(2, prefix="o")  # the file is created with the first records after the retry delay
            wait_for(lambda: len(on_disk(root)) == 2, timeout=5, message="a spool file created, records on it")
        finally:
            rig.stop(2)


def test_stop_keeps_what_it_could_not_deliver_on_disk_for_the_next_start(tmp_path: Path) -> None:
    shipper = MemoryShipper(default="failed")
    rig = WorkerRig(shipper, spool_dir=tmp_path, shutdown_timeout=0.3)
    rig.log(50)
    wait_for(lambda: len(on_disk(tmp_path)) == 50, timeout=5, message="on disk")
    rig.log(7, prefix="late")  # in memory at stop: the final tick moves them to disk
    report = rig.stop(0.3)
    assert report.finished
    assert backlog_of(rig).on_disk == 57
    assert len(on_disk(tmp_path)) == 57
    assert len(list(tmp_path.glob(f"*{SPOOL_SUFFIX}"))) == 1
