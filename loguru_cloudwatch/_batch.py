"""Cutting events into PutLogEvents batches that CloudWatch accepts.

The queue already hands out chunks within the count and byte limits; here they are checked against
CloudWatch's time window, sorted by timestamp and split so that no batch spans more than 24 hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from ._limits import MAX_BATCH_SPAN_MS, MAX_EVENT_AGE_MS, MAX_EVENT_FUTURE_MS
from ._queue import Event

_by_timestamp = itemgetter(0)


def split_out_of_window(events: list[Event], now_ms: int) -> tuple[list[Event], list[Event], list[Event]]:
    """Separate the events CloudWatch would refuse for their timestamp: (sendable, too_old, too_new)."""
    oldest = now_ms - MAX_EVENT_AGE_MS
    newest = now_ms + MAX_EVENT_FUTURE_MS
    sendable: list[Event] = []
    too_old: list[Event] = []
    too_new: list[Event] = []
    for event in events:
        timestamp = event[0]
        if timestamp < oldest or timestamp < 0:
            too_old.append(event)
        elif timestamp > newest:
            too_new.append(event)
        else:
            sendable.append(event)
    return sendable, too_old, too_new


def plan_batches(events: list[Event], now_ms: int) -> tuple[list[list[Event]], list[Event], list[Event]]:
    """``make_batches`` of what ``split_out_of_window`` keeps: (batches, too_old, too_new).

    The common case (all in the window, within 24 hours, in order) is checked with C-level passes only,
    since this runs on the worker thread for every event, holding the GIL the callers wait for.
    """
    if not events:
        return [], [], []
    stamps = list(map(_by_timestamp, events))
    low, high = min(stamps), max(stamps)
    if low >= max(0, now_ms - MAX_EVENT_AGE_MS) and high <= now_ms + MAX_EVENT_FUTURE_MS:
        if high - low <= MAX_BATCH_SPAN_MS:
            return [events if stamps == sorted(stamps) else sorted(events, key=_by_timestamp)], [], []
        return make_batches(events), [], []
    sendable, too_old, too_new = split_out_of_window(events, now_ms)
    return make_batches(sendable), too_old, too_new


def make_batches(events: list[Event]) -> list[list[Event]]:
    """Sort by timestamp (stable: equal timestamps keep their arrival order) and split on 24 h spans."""
    ordered = sorted(events, key=_by_timestamp)
    batches: list[list[Event]] = []
    current: list[Event] = []
    for event in ordered:
        if current and event[0] - current[0][0] > MAX_BATCH_SPAN_MS:
            batches.append(current)
            current = []
        current.append(event)
    if current:
        batches.append(current)
    return batches


def rejected_indexes(info: Mapping[str, Any] | None, count: int) -> dict[str, range]:
    """Which events of a sent batch CloudWatch refused, by reason, from ``rejectedLogEventsInfo``.

    ``tooOldLogEventEndIndex`` and ``expiredLogEventEndIndex`` are exclusive ends, and
    ``tooNewLogEventStartIndex`` an inclusive start (AWS's documented semantics). An event counted by
    both ``too_old`` and ``expired`` is counted once.
    """
    if not info:
        return {}
    result: dict[str, range] = {}
    too_old_end = min(int(info.get("tooOldLogEventEndIndex", 0) or 0), count)
    expired_end = min(int(info.get("expiredLogEventEndIndex", 0) or 0), count)
    too_new_start = info.get("tooNewLogEventStartIndex")
    if too_old_end > 0:
        result["too_old"] = range(0, too_old_end)
    if expired_end > too_old_end:
        result["expired"] = range(too_old_end, expired_end)
    if too_new_start is not None:
        start = max(int(too_new_start), too_old_end, expired_end)
        if start < count:
            result["too_new"] = range(start, count)
    return result
