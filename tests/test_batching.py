"""Batching: what the worker actually sends with PutLogEvents.

moto does not enforce the 10,000-event, 1 MiB and 24-hour rules, so every rule here is asserted on the
requests recorded on the wire (``put_recorder``), and delivery is checked by reading moto back.
"""

from __future__ import annotations

import math
import random
import threading
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._batch import make_batches, plan_batches, rejected_indexes, split_out_of_window
from loguru_cloudwatch._limits import (
    EVENT_OVERHEAD_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
)
from tests.support.aws import create_group_and_stream, read_events, read_messages
from tests.support.problems import Problems
from tests.support.recorders import PutLogEventsRecorder
from tests.support.sinks import add_text_sink
from tests.support.waiting import wait_for

GROUP = "batching-group"
STREAM = "batching-stream"
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


@pytest.fixture
def stream_ready(logs_client: Any) -> Any:
    """Group and stream exist up front, so every recorded call is a PutLogEvents of records (no create retry)."""
    create_group_and_stream(logs_client, GROUP, STREAM)
    return logs_client


#: Nothing is sent before force_flush() unless a test asks for timed flushes.
SINK_DEFAULTS: dict[str, Any] = {"flush_interval": 60.0, "retry_delay": 0.01, "shutdown_timeout": 3.0}


def make_sink(endpoint: str, **options: Any) -> CloudWatchSink:
    return add_text_sink(GROUP, STREAM, endpoint, SINK_DEFAULTS, **options)


