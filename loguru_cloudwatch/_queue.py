"""The bounded in-memory queue between the callers' threads and the flush worker.

It knows nothing of CloudWatch: what a batch may hold comes from the shipper, as a ``BatchCost``.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from itertools import accumulate, islice, repeat
from operator import add, itemgetter
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._stats import Counters

#: Approximate memory of one queued event beyond its message's UTF-8 bytes (the tuple, three ints, the
#: str header and the deque slot), so that ``max_queue_bytes`` bounds real memory even for tiny records.
QUEUED_EVENT_OVERHEAD = 216


#: One log event waiting for delivery: (timestamp in ms since the epoch, arrival sequence number,
#: message, the message's size in UTF-8 bytes, at most MAX_EVENT_BYTES). A plain tuple of atomic values,
#: not a NamedTuple: CPython's garbage collector stops tracking such tuples, so a queue of 100,000
#: events adds nothing to the cost of its collections (it measurably did with NamedTuple instances).
#: The message is a str, not the bytes orjson returns: orjson's bytes keep a buffer of several KiB
#: whatever their length (10x the accounted memory under an outage), and boto3 wants a str anyway.
Event = tuple[int, int, str, int]
_by_seq = itemgetter(1)
_size = itemgetter(3)


@dataclass(frozen=True)
class BatchCost:
    """What one batch may hold, as the shipper counts it: each event costs its size plus ``per_event``
    bytes, and a batch costs at most ``max_bytes``.

    A linear cost rather than a function called per event: ``put`` keeps the running cost of what is
    queued with one addition (no call per record on the caller's thread), and both CloudWatch (26 bytes
    per event) and a spool's batches (read back from disk) count this way."""

    per_event: int
    max_bytes: int


