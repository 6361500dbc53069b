"""The worker (``_worker``): when events go out, flush requests, deadlines, and that it sleeps between steps.

End to end against moto first: nothing is sent before the flush interval unless a batch is full or a
flush is asked for; a batch whose round of retries failed goes back to the queue, and the pause after each
failed round grows. Then two tests check that a worker with nothing to do, or backing off, costs no CPU; a
thread's CPU time is read from ``/proc`` (Linux), in clock ticks. The rest of the loop is tested against
an in-memory shipper (``tests/support/memory_shipper.py``): exact sequences of attempts, no I/O. What one
attempt does with each CloudWatch answer is the shipper's (``test_cloudwatch.py``); the delays themselves
are the retry policy's (``test_retry.py``).
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._retry import FINAL_ATTEMPTS
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.faults import FaultInjector, Switch
from tests.support.memory_shipper import MemoryShipper, WorkerRig
from tests.support.problems import Problems
from tests.support.proxy import FaultProxy
from tests.support.recorders import ApiCallRecorder, PutLogEventsRecorder, put_times
from tests.support.sinks import add_text_sink, log_many
from tests.support.waiting import wait_for

needs_proc = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads thread CPU from /proc (Linux)")

GROUP = "worker-group"
STREAM = "worker-stream"


# --------------------------------------------------------------------------- end to end: when records go out


@pytest.fixture
def stream_ready(logs_client: Any) -> Any:
    """Group and stream exist up front, so every recorded call is a PutLogEvents of records (no create retry)."""
    create_group_and_stream(logs_client, GROUP, STREAM)
    return logs_client


#: Nothing is sent before force_flush() unless a test asks for timed flushes.
FLUSH_ON_REQUEST: dict[str, Any] = {"flush_interval": 60.0, "retry_delay": 0.01, "shutdown_timeout": 3.0}


def make_sink(endpoint: str, **options: Any) -> CloudWatchSink:
    """A text sink with ``FLUSH_ON_REQUEST`` pacing (``options`` override it)."""
    return add_text_sink(GROUP, STREAM, endpoint, FLUSH_ON_REQUEST, **options)


def test_nothing_is_sent_before_the_interval_then_force_flush_delivers(
    endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder
) -> None:
    sink = make_sink(endpoint, flush_interval=60.0)
    for i in range(3):
        logger.info(f"early-{i}")

    # The records wait in the queue: the caller's thread sent nothing, the worker waits for the interval.
    assert put_recorder.calls == []
    assert sink.stats.queued == 3
    # Still nothing a little later (the interval is 60 s and no batch is full).
    time.sleep(0.3)
    assert put_recorder.calls == []
    assert read_messages(stream_ready, GROUP, STREAM) == []

    assert sink.force_flush(timeout=5) is True
    assert put_recorder.event_counts == [3]
    assert read_messages(stream_ready, GROUP, STREAM) == ["early-0", "early-1", "early-2"]
    stats = sink.stats
    assert (stats.sent, stats.batches, stats.queued) == (3, 1, 0)


def test_the_interval_delivers_without_any_flush_request(
    endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder
) -> None:
    started = time.monotonic()
    sink = make_sink(endpoint, flush_interval=0.2)
    for i in range(5):
        logger.info(f"timed-{i}")

    wait_for(lambda: sink.stats.sent == 5, timeout=5, message="timed flush")
    # A timed flush, not an immediate one: it came one interval after the worker started, at the earliest.
    assert time.monotonic() - started >= 0.2
    assert put_recorder.messages == [f"timed-{i}" for i in range(5)]
    assert read_messages(stream_ready, GROUP, STREAM) == [f"timed-{i}" for i in range(5)]


def test_a_full_batch_is_sent_at_once_without_waiting_for_the_interval(
    endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder
) -> None:
    sink = make_sink(endpoint, flush_interval=60.0, max_batch_size=50)
    for i in range(49):
        logger.info(f"full-{i}")
    time.sleep(0.3)
    assert put_recorder.calls == [], "49 of 50 is not a full batch"

    logger.info("full-49")
    wait_for(lambda: sink.stats.sent == 50, timeout=5, message="immediate flush of a full batch")
    assert put_recorder.event_counts == [50]
    assert put_recorder.messages == [f"full-{i}" for i in range(50)]

    # And again for the next full batch; the remainder waits.
    for i in range(50, 120):
        logger.info(f"full-{i}")
    wait_for(lambda: sink.stats.sent == 100, timeout=5, message="second full batch")
    time.sleep(0.2)
    assert put_recorder.event_counts == [50, 50]
    assert sink.stats.queued == 20


# --------------------------------------------------------------------------- end to end: failed rounds


#: Quick retries in rounds of three; force_flush drives delivery unless a test wants timed flushes.
RETRY_PACING: dict[str, Any] = {
    "flush_interval": 10.0,
    "retry_delay": 0.005,
    "max_retries": 3,
    "shutdown_timeout": 2.0,
}


def add_sink(endpoint_url: str | None, **options: Any) -> CloudWatchSink:
    """A text sink with ``RETRY_PACING`` (``options`` override it)."""
    return add_text_sink(GROUP, STREAM, endpoint_url, RETRY_PACING, **options)


def stored(client: Any) -> list[str]:
    return read_messages(client, GROUP, STREAM)


def wait_stored(client: Any, count: int, timeout: float = 10.0) -> list[str]:
    """Wait until the stream holds ``count`` events, and return them."""
    wait_for(lambda: len(stored(client)) >= count, timeout=timeout, interval=0.05, message=f"{count} events stored")
    return stored(client)


def test_batch_goes_back_to_the_queue_when_retries_run_out(
    endpoint: str,
    logs_client: Any,
    fault_injector: FaultInjector,
    put_recorder: PutLogEventsRecorder,
    problems: Problems,
    no_jitter: None,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    faults = Switch("503")
    fault_injector.set_schedule(faults)
    # 30 records make a full batch: the worker is woken with exactly these 30.
    sink = add_sink(endpoint, on_error=problems, max_retries=2, retry_delay=0.01, flush_interval=0.1, max_batch_size=30)

    messages = log_many("kept", 30)
    wait_for(lambda: problems.count("delivery_failed") >= 2, timeout=10, message="two delivery_failed reports")

    stats = sink.stats
    assert (stats.queued, stats.dropped, stats.sent, stats.rejected) == (30, 0, 0, 0)
    assert stored(logs_client) == []
    assert all(problem.count == 30 for problem in problems.of("delivery_failed"))
    assert "kept for a later attempt" in problems.of("delivery_failed")[0].message
    # Each round is 1 call + max_retries retries.
    assert fault_injector.calls >= 6

    faults.off()
    assert wait_stored(logs_client, 30) == messages  # delivered at a later flush, exactly once
    wait_for(lambda: sink.stats.sent == 30, message="sent counted")
    stats = sink.stats
    assert (stats.queued, stats.dropped, stats.rejected) == (0, 0, 0)
    assert stats.failed == fault_injector.calls - 1
    # Every failed call is retried, except the last one of each round that gave up.
    assert stats.retries == stats.failed - problems.count("delivery_failed")
    # The batch was put back whole and in order: every attempt carried the same 30 records.
    assert all(batch == put_recorder.batches[0] for batch in put_recorder.batches)
    assert [event["message"] for event in put_recorder.batches[0]] == messages


def test_backoff_grows_between_failed_rounds(
    endpoint: str,
    logs_client: Any,
    fault_injector: FaultInjector,
    api: ApiCallRecorder,
    problems: Problems,
    no_jitter: None,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    faults = Switch("throttle")
    fault_injector.set_schedule(faults)
    retry_delay = 0.02
    sink = add_sink(endpoint, on_error=problems, max_retries=1, retry_delay=retry_delay, flush_interval=0.02)

    messages = log_many("storm", 5)
    wait_for(lambda: problems.count("delivery_failed") >= 4, timeout=10, message="four failed rounds")
    failures = problems.times("delivery_failed")[:4]
    # After the k-th failed round the sink waits retry_delay * 2**(max_retries + k) before the next one,
    # although a timed flush comes every 20 ms.
    for index, (earlier, later) in enumerate(itertools.pairwise(failures)):
        assert later - earlier >= 0.95 * retry_delay * 2 ** (2 + index), (index, later - earlier)

    # No retry storm: the next pause is 0.02 * 2**5 = 0.64 s. A sink retrying at each flush would call
    # PutLogEvents about 25 times in this window.
    calls_before = fault_injector.calls
    window_start = time.monotonic()
    time.sleep(0.4)
    calls_in_window = [t for t in put_times(api) if t >= window_start]
    assert len(calls_in_window) <= 2, len(calls_in_window)
    assert fault_injector.calls - calls_before <= 2
    assert sink.stats.queued == 5

    faults.off()
    assert wait_stored(logs_client, 5) == messages
    wait_for(lambda: problems.count("delivery_failed") >= 4 and sink.stats.sent == 5, message="sent counted")


# --------------------------------------------------------------------------- a worker that waits costs no CPU


#: A timed flush every 50 ms: an idle worker wakes often.
SINK_DEFAULTS: dict[str, Any] = {"flush_interval": 0.05, "retry_delay": 0.01, "shutdown_timeout": 1.0}


def cpu_seconds(native_id: int | None) -> float:
    """User + system CPU time of one thread of this process."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@needs_proc