def log_at(timestamp_ms: int, message: str) -> None:
    """Log ``message`` with the record's time set to ``timestamp_ms`` (whole seconds keep it exact)."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)
    logger.patch(lambda record: record.update(time=moment)).info(message)


def whole_second_ms(offset_ms: int) -> int:
    """Now + offset, rounded down to a whole second, in ms."""
    return (int(time.time()) * 1000 + offset_ms) // 1000 * 1000


def assert_sorted_calls(recorder: PutLogEventsRecorder) -> None:
    for batch in recorder.batches:
        stamps = [event["timestamp"] for event in batch]
        assert stamps == sorted(stamps), stamps


# --------------------------------------------------------------------------- background flush


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


# --------------------------------------------------------------------------- count and byte limits


def test_at_most_10000_events_per_call(endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder) -> None:
    sink = make_sink(endpoint, flush_interval=60.0)
    total = 25_000
    for i in range(total):
        logger.info(f"c{i}")
    assert sink.force_flush(timeout=20) is True

    assert put_recorder.event_counts == [10_000, 10_000, 5_000]
    assert max(put_recorder.event_counts) <= MAX_BATCH_EVENTS
    assert put_recorder.messages == [f"c{i}" for i in range(total)]
    assert (sink.stats.sent, sink.stats.batches) == (total, 3)
    assert len(read_events(stream_ready, GROUP, STREAM)) == total


def test_calls_are_as_few_as_possible(endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder) -> None:
    sink = make_sink(endpoint, flush_interval=60.0)
    total = 50_000
    for i in range(total):
        logger.info(f"e{i}")
    assert sink.force_flush(timeout=30) is True

    assert len(put_recorder.calls) == math.ceil(total / MAX_BATCH_EVENTS) == 5
    assert put_recorder.event_counts == [MAX_BATCH_EVENTS] * 5
    assert len(set(put_recorder.messages)) == total
    assert (sink.stats.sent, sink.stats.batches, sink.stats.dropped) == (total, 5, 0)


def test_at_most_1_MiB_per_call_counting_utf8_bytes(
    endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder
) -> None:
    rng = random.Random(1234)
    alphabet = ["é", "€", "𝄞", "a"]  # 2, 3, 4 and 1 UTF-8 bytes
    messages: list[str] = []
    for i in range(60):
        char = alphabet[i % len(alphabet)]
        width = len(char.encode("utf-8"))
        target = rng.randint(80_000, 120_000)  # UTF-8 bytes
        messages.append(f"{i:03d}:" + char * (target // width))
    sizes = [len(m.encode("utf-8")) + EVENT_OVERHEAD_BYTES for m in messages]
    # Counting characters instead of bytes would pack about 2.5 times too much into a call.
    assert sum(len(m) for m in messages) < sum(sizes) / 1.5

    sink = make_sink(endpoint, flush_interval=60.0)
    for message in messages:
        logger.info(message)
    assert sink.force_flush(timeout=20) is True

    batches = put_recorder.batches
    for batch in batches:
        assert PutLogEventsRecorder.batch_size(batch) <= MAX_BATCH_BYTES
    # Well filled: no more calls than the byte total needs, plus one for in-order packing.
    minimum = math.ceil(sum(sizes) / MAX_BATCH_BYTES)
    assert minimum <= len(batches) <= minimum + 1, (minimum, [len(b) for b in batches])
    # Every call but the last was full: the record after it would not have fit.
    position = 0
    for batch in batches[:-1]:
        used = PutLogEventsRecorder.batch_size(batch)
        position += len(batch)
        assert used + sizes[position] > MAX_BATCH_BYTES, (position, used)
    assert put_recorder.messages == messages
    assert read_messages(stream_ready, GROUP, STREAM) == messages
    assert sink.stats.sent == len(messages)


# --------------------------------------------------------------------------- order and time window


def test_events_are_sorted_by_timestamp_and_ties_keep_arrival_order(
    endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder
) -> None:
    base = whole_second_ms(-600_000)
    offsets_s = [5, 1, 3, 1, 0, 4, 3, 1, 5, 0]
    arrivals = [(base + offset * 1000, f"o{index}-t{offset}") for index, offset in enumerate(offsets_s)]

    sink = make_sink(endpoint, flush_interval=60.0)
    for timestamp, message in arrivals:
        log_at(timestamp, message)
    assert sink.force_flush(timeout=5) is True

    expected = sorted(arrivals, key=lambda item: item[0])  # stable: ties in arrival order
    assert len(put_recorder.calls) == 1
    assert [(e["timestamp"], e["message"]) for e in put_recorder.batches[0]] == expected
    # moto refuses unordered batches, so this also proves CloudWatch would store them.
    stored = read_events(stream_ready, GROUP, STREAM)
    assert [(e["timestamp"], e["message"]) for e in stored] == expected


def test_no_call_spans_more_than_24_hours(endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder) -> None:
    start = whole_second_ms(-3 * DAY_MS)
    arrivals = [(start + i * 3 * HOUR_MS, f"span-{i}") for i in range(25)]  # 72 hours, every 3 hours
    shuffled = arrivals[:]
    random.Random(7).shuffle(shuffled)

    sink = make_sink(endpoint, flush_interval=60.0)
    for timestamp, message in shuffled:
        log_at(timestamp, message)
    assert sink.force_flush(timeout=5) is True

    batches = put_recorder.batches
    assert len(batches) >= 3  # 72 hours need at least three 24-hour calls
    for batch in batches:
        stamps = [e["timestamp"] for e in batch]
        assert stamps == sorted(stamps)
        assert stamps[-1] - stamps[0] <= MAX_BATCH_SPAN_MS
    assert sorted((e["timestamp"], e["message"]) for b in batches for e in b) == arrivals
    assert sink.stats.sent == len(arrivals)
    stored = read_events(stream_ready, GROUP, STREAM)
    assert sorted((e["timestamp"], e["message"]) for e in stored) == arrivals


def test_records_outside_the_time_window_are_rejected_and_counted(
    endpoint: str, stream_ready: Any, put_recorder: PutLogEventsRecorder
) -> None:
    problems = Problems()
    sink = make_sink(endpoint, flush_interval=60.0, on_error=problems)
    too_old = whole_second_ms(-15 * DAY_MS)
    too_new = whole_second_ms(3 * HOUR_MS)
    recent = whole_second_ms(-60_000)
    kept: list[str] = []
    for i in range(12):
        if i % 4 == 1:
            log_at(too_old + i * 1000, f"old-{i}")
        elif i % 6 == 2:
            log_at(too_new + i * 1000, f"new-{i}")
        else:
            log_at(recent + i * 1000, f"ok-{i}")
            kept.append(f"ok-{i}")
    n_old = sum(1 for i in range(12) if i % 4 == 1)
    n_new = sum(1 for i in range(12) if i % 4 != 1 and i % 6 == 2)
    assert (n_old, n_new, len(kept)) == (3, 2, 7)

    # Definitively rejected counts as done for force_flush.
    assert sink.force_flush(timeout=5) is True
    assert sorted(put_recorder.messages) == sorted(kept)  # the refused ones were never sent
    assert sorted(read_messages(stream_ready, GROUP, STREAM)) == sorted(kept)
    stats = sink.stats
    assert (stats.sent, stats.rejected, stats.dropped, stats.queued) == (7, 5, 0, 0)
    rejected = problems.of_kind("rejected")
    assert sorted(p.count for p in rejected) == [n_new, n_old]
    assert sum(p.count for p in rejected) == stats.rejected


def test_plan_batches_fast_path_agrees_with_the_careful_split() -> None:
    """The worker's C-level check of the common case gives what splitting event by event gives."""
    now = 1_800_000_000_000
    rng = random.Random(11)
    spreads = [0, 1000, MAX_BATCH_SPAN_MS, MAX_BATCH_SPAN_MS + 1, 3 * DAY_MS, 16 * DAY_MS]
    for trial in range(300):
        spread = spreads[trial % len(spreads)]
        start = now - rng.randrange(0, 15 * DAY_MS) if trial % 3 else now - 5000
        stamps = [start + rng.randrange(0, spread + 1) for _ in range(rng.randrange(1, 40))]
        if trial % 2:
            stamps.sort()
        events = [(stamp, seq, f"m{seq}", 2) for seq, stamp in enumerate(stamps, 1)]
        sendable, too_old, too_new = split_out_of_window(events, now)
        assert plan_batches(events, now) == (make_batches(sendable), too_old, too_new)
    assert plan_batches([], now) == ([], [], [])
    in_order = [(now - 10, 1, "a", 1), (now - 5, 2, "b", 1)]
    assert plan_batches(in_order, now)[0][0] is in_order  # the common case is not even copied


