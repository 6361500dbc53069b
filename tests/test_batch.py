"""Batching (``_batch``): what each PutLogEvents call carries, and the events CloudWatch would refuse.

At most 10,000 events and 1 MiB (UTF-8 bytes + 26 each) per call, as few calls as that allows, sorted by
timestamp, never more than 24 hours in one call; events outside CloudWatch's time window are rejected
before any call, and ``rejectedLogEventsInfo`` is read the way AWS means it. moto does not enforce the
10,000-event, 1 MiB and 24-hour rules, so every rule here is asserted on the requests recorded on the wire
(``put_recorder``), and delivery is checked by reading moto back. When the worker sends is in
``test_worker.py``; what the shipper does with a partial success, in ``test_cloudwatch.py``.
"""

from __future__ import annotations

import math
import random
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

GROUP = "batch-group"
STREAM = "batch-stream"
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


# --------------------------------------------------------------------------- reading rejectedLogEventsInfo


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
