"""The worker thread (``_worker``): it sleeps between its steps, whatever state the sink is in.

A worker that wakes in a loop with nothing to do costs the program CPU and the GIL its own threads wait
for. Its CPU time is read from ``/proc`` (Linux), in clock ticks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from tests.helpers import add_text_sink, create_group_and_stream, log_many, wait_for
from tests.proxy import FaultProxy

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads thread CPU from /proc (Linux)")

GROUP = "worker-group"
STREAM = "worker-stream"
SINK_DEFAULTS: dict[str, Any] = {"flush_interval": 0.05, "retry_delay": 0.01, "shutdown_timeout": 1.0}


def cpu_seconds(native_id: int | None) -> float:
    """User + system CPU time of one thread of this process."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_idle_worker_sleeps_between_its_timed_flushes(endpoint: str, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_text_sink(GROUP, STREAM, endpoint, SINK_DEFAULTS)
    log_many("once", 3)
    assert sink.force_flush(5)  # client built, one call made: from now on there is nothing to do
    before = cpu_seconds(sink._worker.native_id)
    time.sleep(1.0)  # 20 flush intervals
    assert cpu_seconds(sink._worker.native_id) - before <= 0.1  # a busy loop would take the whole second


def test_a_worker_backing_off_during_an_outage_does_not_spin_while_the_queue_overflows(
    fault_proxy: FaultProxy, logs_client: Any
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    fault_proxy.set_schedule(iter(lambda: "503", None))  # every PutLogEvents fails, for ever
    sink = add_text_sink(GROUP, STREAM, fault_proxy.url, SINK_DEFAULTS, max_queue_size=200, max_retries=0)
    logger.info("first")
    wait_for(lambda: sink.stats.failed >= 1, message="the outage met")
    before = cpu_seconds(sink._worker.native_id)
    started = time.monotonic()
    while time.monotonic() - started < 1.0:  # the queue is full: every record drops the oldest one
        logger.info("overflowing")
        time.sleep(0.0005)
    spent = cpu_seconds(sink._worker.native_id) - before
    assert sink.stats.dropped > 100
    # Its attempts (backoff capped at 30 s, a few a second here) and nothing else; not one wake-up per record.
    assert spent <= 0.3, spent
    logger.remove()