# --------------------------------------------------------------------------- rejectedLogEventsInfo


@pytest.mark.parametrize(
    ("info", "count", "expected"),
    [
        (None, 10, {}),
        ({}, 10, {}),
        ({"tooOldLogEventEndIndex": 3}, 10, {"too_old": range(0, 3)}),
        ({"expiredLogEventEndIndex": 4}, 10, {"expired": range(0, 4)}),
        # An event both too old and expired is counted once.
        (
            {"tooOldLogEventEndIndex": 3, "expiredLogEventEndIndex": 5},
            10,
            {"too_old": range(0, 3), "expired": range(3, 5)},
        ),
        ({"tooOldLogEventEndIndex": 5, "expiredLogEventEndIndex": 2}, 10, {"too_old": range(0, 5)}),
        # tooNewLogEventStartIndex is inclusive, and 0 means every event.
        ({"tooNewLogEventStartIndex": 8}, 10, {"too_new": range(8, 10)}),
        ({"tooNewLogEventStartIndex": 0}, 4, {"too_new": range(0, 4)}),
        ({"tooNewLogEventStartIndex": 10}, 10, {}),
        (
            {"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 7},
            10,
            {"too_old": range(0, 2), "too_new": range(7, 10)},
        ),
        # Overlapping or out-of-range indexes never count an event twice or beyond the batch.
        (
            {"tooOldLogEventEndIndex": 6, "tooNewLogEventStartIndex": 4},
            10,
            {"too_old": range(0, 6), "too_new": range(6, 10)},
        ),
        ({"tooOldLogEventEndIndex": 50}, 10, {"too_old": range(0, 10)}),
    ],
)
def test_rejected_indexes_follow_aws_semantics(info: Any, count: int, expected: dict[str, range]) -> None:
    result = rejected_indexes(info, count)
    assert result == expected
    indexes = [i for r in result.values() for i in r]
    assert len(indexes) == len(set(indexes))
    assert all(0 <= i < count for i in indexes)


class FakeLogsClient:
    """Answers PutLogEvents with scripted rejectedLogEventsInfo; records every call."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self._lock = threading.Lock()
        self._answers = list(answers)
        self.calls: list[list[dict[str, Any]]] = []

    def put_log_events(self, **params: Any) -> dict[str, Any]:
        with self._lock:
            self.calls.append(list(params["logEvents"]))
            answer = self._answers.pop(0) if self._answers else {}
        return {"nextSequenceToken": "0", **answer}


def test_rejected_log_events_info_is_counted_exactly_and_nothing_is_resent() -> None:
    client = FakeLogsClient(
        [
            {"rejectedLogEventsInfo": {"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 8}},
            {"rejectedLogEventsInfo": {"expiredLogEventEndIndex": 1}},
            {},
        ]
    )
    problems = Problems()
    sink = CloudWatchSink(
        GROUP, STREAM, client=client, serialize=False, flush_interval=60.0, retry_delay=0.01,
        shutdown_timeout=3.0, on_error=problems,
    )  # fmt: skip
    logger.add(sink, format="{message}")

    for i in range(10):
        logger.info(f"a{i}")
    assert sink.force_flush(timeout=5) is True
    stats = sink.stats
    assert (stats.sent, stats.rejected, stats.batches) == (6, 4, 1)

    for i in range(5):
        logger.info(f"b{i}")
    assert sink.force_flush(timeout=5) is True
    for i in range(3):
        logger.info(f"c{i}")
    assert sink.force_flush(timeout=5) is True

    stats = sink.stats
    assert (stats.sent, stats.rejected, stats.batches, stats.retries) == (6 + 4 + 3, 4 + 1, 3, 0)
    # A partial success is never resent: one call per flush, every record sent exactly once.
    assert [len(call) for call in client.calls] == [10, 5, 3]
    sent = [event["message"] for call in client.calls for event in call]
    assert len(sent) == len(set(sent)) == 18
    assert sum(p.count for p in problems.of_kind("rejected")) == 5
