"""The writing half of the durable backlog: the spool thread moving the queue to this process's spool file.

``SpoolWriter`` holds the state both halves share, under one lock (one SQLite connection): the file, the
image of its chunks, the events read ahead and the batch being sent. It owns what reaches the disk: every
``PERSIST_INTERVAL`` its thread moves what the queue holds into chunks (at most a batch each, so no
transaction, no lock hold and no chunk grows with a long outage), within ``max_spool_bytes``, dropping the
oldest chunks when it must. ``_spool.SpooledBacklog`` adds the reading half the worker uses.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import deque
from itertools import accumulate, repeat
from operator import add, itemgetter

from ._config import SinkConfig
from ._queue import BatchCost, Event, EventQueue
from ._report import INTERNAL_ERROR, RECOVERED, SPOOL_FULL, SPOOL_UNAVAILABLE, Reporter, SinkProblem
from ._signals import leave_signals_to_the_program
from ._spool_dir import OwnedFile, create_own
from ._spool_file import Chunk, SpoolError, chunk_bytes, database_budget, wal_bytes_for

#: Seconds between two moves of the queue to disk: the longest a record accepted by ``write()`` is in
#: memory only while the spool works (plus the time of one append, a few milliseconds).
PERSIST_INTERVAL = 0.1
#: Seconds between two attempts to use a spool that failed.
RETRY_UNAVAILABLE = 5.0
_size = itemgetter(3)


class SpoolWriter:
    """The spool's shared state and its writing half (see the module's docstring)."""

    def __init__(self, config: SinkConfig, queue: EventQueue, stream: str, cost: BatchCost, reporter: Reporter) -> None:
        assert config.spool_dir is not None
        self._queue = queue
        self._directory = config.spool_dir
        self._group = config.log_group
        self._stream = stream
        self._max_bytes = config.max_spool_bytes
        self._cost = cost
        self._batch_events = config.max_batch_size
        self._reporter = reporter
        self._owned: OwnedFile | None = None
        #: Chunks on disk not wholly delivered, oldest first: (id, first seq, last seq, event count).
        self._chunks: deque[tuple[int, int, int, int]] = deque()
        #: The id of the newest chunk read into ``_ahead``.
        self._read_through = 0
        #: Undelivered events read from disk, oldest first (at most a batch, plus one chunk).
        self._ahead: deque[Event] = deque()
        self._from_disk = False  # where the batch being sent came from
        self._sending: list[Event] = []  # that batch, when it came from disk
        #: The newest event of the chunks dropped for room: those of them in ``_sending`` are on disk no more.
        self._dropped_through = 0
        self._memory_in_flight = False  # a batch taken from memory is being sent
        self._disk_events = 0  # undelivered events on disk (read ahead or not)
        self._disk_cost = 0  # their cost as the shipper counts a batch
        self._unavailable_until = 0.0
        self._unavailable = ""  # the last failure while it lasts, "" when the spool works
        #: Events dropped from disk: the spool was full, or a chunk was damaged.
        self.spool_dropped = 0
        #: Held by the spool thread while it writes, by the worker while it takes or marks (one connection).
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def _report_problem(self, kind: str, message: str, count: int) -> None:
        self._reporter.report(SinkProblem(kind, message, count))

    def _cost_of(self, events: list[Event] | deque[Event]) -> int:
        return int(sum(map(_size, events))) + self._cost.per_event * len(events)

    def _off_disk(self, count: int, cost: int) -> None:
        """``count`` events costing ``cost`` are on disk no more (delivered, dropped or damaged)."""
        self._disk_events -= count
        # A damaged chunk's cost can only be estimated: nothing left means nothing left to cost.
        self._disk_cost = max(0, self._disk_cost - cost) if self._disk_events > 0 else 0

    def start(self) -> None:
        """Start the spool thread (with the worker): it opens the file at once, then persists every
        ``PERSIST_INTERVAL``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._persist_loop, name="loguru-cloudwatch-spool", daemon=True)
            self._thread.start()

    def _persist_loop(self) -> None:
        # A thread of its own: a call the worker is waiting on (up to the read timeout) or a slow credential
        # lookup must not keep accepted records in memory only.
        leave_signals_to_the_program()
        while not self._closing.is_set():
            try:
                self.persist()
            except Exception as error:  # never let the thread die: records would stay in memory only
                self._reporter.report(SinkProblem(INTERNAL_ERROR, f"unexpected error in the spool: {error!r}"))
            if self._closing.wait(PERSIST_INTERVAL):
                return

    def persist(self, *, create: bool = True) -> None:
        """Move what the queue holds to disk, within the spool's bound; wake the worker for a full batch.
        The spool thread creates the file at once (``create``): creating it costs more than an append,
        and the first records must not wait for it."""
        with self._lock:
            self._move_to_disk(create)
        if self._disk_events >= self._batch_events or self._disk_cost >= self._cost.max_bytes:
            self._queue.signal()

    def _move_to_disk(self, create: bool) -> None:
        # Not while a batch taken from memory is out: put back, it would land on disk after newer records.
        if self._memory_in_flight or time.monotonic() < self._unavailable_until:
            return
        if create and self._closing.is_set():
            return  # the spool thread, late: close() made the last move and closed the file
        if self._owned is None and (not (create or len(self._queue)) or not self._open()):
            return
        events = self._queue.copy_all()
        for piece in self._pieces(events):
            if not self._persist(piece):
                self._queue.persist_failed()
                return

    def _pieces(self, events: list[Event]) -> list[list[Event]]:
        """``events`` cut into chunks of at most one batch (what one read or one drop takes), so that no
        chunk, transaction or lock hold grows with the queue (C-level passes: it runs at every move)."""
        if len(events) <= self._batch_events and self._cost_of(events) <= self._cost.max_bytes:
            return [events] if events else []
        costs = list(accumulate(map(add, map(_size, events), repeat(self._cost.per_event))))
        pieces, start, spent = [], 0, 0
        while start < len(events):
            end = min(start + self._batch_events, bisect_right(costs, spent + self._cost.max_bytes))
            end = max(end, start + 1)  # an event over the byte limit still goes, alone
            pieces.append(events[start:end])
            spent, start = costs[end - 1], end
        return pieces

    def _open(self) -> bool:
        try:
            self._owned = create_own(self._directory, self._group, wal_bytes_for(self._max_bytes))
        except (SpoolError, OSError) as error:
            self._failed(f"cannot create a spool file in {self._directory}: {error}")
            return False
        return True

    def _persist(self, events: list[Event]) -> bool:
        assert self._owned is not None
        self._make_room(chunk_bytes(events))
        try:
            chunk_id = self._owned.spool.append(self._stream, events)
        except SpoolError as error:
            self._failed(str(error))  # the events stay in memory, sent from there meanwhile
            return False
        self._chunks.append((chunk_id, events[0][1], events[-1][1], len(events)))
        self._disk_events += len(events)
        self._disk_cost += self._cost_of(events)
        self._queue.discard_persisted(events[-1][1])
        if self._unavailable:
            self._unavailable = ""
            self._report_problem(RECOVERED, f"the spool in {self._directory} works again", 0)
        return True

    def _failed(self, problem: str) -> None:
        self._unavailable_until = time.monotonic() + RETRY_UNAVAILABLE
        if problem != self._unavailable:  # once per distinct failure, not at every retry
            self._report_problem(
                SPOOL_UNAVAILABLE,
                f"{problem}; records are kept in memory and sent from there, the spool is tried again "
                f"every {RETRY_UNAVAILABLE:.0f}s",
                self._queue.pending,
            )
        self._unavailable = problem

    def _make_room(self, needed: int) -> None:
        """Drop the oldest chunks until ``needed`` more bytes fit: the database, its WAL and its index stay
        within ``max_spool_bytes`` on disk."""
        assert self._owned is not None
        spool = self._owned.spool
        budget = database_budget(self._max_bytes)
        dropped = 0
        try:
            while self._chunks and spool.used_bytes() + needed > budget:
                dropped += self._drop_oldest_chunk()
        except SpoolError as error:
            self._failed(str(error))
        if dropped:
            self._dropped_for_room(dropped)

    def _dropped_for_room(self, dropped: int) -> None:
        self.spool_dropped += dropped
        self._report_problem(
            SPOOL_FULL,
            f"dropped {dropped} oldest records: the spool is full (max_spool_bytes={self._max_bytes}); "
            f"{self.spool_dropped} dropped in all",
            dropped,
        )

    def _drop_oldest_chunk(self) -> int:
        """Forget the oldest chunk; returns how many of its events were still undelivered (those in the batch
        being sent are counted when it ends, if they were not delivered)."""
        assert self._owned is not None
        chunk_id, _, last, count = self._chunks[0]
        read = None if chunk_id <= self._read_through else self._owned.spool.read_chunk(chunk_id)
        self._owned.spool.forget(chunk_id)  # first: if it fails, nothing below has changed
        self._chunks.popleft()
        if read is None:  # read already: its undelivered events are those read ahead (or being sent)
            lost = [event for event in self._ahead if event[1] <= last]
            self._ahead = deque(event for event in self._ahead if event[1] > last)
            self._dropped_through = max(self._dropped_through, last)
        else:
            lost = read.events if isinstance(read, Chunk) else []
        lost_count = len(lost) if isinstance(read, Chunk) or read is None else count
        self._off_disk(lost_count, self._cost_of(lost) if lost else self._cost.per_event * lost_count)
        return lost_count