class EventQueue:
    """A FIFO of events bounded in count and in bytes; when full, the oldest events are dropped.

    ``put`` is what callers' threads do: O(1), under a lock held for a few operations, never waiting
    for the worker. It sets ``wake`` once a full batch is waiting.
    """

    def __init__(
        self, max_events: int, max_bytes: int, batch_events: int, wake: threading.Event, *, cost: BatchCost
    ) -> None:
        #: The cost model of the batches cut from this queue (the shipper's).
        self.cost = cost
        self._per_event = cost.per_event
        self._batch_bytes = cost.max_bytes
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._batch_events = batch_events
        self._wake = wake
        self._lock = threading.Lock()
        self._events: deque[Event] = deque()
        self._payload_bytes = 0
        self._next_seq = 1
        self._full_signalled = False
        self._in_flight = 0
        self.dropped = 0
        #: With a spool: the newest event copied for the move to disk under way (0: none), and those of
        #: the copy that a full queue evicted meanwhile (dropped only if the move fails).
        self._persisting_through = 0
        self._evicted_copied: list[int] = []

    def __len__(self) -> int:
        return len(self._events)

    @property
    def pending(self) -> int:
        """Events not yet delivered: those queued and those taken for the attempt under way."""
        with self._lock:
            return len(self._events) + self._in_flight

    @property
    def memory_bytes(self) -> int:
        """Bytes the queued events account for against ``max_queue_bytes``."""
        return self._payload_bytes + QUEUED_EVENT_OVERHEAD * len(self._events)

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest event ever accepted (0 when none)."""
        return self._next_seq - 1

    def first_seq(self) -> int:
        """Sequence number of the oldest queued event, or ``last_seq + 1`` when empty."""
        with self._lock:
            return self._events[0][1] if self._events else self._next_seq

    def put(self, timestamp: int, message: str, size: int) -> None:
        """Queue one event; ``size`` is the message's length in UTF-8 bytes."""
        # Every caller's record comes through here: attribute accesses are kept to a minimum.
        with self._lock:
            seq = self._next_seq
            self._next_seq = seq + 1
            events = self._events
            events.append((timestamp, seq, message, size))
            payload_bytes = self._payload_bytes = self._payload_bytes + size
            count = len(events)
            if count > self._max_events or payload_bytes + QUEUED_EVENT_OVERHEAD * count > self._max_bytes:
                self._enforce_bounds()
            if self._full_signalled:
                return  # the worker knows (waking it at every put of a full queue would make it spin)
            if self._batch_ready():
                self._full_signalled = True
                self._wake.set()

    def put_back(self, events: list[Event]) -> None:
        """End the attempt of ``take``: return its undelivered events to the front, in arrival order,
        ahead of newer ones (none: all were delivered or rejected)."""
        ordered = sorted(events, key=_by_seq)
        with self._lock:
            self._in_flight = 0
            if not ordered:
                return
            self._events.extendleft(reversed(ordered))
            self._payload_bytes += sum(event[3] for event in ordered)
            self._enforce_bounds()

    def _batch_ready(self) -> bool:
        count = len(self._events)
        return count >= self._batch_events or (self._payload_bytes + self._per_event * count >= self._batch_bytes)

    def batch_ready(self) -> bool:
        """True when at least one full batch (by count or by bytes) is waiting."""
        with self._lock:
            return self._batch_ready()

    def _enforce_bounds(self) -> None:
        events = self._events
        while events and (
            len(events) > self._max_events
            or self._payload_bytes + QUEUED_EVENT_OVERHEAD * len(events) > self._max_bytes
        ):
            evicted = events.popleft()
            self._payload_bytes -= evicted[3]
            if evicted[1] <= self._persisting_through:
                self._evicted_copied.append(evicted[1])  # copied to disk: dropped only if that fails
            else:
                self.dropped += 1

    def take(self, max_events: int, max_batch_bytes: int | None = None) -> list[Event]:
        """Remove and return the oldest events that fit one batch (``put_back`` ends the attempt).

        ``max_batch_bytes`` defaults to the cost model's ``max_bytes``.
        """
        limit = self._batch_bytes if max_batch_bytes is None else max_batch_bytes
        per_event = self._per_event
        with self._lock:
            events = self._events
            if not events:
                return []
            # C-level passes only (islice, map, accumulate, bisect): a batch is up to 10,000 events and the
            # lock is held meanwhile. costs[i] is what events[0..i] cost in a batch.
            costs = list(accumulate(map(add, map(_size, islice(events, max_events)), repeat(per_event))))
            # An event larger than the limit still leaves on its own (it cannot get smaller by waiting).
            count = max(1, bisect_right(costs, limit))
            if count == len(events):
                taken = list(events)
                events.clear()
            elif len(events) > 9 * count:  # popping costs less than copying the long rest
                popleft = events.popleft
                taken = [popleft() for _ in range(count)]
            else:
                taken = list(islice(events, count))
                self._events = deque(islice(events, count, None))
            self._payload_bytes -= costs[count - 1] - per_event * count
            self._full_signalled = self._batch_ready()
            self._in_flight = count
        return taken

    def copy_all(self) -> list[Event]:
        """Every queued event, oldest first, left in the queue (the spool copies them to disk, then calls
        ``discard_persisted``, or ``persist_failed``: until then they still count as pending)."""
        with self._lock:
            self._persisting_through = self._events[-1][1] if self._events else 0
            return list(self._events)

    def discard_persisted(self, through_seq: int) -> None:
        """Remove the oldest events up to ``through_seq``: they are on disk now."""
        with self._lock:
            events = self._events
            count = bisect_right(events, through_seq, key=_by_seq)  # seqs increase along the queue
            self._payload_bytes -= sum(map(_size, islice(events, count)))
            if count == len(events):
                events.clear()
            else:
                self._events = deque(islice(events, count, None))
            # Those the callers' threads evicted meanwhile (a full queue) were copied: on disk, not dropped.
            self._evicted_copied = [seq for seq in self._evicted_copied if seq > through_seq]
            self._full_signalled = self._batch_ready()

    def persist_failed(self) -> None:
        """The copy of ``copy_all`` did not all reach the disk: what was evicted of it meanwhile is dropped."""
        with self._lock:
            self.dropped += len(self._evicted_copied)
            self._evicted_copied = []
            self._persisting_through = 0

    def signal(self) -> None:
        """Wake the worker (a spool has a full batch on disk)."""
        self._wake.set()

    @property
    def memory_dropped(self) -> int:
        """Events dropped because memory was full (all of ``dropped``, for the queue alone)."""
        return self.dropped

    def start(self) -> None:
        """The worker starts: nothing to start for memory alone."""

    def tick(self) -> float | None:
        """Housekeeping between the worker's steps: none for memory alone (see ``_spool.SpooledBacklog``).
        Returns the most seconds the worker may sleep before the next tick (None: no limit)."""
        return None

    def close(self) -> None:
        """The worker ends: nothing to close in memory."""

    @property
    def on_disk(self) -> int:
        """Events held on disk: none without a spool."""
        return 0

    @property
    def adopted(self) -> Counters | None:
        """What delivering dead processes' spool files counted: none without a spool."""
        return None

    def clear(self) -> int:
        """Forget every queued event; returns how many there were."""
        with self._lock:
            count = len(self._events)
            self._events.clear()
            self._payload_bytes = 0
            return count


class Backlog(Protocol):
    """What the worker takes events from: the ``EventQueue`` itself, or ``_spool.SpooledBacklog`` (the
    queue in front of a spool file). Only the worker calls ``start``, ``take``, ``put_back``, ``tick`` and ``close``."""

    @property
    def dropped(self) -> int: ...
    @property
    def memory_dropped(self) -> int: ...
    @property
    def pending(self) -> int: ...
    @property
    def last_seq(self) -> int: ...
    def __len__(self) -> int: ...
    def first_seq(self) -> int: ...
    def batch_ready(self) -> bool: ...
    def take(self, max_events: int, max_batch_bytes: int | None = None) -> list[Event]: ...
    def put_back(self, events: list[Event]) -> None: ...
    def start(self) -> None: ...
    def tick(self) -> float | None: ...
    def close(self) -> None: ...
    @property
    def on_disk(self) -> int: ...
    @property
    def adopted(self) -> Counters | None: ...
