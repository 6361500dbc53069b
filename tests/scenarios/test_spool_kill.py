"""SIGKILL of a process logging through a spooled sink, at random moments (while logging, while sending),
then a new sink on the same directory: exact accounting against moto over real HTTP.

What the spool held must reach the dead process's stream: only the newest records (still in memory at the
kill) may be missing, and in the slow test none accepted ``KILL_WINDOW`` or more before the kill. A record
may arrive twice only when it was in the dead process's last send, and the adopter counts it in
``stats.resent``.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._spool_dir import SPOOL_SUFFIX
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.programs import Child
from tests.support.proxy import FaultProxy
from tests.support.waiting import wait_for

GROUP = "spool-kill"
#: The documented interval: a record accepted this long before a SIGKILL is on disk (``PERSIST_INTERVAL``
#: of 0.1 s plus one append, with room for a loaded 2-CPU machine).
KILL_WINDOW = 0.2

#: Logs numbered records for ever, printing "n monotonic-time" once write() has returned for record n.
VICTIM = r"""
import os, sys, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink
endpoint, spool_dir, stream = sys.argv[1:4]
logger.remove()
sink = CloudWatchSink("spool-kill", stream, endpoint_url=endpoint, spool_dir=spool_dir, serialize=False,
                      flush_interval=0.2, retry_delay=0.01, max_batch_size=50)
logger.add(sink, format="{message}")
os.write(1, b"ready\n")
n = 0
while True:
    logger.info(f"{stream}-{n}")
    os.write(1, f"{n} {time.monotonic()}\n".encode())  # one write(2): a kill never leaves half a line
    n += 1
    if n % 5 == 0:
        time.sleep(0.002)  # a busy service (about 2,000 records/s), not a loop that only logs: on a loaded
        # machine such a loop starves the sink's threads of the GIL and the CPU (see the README)
"""


def kill_and_adopt(
    endpoint: str,
    logs_client: Any,
    spool_dir: Path,
    stream: str,
    rng: random.Random,
    *,
    window: bool,
    victim_endpoint: str | None = None,
    until: Callable[[], bool] | None = None,
) -> tuple[int, float, int]:
    """One victim (sending to ``victim_endpoint``, by default ``endpoint``), killed at a random moment or
    once ``until`` holds; then an adopter sink delivers what it left. Returns (records that arrived,
    seconds between the kill and the oldest accepted record that did not arrive: 0 if none, records that
    arrived twice)."""
    victim = Child(VICTIM, victim_endpoint or endpoint, str(spool_dir), stream)
    try:
        assert victim.line(timeout=30) == "ready"
        if until is None:
            time.sleep(rng.uniform(0.2, 0.8))
        else:
            wait_for(until, timeout=30, message="the moment to kill")
    finally:
        victim.close()  # SIGKILL
    killed_at = time.monotonic()
    accepted = [(int(n), float(at)) for n, at in (line.split() for line in victim.printed_before_the_end())
                if n != "ready"]  # fmt: skip
    adopter = CloudWatchSink(GROUP, "adopter", endpoint_url=endpoint, spool_dir=spool_dir, flush_interval=0.2)
    handler = logger.add(adopter, format="{message}")
    try:
        wait_for(lambda: not _files_of_others(spool_dir, adopter), timeout=30, message="the orphan delivered")
    finally:
        logger.remove(handler)
    stored = Counter(read_messages(logs_client, GROUP, stream))
    arrived = {int(message.rsplit("-", 1)[1]) for message in stored}
    # Exact whatever the machine's load: what did not arrive is only the newest records, those still in
    # memory at the kill (no gap: nothing the spool held was lost).
    lost = [(n, at) for n, at in accepted if n not in arrived]
    assert all(n > max(arrived, default=-1) for n, _ in lost), (
        f"{stream}: a gap: lost {[n for n, _ in lost][:5]}..., arrived up to {max(arrived)}, {len(lost)} lost"
    )
    duplicates = sum(count - 1 for count in stored.values())
    assert duplicates <= adopter.stats.resent, f"{stream}: {duplicates} duplicates, {adopter.stats.resent} counted"
    assert adopter.stats.resent <= 50, "more than one batch of the victim's may have been sent twice"
    tail_age = killed_at - lost[0][1] if lost else 0.0
    if window:  # the documented interval: records accepted KILL_WINDOW before the kill were on disk
        assert tail_age <= KILL_WINDOW, (
            f"{stream}: {len(lost)} records lost, the oldest {tail_age:.3f}s before the kill"
        )
    return len(arrived), tail_age, duplicates


def _files_of_others(spool_dir: Path, sink: CloudWatchSink) -> list[Path]:
    own = f"-{__import__('os').getpid()}-"
    return [path for path in spool_dir.glob(f"*{SPOOL_SUFFIX}") if own not in path.name]


def run_kills(endpoint: str, logs_client: Any, spool_dir: Path, kills: int, seed: int, *, window: bool) -> None:
    rng = random.Random(seed)
    logs_client.create_log_group(logGroupName=GROUP)
    arrived, ages = 0, []
    for kill in range(kills):
        count, tail_age, _ = kill_and_adopt(endpoint, logs_client, spool_dir, f"victim-{kill}", rng, window=window)
        arrived += count
        ages.append(tail_age)
    assert arrived > kills * 10  # the kills landed while the victims were logging
    print(f"{kills} kills: the oldest record lost was accepted at most {max(ages):.3f}s before its kill")


def test_ten_sigkills_lose_nothing_the_spool_held_and_duplicate_at_most_the_last_send(
    endpoint: str, logs_client: Any, tmp_path: Path
) -> None:
    # The exact accounting only: the 0.2 s window depends on the victim getting the CPU, which the default
    # suite cannot promise on a loaded 2-CPU machine (it was exceeded there: see the README's spool section).
    run_kills(endpoint, logs_client, tmp_path, kills=10, seed=10, window=False)


def test_a_kill_while_a_call_hangs_resends_at_most_that_batch_counted_as_resent(
    endpoint: str, logs_client: Any, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    # The victim's first batch reaches CloudWatch but its answer is lost; the retry hangs; the kill lands
    # then. The batch is stored once already and still marked in flight in the file: the adopter sends it
    # again (at-least-once), and counts exactly that in stats.resent.
    create_group_and_stream(logs_client, GROUP, "hung")  # the first call stores its batch (no ResourceNotFound)
    fault_proxy.set_schedule(["drop_answer", "hang"])
    arrived, _, duplicates = kill_and_adopt(
        endpoint, logs_client, tmp_path, "hung", random.Random(0), window=False,
        victim_endpoint=fault_proxy.url, until=lambda: len(fault_proxy.calls) >= 2,
    )  # fmt: skip
    first_batch = fault_proxy.calls[0][1]
    assert 0 < first_batch <= 50 and duplicates == first_batch
    assert arrived >= first_batch  # what the victim logged after it may still have been in memory only


@pytest.mark.slow
@pytest.mark.timeout(900)  # 200 victims and adopters, about 1.5 s each: past the suite's 120 s per test
def test_two_hundred_sigkills_lose_no_record_accepted_0_2s_before_the_kill(
    endpoint: str, logs_client: Any, tmp_path: Path
) -> None:
    run_kills(endpoint, logs_client, tmp_path, kills=200, seed=200, window=True)
