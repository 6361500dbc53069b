"""The durable backlog: the memory queue in front, this process's spool file behind, the worker reading.

With ``spool_dir`` set, the worker reads a ``SpooledBacklog`` instead of the bare ``EventQueue``; callers
still only ``put`` into the queue. A spool thread moves what is queued into one chunk of the spool file
every ``PERSIST_INTERVAL``, whatever the worker waits for. Sends are cut from disk, oldest first, at full
batch size; a delivered batch moves the file's delivery mark; ``max_spool_bytes`` drops the oldest chunks.
When the spool cannot be written, records stay in memory and are sent from there (the spool is tried
again every ``RETRY_UNAVAILABLE`` s). Records reach the disk in arrival order, so order holds throughout.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import deque
from itertools import accumulate, islice
from operator import itemgetter
from typing import TYPE_CHECKING

from ._config import SinkConfig
from ._queue import BatchCost, Event, EventQueue
from ._report import INTERNAL_ERROR, RECOVERED, SPOOL_DAMAGED, SPOOL_FULL, SPOOL_UNAVAILABLE, Reporter, SinkProblem
from ._signals import leave_signals_to_the_program
from ._spool_dir import OwnedFile, create_own
from ._spool_file import Chunk, SpoolError, chunk_bytes, database_budget, wal_bytes_for

if TYPE_CHECKING:
    from ._spool_adoption import Adoptions

#: Seconds between two moves of the queue to disk: the longest a record accepted by ``write()`` is in
#: memory only (plus the time of one append, a few milliseconds).
PERSIST_INTERVAL = 0.1
#: Seconds between two looks at the adoption under way (on the worker thread).
ADOPTION_TICK = 1.0
#: Seconds between two attempts to use a spool that failed.
RETRY_UNAVAILABLE = 5.0
_seq = itemgetter(1)
_size = itemgetter(3)


class SpooledBacklog:
    """The worker's events when a spool is on: what the queue holds, then what the spool file holds."""

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
        self._memory_in_flight = False  # a batch taken from memory is being sent
        self._disk_events = 0  # undelivered events on disk (read ahead or not)
        self._disk_cost = 0  # their cost as the shipper counts a batch
        self._unavailable_until = 0.0
        self._unavailable = ""  # the last failure while it lasts, "" when the spool works
        self.spool_dropped = 0
        #: Held by the spool thread while it writes, by the worker while it takes or marks (one connection).
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        #: What delivers dead processes' files (``_spool_adoption``), for the sink's own backlog.
        self.adoptions: Adoptions | None = None

    def _report_problem(self, kind: str, message: str, count: int) -> None:
        self._reporter.report(SinkProblem(kind, message, count))

    # -- what the worker reads (the same as the queue's) ---------------------------------------------

    def __len__(self) -> int:
        return len(self._queue) + self._disk_events

    @property
    def pending(self) -> int:
        """Events not yet delivered: in memory, in flight, and on disk."""
        return self._queue.pending + self._disk_events

    @property
    def last_seq(self) -> int:
        return self._queue.last_seq

    @property
    def dropped(self) -> int:
        """Every event dropped: memory full and spool full."""
        return self._queue.dropped + self.spool_dropped

    @property
    def memory_dropped(self) -> int:
        return self._queue.dropped

    def first_seq(self) -> int:
        """The oldest undelivered event's sequence number (disk first), or ``last_seq + 1``."""
        with self._lock:
            return self._first_seq()

    def _first_seq(self) -> int:
        if self._ahead:
            return self._ahead[0][1]
        for chunk_id, first, _, _ in self._chunks:
            if chunk_id > self._read_through:
                return first
        # Everything on disk is delivered (an adopted file's seqs are not the queue's: the larger wins).
        return max(self._queue.first_seq(), self._chunks[-1][2] + 1 if self._chunks else 0)

    def batch_ready(self) -> bool:
        return (
            self._disk_events >= self._batch_events
            or self._disk_cost >= self._cost.max_bytes
            or self._queue.batch_ready()
        )

    # -- the worker's housekeeping ---------------------------------------------------------------

    def start(self) -> None:
        """Start the spool thread (with the worker): it opens the file at once, then persists every
        ``PERSIST_INTERVAL``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._persist_loop, name="loguru-cloudwatch-spool", daemon=True)
            self._thread.start()

    def tick(self) -> float:
        """The worker's housekeeping: deliver what dead processes left. Returns the most seconds the worker
        may sleep before the next tick."""
        if self.adoptions is not None:
            self.adoptions.tick(self._owned.spool.path if self._owned is not None else None)
        return ADOPTION_TICK

    def _persist_loop(self) -> None:
        # A thread of its own: a call the worker is waiting on (up to the read timeout) or a slow credential
        # lookup must not keep accepted records in memory only.
        leave_signals_to_the_program()
        while True:
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
        if self.batch_ready():
            self._queue.signal()

    def _move_to_disk(self, create: bool) -> None:
        # Not while a batch taken from memory is out: put back, it would land on disk after newer records.
        if self._memory_in_flight or time.monotonic() < self._unavailable_until:
            return
        if self._owned is None and (not (create or len(self._queue)) or not self._open()):
            return
        events = self._queue.copy_all()
        if events:
            self._persist(events)

    def _open(self) -> bool:
        try:
            self._owned = create_own(self._directory, self._group, wal_bytes_for(self._max_bytes))
        except (SpoolError, OSError) as error:
            self._failed(f"cannot create a spool file in {self._directory}: {error}")
            return False
        return True

    def _persist(self, events: list[Event]) -> None:
        assert self._owned is not None
        self._make_room(chunk_bytes(events))
        try:
            chunk_id = self._owned.spool.append(self._stream, events)
        except SpoolError as error:
            self._failed(str(error))  # the events stay in memory, sent from there meanwhile
            return
        self._chunks.append((chunk_id, events[0][1], events[-1][1], len(events)))
        self._disk_events += len(events)
        self._disk_cost += sum(map(_size, events)) + self._cost.per_event * len(events)
        self._queue.discard_persisted(events[-1][1], len(events))
        if self._unavailable:
            self._unavailable = ""
            self._report_problem(RECOVERED, f"the spool in {self._directory} works again", 0)

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
            self.spool_dropped += dropped
            self._report_problem(
                SPOOL_FULL,
                f"dropped {dropped} oldest records: the spool is full (max_spool_bytes={self._max_bytes}); "
                f"{self.spool_dropped} dropped in all",
                dropped,
            )

    def _drop_oldest_chunk(self) -> int:
        """Forget the oldest chunk; returns how many of its events were still undelivered."""
        assert self._owned is not None
        chunk_id, _, last, count = self._chunks[0]
        if chunk_id <= self._read_through:  # read already: its undelivered events are those read ahead
            lost = [event for event in self._ahead if event[1] <= last]
            self._ahead = deque(event for event in self._ahead if event[1] > last)
            lost_count = len(lost)
        else:
            read = self._owned.spool.read_chunk(chunk_id)  # to count its cost exactly
            lost = read.events if isinstance(read, Chunk) else []
            lost_count = len(lost) if isinstance(read, Chunk) else count
        self._owned.spool.forget(chunk_id)
        self._chunks.popleft()
        self._disk_events -= lost_count
        self._disk_cost -= sum(map(_size, lost)) + self._cost.per_event * lost_count
        return lost_count

    # -- one send: take, then put back what was not delivered ------------------------------------------

    def take(self, max_events: int, max_batch_bytes: int | None = None) -> list[Event]:
        """The oldest undelivered events that fit one batch: from disk while it holds any, else memory."""
        with self._lock:
            return self._take(max_events, max_batch_bytes)

    def _take(self, max_events: int, max_batch_bytes: int | None) -> list[Event]:
        limit = self._cost.max_bytes if max_batch_bytes is None else max_batch_bytes
        self._read_ahead(max_events, limit)
        if not self._ahead and len(self._queue):
            self._move_to_disk(create=True)  # the spool thread's next move, made now: disk order holds
            self._read_ahead(max_events, limit)
        if not self._ahead:  # the spool is unavailable: send from memory meanwhile
            self._from_disk = False
            self._memory_in_flight = True
            return self._queue.take(max_events, max_batch_bytes)
        per_event = self._cost.per_event
        costs = list(accumulate(size + per_event for size in map(_size, islice(self._ahead, max_events))))
        count = max(1, bisect_right(costs, limit))
        popleft = self._ahead.popleft
        batch = [popleft() for _ in range(min(count, len(self._ahead)))]
        self._from_disk = True
        self._sending = batch
        if batch and self._owned is not None:
            try:
                self._owned.spool.mark_in_flight(max(map(_seq, batch)))
            except SpoolError as error:
                self._failed(str(error))
        return batch

    def _read_ahead(self, max_events: int, limit: int) -> None:
        """Read chunks until ``_ahead`` holds a full batch or nothing is left unread."""
        ahead_cost = sum(map(_size, self._ahead)) + self._cost.per_event * len(self._ahead)
        for chunk_id, _, _, count in list(self._chunks):
            if len(self._ahead) >= max_events or ahead_cost >= limit:
                return
            if chunk_id <= self._read_through:
                continue
            self._read_through = chunk_id
            read = self._owned.spool.read_chunk(chunk_id) if self._owned is not None else None
            if isinstance(read, Chunk):
                self._ahead.extend(read.events)
                ahead_cost += sum(map(_size, read.events)) + self._cost.per_event * len(read.events)
                continue
            # Damaged on disk: its events cannot be sent; counted as dropped, with the reason.
            reason = read.reason if read is not None else "the spool file is closed"
            self._forget_damaged(chunk_id, count, reason)

    def _forget_damaged(self, chunk_id: int, count: int, reason: str) -> None:
        self._chunks = deque(chunk for chunk in self._chunks if chunk[0] != chunk_id)
        self._disk_events -= count
        self._disk_cost = max(0, self._disk_cost - self._cost.per_event * count)
        self.spool_dropped += count
        name = self._owned.spool.path.name if self._owned is not None else "?"
        self._report_problem(SPOOL_DAMAGED, f"{name}: a chunk of {count} records could not be read ({reason})", count)
        if self._owned is not None:
            try:
                self._owned.spool.forget(chunk_id)
            except SpoolError as error:
                self._failed(str(error))

    def put_back(self, undelivered: list[Event]) -> None:
        """End the attempt of ``take``: what was not delivered goes back to the front, in order; on disk,
        the delivery mark moves up to it."""
        with self._lock:
            self._put_back(undelivered)

    def _put_back(self, undelivered: list[Event]) -> None:
        if not self._from_disk:
            self._queue.put_back(undelivered)
            self._memory_in_flight = False
            return
        self._from_disk = False
        kept = {event[1] for event in undelivered}
        done = [event for event in self._sending if event[1] not in kept]
        self._sending = []
        self._disk_events -= len(done)
        self._disk_cost -= sum(map(_size, done)) + self._cost.per_event * len(done)
        self._ahead.extendleft(reversed(sorted(undelivered, key=_seq)))
        self._mark_delivered()

    def _mark_delivered(self) -> None:
        """Move the file's delivery mark to just before the oldest event still undelivered."""
        if self._owned is None:
            return
        mark = self._first_seq() - 1
        try:
            self._owned.spool.delivered_through(mark)
        except SpoolError as error:
            self._failed(str(error))
            return
        while self._chunks and self._chunks[0][2] <= mark:
            self._chunks.popleft()

    # -- the end ----------------------------------------------------------------------------------

    @property
    def on_disk(self) -> int:
        """Undelivered events on disk now (what a later start delivers if this process ends)."""
        return self._disk_events

    def close(self) -> None:
        """Persist what memory still holds (if the spool works), then close the file; an empty file is
        deleted, a file with records left stays for the next start."""
        if self.adoptions is not None:
            self.adoptions.stop()
            self.adoptions = None
        self._closing.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.persist(create=False)
        with self._lock:
            if self._owned is not None:
                self._owned.finish()
                self._owned = None
