"""Several processes on one spool directory, against moto over real HTTP: workers killed with SIGKILL, then
several new processes starting at the same moment; each dead worker's file is adopted by exactly one of
them and delivered once, to the dead worker's stream, in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loguru_cloudwatch._spool_dir import LOCK_SUFFIX, SPOOL_SUFFIX
from loguru_cloudwatch._spool_file import Chunk, EmptyFile, SpoolError, SpoolFile
from tests.support.aws import read_messages
from tests.support.programs import Child
from tests.support.waiting import wait_for

GROUP = "spool-fleet"
WORKERS = 4
ADOPTERS = 3
RECORDS = 600

#: Logs RECORDS numbered records and keeps them (a flush interval longer than the test: nothing is sent
#: before the kill, so nothing can be resent), then waits to be killed.
WORKER = r"""
import sys, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink
endpoint, spool_dir, stream, records = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
logger.remove()
logger.add(CloudWatchSink("spool-fleet", stream, endpoint_url=endpoint, spool_dir=spool_dir,
                          serialize=False, flush_interval=3600), format="{message}")
for n in range(records):
    logger.info(f"{stream}-{n}")
print("logged", flush=True)
time.sleep(3600)
"""

#: Starts a sink on the directory, waits until no file of the dead pids is left, stops, prints its stats.
ADOPTER = r"""
import json, sys, time
from pathlib import Path
from loguru import logger
from loguru_cloudwatch import CloudWatchSink
endpoint, spool_dir, stream, dead = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4].split(",")
logger.remove()
sink = CloudWatchSink("spool-fleet", stream, endpoint_url=endpoint, spool_dir=spool_dir, flush_interval=0.2)
handler = logger.add(sink, format="{message}")
print("started", flush=True)
deadline = time.monotonic() + 90
while any(f"-{pid}-" in path.name for path in spool_dir.glob("*.spool") for pid in dead):
    assert time.monotonic() < deadline, "the dead workers' files are still there"
    time.sleep(0.05)
logger.remove(handler)
stats = sink.stats
print(json.dumps({"sent": stats.sent, "resent": stats.resent, "dropped": stats.dropped}), flush=True)
"""


def records_on_disk(spool_dir: Path, pid: int) -> int:
    """Undelivered records in the spool file of process ``pid``, read as another process would."""
    total = 0
    for path in spool_dir.glob(f"*-{pid}-*{SPOOL_SUFFIX}"):
        try:
            with SpoolFile(path, create=False) as spool:
                total += sum(len(item.events) for item in spool.read() if isinstance(item, Chunk))
        except (EmptyFile, SpoolError):
            pass  # being created at this very moment
    return total


def test_each_dead_workers_file_is_adopted_by_exactly_one_of_several_new_processes(
    endpoint: str, logs_client: Any, tmp_path: Path
) -> None:
    logs_client.create_log_group(logGroupName=GROUP)
    workers = [Child(WORKER, endpoint, str(tmp_path), f"worker-{n}", str(RECORDS)) for n in range(WORKERS)]
    try:
        for worker in workers:
            assert worker.line(timeout=60) == "logged"
        pids = [worker.process.pid for worker in workers]
        for pid in pids:
            wait_for(lambda pid=pid: records_on_disk(tmp_path, pid) == RECORDS, timeout=30, message="on disk")
    finally:
        for worker in workers:
            worker.close()  # SIGKILL: every record is on disk, none was sent
    dead = ",".join(str(pid) for pid in pids)
    adopters = [Child(ADOPTER, endpoint, str(tmp_path), f"adopter-{n}", dead) for n in range(ADOPTERS)]
    try:
        for adopter in adopters:
            assert adopter.line(timeout=60) == "started"
        stats = [json.loads(adopter.line(timeout=120)) for adopter in adopters]
    finally:
        for adopter in adopters:
            adopter.close()

    for n in range(WORKERS):  # once each, in order, in the dead worker's own stream
        assert read_messages(logs_client, GROUP, f"worker-{n}") == [f"worker-{n}-{i}" for i in range(RECORDS)]
    assert sum(stat["sent"] for stat in stats) == WORKERS * RECORDS
    assert [(stat["resent"], stat["dropped"]) for stat in stats] == [(0, 0)] * ADOPTERS
    # The adopters stopped with nothing left: their own files and every lock file are gone too.
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix in (SPOOL_SUFFIX, LOCK_SUFFIX)) == []
