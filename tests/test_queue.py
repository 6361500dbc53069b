"""The bounded queue: drop-oldest by count and by bytes, exact drop counts, and a write() that never waits."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._cloudwatch import CLOUDWATCH_BATCH_COST
from loguru_cloudwatch._limits import EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES
from loguru_cloudwatch._queue import QUEUED_EVENT_OVERHEAD, Event, EventQueue
from loguru_cloudwatch._retry import Timings
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.problems import Problems
from tests.support.proxy import FaultProxy
from tests.support.recorders import PutLogEventsRecorder
from tests.support.sinks import add_text_sink
from tests.support.waiting import wait_for

GROUP = "queue-group"
STREAM = "queue-stream"
MIB = 1024 * 1024


def new_queue(max_events: int = 1000, max_bytes: int = 10 * MIB, batch_events: int = 10_000) -> EventQueue:
    return EventQueue(max_events, max_bytes, batch_events, threading.Event(), cost=CLOUDWATCH_BATCH_COST)


def put(queue: EventQueue, timestamp: int, payload: bytes) -> None:
    queue.put(timestamp, payload.decode(), len(payload))


def seqs(events: list[Event]) -> list[int]:
    return [event[1] for event in events]


def payloads(events: list[Event]) -> list[bytes]:
    return [event[2].encode() for event in events]


def drain(queue: EventQueue) -> list[Event]:
    return queue.take(10**6, 10**12)


# --------------------------------------------------------------------------- EventQueue unit tests


def test_drops_the_oldest_beyond_max_events() -> None:
    queue = new_queue(max_events=3)
    for i in range(5):
        put(queue, 1000 + i, f"p{i}".encode())
    assert len(queue) == 3
    assert queue.dropped == 2
    assert queue.last_seq == 5
    assert queue.first_seq() == 3
    assert payloads(drain(queue)) == [b"p2", b"p3", b"p4"]
    assert queue.dropped == 2  # taking is not dropping


def test_drops_the_oldest_beyond_max_bytes_counting_the_per_event_overhead() -> None:
    per_event = 100 + QUEUED_EVENT_OVERHEAD
    queue = new_queue(max_bytes=3 * per_event)
    for i in range(3):
        put(queue, i, bytes([65 + i]) * 100)
    assert (len(queue), queue.dropped, queue.memory_bytes) == (3, 0, 3 * per_event)

    put(queue, 3, b"D" * 100)  # one byte-budget too many: the oldest goes
    assert (len(queue), queue.dropped, queue.memory_bytes) == (3, 1, 3 * per_event)

    # A larger event pushes out as many old ones as needed: one that fits the budget only alone.
    large = 3 * per_event - QUEUED_EVENT_OVERHEAD - 50
    put(queue, 4, b"E" * large)
    assert queue.dropped == 4
    assert queue.memory_bytes == large + QUEUED_EVENT_OVERHEAD
    assert seqs(drain(queue)) == [5]
    assert queue.memory_bytes == 0


def test_empty_payloads_still_count_their_overhead() -> None:
    queue = new_queue(max_bytes=5 * QUEUED_EVENT_OVERHEAD)
    for i in range(12):
        put(queue, i, b"")
    assert (len(queue), queue.dropped) == (5, 7)
    assert seqs(drain(queue)) == [8, 9, 10, 11, 12]


def test_put_back_returns_events_to_the_front_in_arrival_order_and_reapplies_bounds() -> None:
    queue = new_queue(max_events=5)
    for i in range(3):
        put(queue, i, f"a{i}".encode())
    taken = queue.take(3)
    assert seqs(taken) == [1, 2, 3]
    assert len(queue) == 0
    for i in range(3):
        put(queue, 10 + i, f"b{i}".encode())

    queue.put_back(list(reversed(taken)))  # whatever order they come back in
    # 6 events for 5 places: the oldest (a put-back one) is dropped and counted.
    assert (len(queue), queue.dropped) == (5, 1)
    payload_sum = len(b"a1") + len(b"a2") + 3 * len(b"b0")
    assert queue.memory_bytes == payload_sum + 5 * QUEUED_EVENT_OVERHEAD
    assert payloads(drain(queue)) == [b"a1", b"a2", b"b0", b"b1", b"b2"]


def test_put_back_within_bounds_drops_nothing() -> None:
    queue = new_queue(max_events=10)
    for i in range(4):
        put(queue, i, b"x")
    first = queue.take(2)
    put(queue, 9, b"y")
    queue.put_back(first)
    assert queue.dropped == 0
    assert queue.first_seq() == 1
    assert seqs(drain(queue)) == [1, 2, 3, 4, 5]
    queue.put_back([])
    assert len(queue) == 0


def test_take_respects_the_count_limit() -> None:
    queue = new_queue()
    for i in range(5):
        put(queue, i, b"x")
    assert seqs(queue.take(2)) == [1, 2]
    assert seqs(queue.take(2)) == [3, 4]
    assert seqs(queue.take(2)) == [5]
    assert queue.take(2) == []


def test_take_keeps_order_and_accounting_whether_it_pops_or_copies_the_rest() -> None:
    # A long rest is popped from (a few events out of many); a short rest is copied into a new deque.
    for total, count in ((100, 3), (12, 10), (10, 10)):
        queue = new_queue()
        for i in range(total):
            put(queue, i, b"x" * (i % 7))
        assert seqs(queue.take(count)) == list(range(1, count + 1))
        left = total - count
        assert len(queue) == left
        assert queue.memory_bytes == sum(i % 7 for i in range(count, total)) + left * QUEUED_EVENT_OVERHEAD
        put(queue, total, b"y")
        assert seqs(drain(queue)) == list(range(count + 1, total + 2))
        assert queue.memory_bytes == 0


def test_take_respects_the_byte_limit_with_cloudwatch_overhead() -> None:
    cost = 100 + EVENT_OVERHEAD_BYTES
    queue = new_queue()
    for i in range(5):
        put(queue, i, b"m" * 100)
    assert seqs(queue.take(10, 3 * cost)) == [1, 2, 3]
    assert seqs(queue.take(10, 2 * cost - 1)) == [4]
    assert queue.memory_bytes == 100 + QUEUED_EVENT_OVERHEAD

    # The default limit is CloudWatch's 1 MiB: 400 kB events go two by two.
    big = new_queue()
    for i in range(5):
        put(big, i, b"z" * 400_000)
    assert [len(big.take(10_000)) for _ in range(3)] == [2, 2, 1]
    assert len(big) == 0

    # An event larger than the limit still leaves on its own (it cannot get smaller by waiting).
    lone = new_queue()
    put(lone, 0, b"L" * 1000)
    put(lone, 1, b"s")
    assert seqs(lone.take(10, 500)) == [1]
    assert seqs(lone.take(10, 500)) == [2]


def test_wake_is_set_once_when_a_full_batch_by_count_is_ready() -> None:
    wake = threading.Event()
    queue = EventQueue(1000, 10 * MIB, 3, wake, cost=CLOUDWATCH_BATCH_COST)
    put(queue, 0, b"a")
    put(queue, 1, b"b")
    assert not wake.is_set()
    assert not queue.batch_ready()
    put(queue, 2, b"c")
    assert wake.is_set()
    assert queue.batch_ready()

    wake.clear()
    put(queue, 3, b"d")  # still the same full batch: no second signal
    assert not wake.is_set()

    assert len(queue.take(3)) == 3  # one left: no longer full
    assert not queue.batch_ready()
    put(queue, 4, b"e")
    assert not wake.is_set()
    put(queue, 5, b"f")
    assert wake.is_set()  # full again after a take: signalled again


def test_wake_is_set_once_when_a_full_batch_by_bytes_is_ready() -> None:
    wake = threading.Event()
    queue = EventQueue(1000, 10 * MIB, 10_000, wake, cost=CLOUDWATCH_BATCH_COST)
    payload = b"w" * 350_000
    assert 2 * (len(payload) + EVENT_OVERHEAD_BYTES) < MAX_BATCH_BYTES <= 3 * (len(payload) + EVENT_OVERHEAD_BYTES)
    put(queue, 0, payload)
    put(queue, 1, payload)
    assert not wake.is_set()
    put(queue, 2, payload)
    assert wake.is_set()
    wake.clear()
    put(queue, 3, b"tiny")
    assert not wake.is_set()


# --------------------------------------------------------------------------- through the sink


@pytest.fixture
def stream_ready(logs_client: Any) -> Any:
    create_group_and_stream(logs_client, GROUP, STREAM)
    return logs_client


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> Any:
    """No credentials in the environment: the credential guard keeps everything in the queue.

    Returns a function that brings them back. The guard looks again every 0.05 s.
    """
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(credential_recheck=0.05))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    def restore() -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    return restore


SINK_DEFAULTS: dict[str, Any] = {"flush_interval": 0.05, "retry_delay": 0.01, "shutdown_timeout": 2.0}


def make_sink(endpoint: str, **options: Any) -> CloudWatchSink:
    return add_text_sink(GROUP, STREAM, endpoint, SINK_DEFAULTS, **options)


def test_max_queue_size_drops_the_oldest_and_the_newest_are_delivered(
    endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder, no_credentials: Any
) -> None:
    problems = Problems()
    sink = make_sink(endpoint, max_queue_size=100, on_error=problems)
    wait_for(lambda: problems.of_kind("no_credentials"), timeout=5, message="credential guard report")

    for i in range(250):
        logger.info(f"q{i}")
    # Nothing can leave the queue without credentials, so the count is exact.
    assert sink.stats.dropped == 150
    assert sink.stats.queued == 100
    wait_for(lambda: problems.count_of("queue_full") == 150, timeout=5, message="queue_full reported")
    for problem in problems.of_kind("queue_full"):
        assert problem.count > 0
        assert str(problem.count) in problem.message
    assert put_recorder.calls == []

    no_credentials()
    assert sink.force_flush(timeout=10) is True
    newest = [f"q{i}" for i in range(150, 250)]
    assert put_recorder.messages == newest
    assert read_messages(stream_ready, GROUP, STREAM) == newest
    stats = sink.stats
    assert (stats.sent, stats.dropped, stats.queued) == (100, 150, 0)
    assert problems.count_of("queue_full") == 150
    assert problems.of_kind("recovered")


def test_max_queue_bytes_drops_the_oldest_and_the_newest_are_delivered(
    endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder, no_credentials: Any
) -> None:
    problems = Problems()
    max_bytes = 2 * MIB
    record_bytes = 50_000
    sink = make_sink(endpoint, max_queue_bytes=max_bytes, on_error=problems)
    wait_for(lambda: problems.of_kind("no_credentials"), timeout=5, message="credential guard report")

    messages = [f"{i:03d}" + "x" * (record_bytes - 3) for i in range(100)]
    for message in messages:
        logger.info(message)
    capacity = max_bytes // (record_bytes + QUEUED_EVENT_OVERHEAD)
    assert capacity == 41
    assert sink.stats.dropped == 100 - capacity
    assert sink.stats.queued == capacity
    wait_for(lambda: problems.count_of("queue_full") == 100 - capacity, timeout=5, message="queue_full reported")
    assert put_recorder.calls == []

    no_credentials()
    assert sink.force_flush(timeout=10) is True
    newest = messages[-capacity:]
    assert put_recorder.messages == newest
    for batch in put_recorder.batches:
        assert PutLogEventsRecorder.batch_size(batch) <= MAX_BATCH_BYTES
    assert read_messages(stream_ready, GROUP, STREAM) == newest
    stats = sink.stats
    assert (stats.sent, stats.dropped, stats.queued) == (capacity, 100 - capacity, 0)


def test_write_never_waits_for_a_stuck_worker(endpoint: str, stream_ready: Any, fault_proxy: FaultProxy) -> None:
    fault_proxy.set_schedule(itertools.repeat("hang"))  # every PutLogEvents hangs until the proxy closes
    problems = Problems()
    sink = make_sink(
        fault_proxy.url,
        flush_interval=60.0,
        max_batch_size=100,
        max_queue_size=5_000,
        shutdown_timeout=1.0,
        on_error=problems,
    )
    for i in range(100):
        logger.info(f"first-{i}")
    wait_for(lambda: fault_proxy.count("hang") == 1, timeout=10, message="the worker is stuck in a hanging call")

    durations: list[float] = []
    started = time.perf_counter()
    for i in range(10_000):
        before = time.perf_counter()
        logger.info(f"later-{i}")
        durations.append(time.perf_counter() - before)
        if before - started > 8.0:
            break  # already too slow: fail now rather than at the suite timeout
    elapsed = time.perf_counter() - started

    # The hanging call lasts until botocore's 15 s read timeout: none of that is felt by the caller.
    assert len(durations) == 10_000, f"only {len(durations)} log calls in {elapsed:.1f}s"
    assert elapsed < 8.0, elapsed
    # A write that waited for the worker would wait out the hang: botocore's 15 s read timeout, of which at
    # least 7 s are left here. The bound is far below that and far above what a descheduled thread loses on
    # a loaded 2-CPU machine (one call took 1.2 s with two CPU hogs alongside the suite).
    assert max(durations) < 4.0, max(durations)
    # Still the single hanging call: the callers made no network call of their own.
    assert len(fault_proxy.calls) == 1
    stats = sink.stats
    # The bound holds while the worker is stuck: 5,000 queued + the 100 in flight; the rest dropped, counted.
    assert (stats.queued, stats.dropped, stats.sent) == (5_100, 5_000, 0)

    stopping = time.monotonic()
    logger.remove()
    assert time.monotonic() - stopping < 1.0 + 2.0
    assert sink.stats.abandoned == 5_100


# --------------------------------------------------------------------------- the spool's copy to disk


def test_records_evicted_while_being_copied_to_disk_are_dropped_only_if_the_copy_fails() -> None:
    queue = new_queue(max_events=5)
    for n in range(5):
        queue.put(1, f"m{n}", 2)
    copied = queue.copy_all()  # seqs 1-5, on their way to disk
    for n in range(5, 8):
        queue.put(1, f"m{n}", 2)  # evicts seqs 1-3: copied, so not lost (yet)
    assert queue.dropped == 0
    queue.discard_persisted(copied[-1][1])  # 1-5 on disk: the evicted three were never lost
    assert (queue.dropped, [event[1] for event in queue.copy_all()]) == (0, [6, 7, 8])
    for n in range(8, 13):
        queue.put(1, f"m{n}", 2)  # seqs 9-13: evicts 6-8, copied by the copy_all just above
    assert queue.dropped == 0
    queue.persist_failed()  # ... which never reached the disk: they are dropped after all
    assert queue.dropped == 3
    queue.put(1, "m13", 2)  # seq 14 evicts 9, never copied: dropped at once, as without a spool
    assert queue.dropped == 4
    assert [event[1] for event in queue.copy_all()] == [10, 11, 12, 13, 14]


def test_discarding_what_reached_the_disk_leaves_the_newer_records_and_their_bytes() -> None:
    queue = new_queue()
    for n in range(10):
        queue.put(1, "x" * (n + 1), n + 1)
    queue.copy_all()
    queue.discard_persisted(6)
    assert [event[1] for event in queue.copy_all()] == [7, 8, 9, 10]
    assert queue.memory_bytes == (7 + 8 + 9 + 10) + 4 * QUEUED_EVENT_OVERHEAD
    queue.discard_persisted(10)
    assert (len(queue), queue.memory_bytes, queue.pending) == (0, 0, 0)