def test_an_idle_worker_sleeps_between_its_timed_flushes(endpoint: str, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_text_sink(GROUP, STREAM, endpoint, SINK_DEFAULTS)
    log_many("once", 3)
    assert sink.force_flush(5)  # client built, one call made: from now on there is nothing to do
    before = cpu_seconds(sink._worker.native_id)
    time.sleep(1.0)  # 20 flush intervals
    assert cpu_seconds(sink._worker.native_id) - before <= 0.1  # a busy loop would take the whole second


@needs_proc
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


# --------------------------------------------------------------------------- the loop, without I/O


@pytest.fixture
def rigs() -> Any:
    """Builds ``WorkerRig``s and stops each at the end of the test, whatever happened."""
    made: list[WorkerRig] = []

    def make(shipper: MemoryShipper, start: bool = True, **options: Any) -> WorkerRig:
        made.append(WorkerRig(shipper, start, **options))
        return made[-1]

    yield make
    for rig in made:
        rig.stop(0.0)


def test_full_batches_go_at_once_and_the_partial_tail_waits_for_the_interval(rigs: Any) -> None:
    shipper = MemoryShipper()
    rig = rigs(shipper, start=False, max_batch_size=100, flush_interval=0.3)
    messages = rig.log(250)  # all queued before the worker's first step, however slow this thread is
    rig.worker.start()

    wait_for(lambda: len(shipper.delivered) == 250, message="everything delivered")
    assert [len(send.events) for send in shipper.sends] == [100, 100, 50]
    assert shipper.messages() == messages
    # Nothing was sent for a whole interval before the tail went.
    assert shipper.sends[2].at - shipper.sends[1].at >= 0.3 - 0.01


def test_a_flush_sends_everything_queued_in_one_call_and_returns_true(rigs: Any) -> None:
    shipper = MemoryShipper()
    rig = rigs(shipper)  # flush_interval=60: only the flush sends
    messages = rig.log(5)

    assert rig.flush(5.0) is True
    assert [len(send.events) for send in shipper.sends] == [5]
    assert shipper.messages() == messages
    assert rig.queue.pending == 0


def test_a_flush_retries_past_a_round_of_max_retries_until_delivered(rigs: Any) -> None:
    shipper = MemoryShipper(["throttled"] * 5)
    rig = rigs(shipper, max_retries=1, retry_delay=0.01)
    messages = rig.log(20)

    assert rig.flush(5.0) is True
    assert len(shipper.sends) == 6  # three rounds' worth of attempts, each with the same 20 events
    assert all([event[2] for event in send.events] == messages for send in shipper.sends)
    assert shipper.messages() == messages
    assert rig.counters.retries == 5


def test_a_flush_returns_false_at_its_deadline_with_every_event_still_queued(rigs: Any) -> None:
    shipper = MemoryShipper(default="failed")
    rig = rigs(shipper, retry_delay=0.01)
    rig.log(10)

    started = time.monotonic()
    assert rig.flush(0.3) is False
    took = time.monotonic() - started
    assert 0.3 <= took < 1.0, took
    assert rig.queue.pending == 10 and shipper.delivered == []
    # While the flush waited, every attempt was made, and bounded, within its deadline (afterwards the
    # events stay due and are retried in normal operation: those attempts have no deadline).
    during = [send for send in shipper.sends if send.deadline is not None]
    assert len(during) >= 2
    assert shipper.sends[: len(during)] == during
    assert all(send.at <= send.deadline <= started + 0.3 + 0.01 for send in during if send.deadline is not None)


def test_the_final_drain_retries_until_its_deadline_and_says_what_it_tried(rigs: Any) -> None:
    shipper = MemoryShipper(default="throttled")
    rig = rigs(shipper, retry_delay=0.01, max_retries=1)
    rig.log(10)

    started = time.monotonic()
    report = rig.stop(1.0)
    took = time.monotonic() - started
    assert report.finished is True
    assert took < 1.0 + 0.2, took  # the deadline, and the worker's bookkeeping
    assert 0.5 <= report.tried <= took, report  # most of the budget, not one round of max_retries
    assert "ThrottlingException" in report.last_problem
    assert rig.queue.pending == 10 and shipper.delivered == []
    # Spread over the budget, not a storm: the ceiling grows to a quarter of it, then the final attempts.
    assert FINAL_ATTEMPTS + 1 <= len(shipper.sends) <= 30, len(shipper.sends)
    assert all(send.at < started + 1.0 for send in shipper.sends)


def test_a_refusal_wait_stands_until_the_final_drain_which_tries_once_at_once(rigs: Any) -> None:
    shipper = MemoryShipper([("refused", 30.0)])
    rig = rigs(shipper, flush_interval=0.05)
    messages = rig.log(3)

    wait_for(lambda: len(shipper.sends) == 1, message="the refused attempt")
    time.sleep(0.3)  # six flush intervals: none of them may call again before the 30 s are over
    assert len(shipper.sends) == 1
    assert rig.flush(0.2) is False  # a flush does not override the shipper's wait either
    assert len(shipper.sends) == 1

    started = time.monotonic()
    report = rig.stop(2.0)
    assert time.monotonic() - started < 1.0  # one attempt at once, not a wait for the 30 s
    assert report.finished and report.last_problem == ""
    assert shipper.messages() == messages and len(shipper.sends) == 2
    assert shipper.connects[-1] is True  # the final drain looks for a client afresh


def test_events_logged_during_a_backoff_ride_along_with_the_retry(rigs: Any, no_jitter: None) -> None:
    shipper = MemoryShipper(["throttled"])
    rig = rigs(shipper, flush_interval=0.05, retry_delay=0.5)  # the retry waits exactly 0.5 s
    first = rig.log(10, "first-")
    wait_for(lambda: len(shipper.sends) == 1, message="the throttled attempt")
    later = rig.log(10, "later-")

    wait_for(lambda: len(shipper.delivered) == 20, message="the retry")
    assert [len(send.events) for send in shipper.sends] == [10, 20]  # one call for both, not two
    assert shipper.messages() == first + later
