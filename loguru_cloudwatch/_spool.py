"""The durable backlog: the memory queue in front, this process's spool file behind, the worker reading.

With ``spool_dir`` set, the worker reads a ``SpooledBacklog`` instead of the bare ``EventQueue``; callers
still only ``put`` into the queue. The spool thread (``_spool_writer``) moves what is queued to the spool
file every ``PERSIST_INTERVAL``, whatever the worker waits for. Sends are cut from disk, oldest first, at
full batch size; a delivered batch moves the file's delivery mark; ``max_spool_bytes`` drops the oldest
chunks. When the spool cannot be written, records stay in memory and are sent from there (the spool is
tried again every ``RETRY_UNAVAILABLE`` s). Records reach the disk in arrival order, so order holds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from itertools import accumulate, islice
from operator import itemgetter
from typing import TYPE_CHECKING

from ._config import SinkConfig
from ._queue import BatchCost, Event, EventQueue
from ._report import SPOOL_DAMAGED, Reporter
from ._spool_dir import OwnedFile
from ._spool_file import Chunk, SpoolError
from ._spool_writer import PERSIST_INTERVAL, RETRY_UNAVAILABLE, SpoolWriter

if TYPE_CHECKING:
    from ._spool_adoption import Adoptions
    from ._stats import Counters

__all__ = ["ADOPTION_TICK", "PERSIST_INTERVAL", "RETRY_UNAVAILABLE", "SpooledBacklog"]

#: Seconds between two looks at the adoption under way (on the worker thread).
ADOPTION_TICK = 1.0
_seq = itemgetter(1)
_size = itemgetter(3)


class SpooledBacklog(SpoolWriter):
    """The worker's events when a spool is on: what the queue holds, then what the spool file holds."""

    def __init__(self, config: SinkConfig, queue: EventQueue, stream: str, cost: BatchCost, reporter: Reporter) -> None:
        super().__init__(config, queue, stream, cost, reporter)
        #: What delivers dead processes' files (``_spool_adoption``), for the sink's own backlog.
        self.adoptions: Adoptions | None = None

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
        """Every event dropped: memory full, spool full, damaged chunks (those of adopted files too)."""
        adopted = self.adoptions.dropped if self.adoptions is not None else 0
        return self._queue.dropped + self.spool_dropped + adopted

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

    def tick(self) -> float:
        """The worker's housekeeping: deliver what dead processes left. Returns the most seconds the worker
        may sleep before the next tick."""
        if self.adoptions is not None:
            self.adoptions.tick(self._owned.spool.path if self._owned is not None else None)
        return ADOPTION_TICK

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
        ahead_cost = self._cost_of(self._ahead)
        for chunk_id, _, _, count in list(self._chunks):
            if len(self._ahead) >= max_events or ahead_cost >= limit:
                return
            if chunk_id <= self._read_through:
                continue
            self._read_through = chunk_id
            read = self._owned.spool.read_chunk(chunk_id) if self._owned is not None else None
            if isinstance(read, Chunk):
                self._ahead.extend(read.events)
                ahead_cost += self._cost_of(read.events)
                continue
            # Damaged on disk: its events cannot be sent; counted as dropped, with the reason.
            reason = read.reason if read is not None else "the spool file is closed"
            self._forget_damaged(chunk_id, count, reason)

    def _forget_damaged(self, chunk_id: int, count: int, reason: str) -> None:
        self._chunks = deque(chunk for chunk in self._chunks if chunk[0] != chunk_id)
        self._off_disk(count, self._cost.per_event * count)  # its sizes are unknown: the overhead at least
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
        self._off_disk(len(done), self._cost_of(done))
        self.delivered(done)
        # Undelivered events of a chunk dropped for room while they were out are on disk no more: dropped.
        gone = [event for event in undelivered if event[1] <= self._dropped_through]
        if gone:
            undelivered = [event for event in undelivered if event[1] > self._dropped_through]
            self._off_disk(len(gone), self._cost_of(gone))
            self._dropped_for_room(len(gone))
        self._ahead.extendleft(reversed(sorted(undelivered, key=_seq)))
        self._mark_delivered()

    def delivered(self, events: list[Event]) -> None:
        """Called with the events of each batch from disk that CloudWatch stored (or refused for good)."""

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

    @property
    def adopted(self) -> Counters | None:
        """What delivering dead processes' files counted (``Adoptions.counters``); None if it does not."""
        return self.adoptions.counters if self.adoptions is not None else None

    def load(self, owned: OwnedFile, chunks: list[tuple[int, int, int, int]], events: int, cost: int) -> None:
        """Take over an existing file (an adoption): its ``chunks``, holding ``events`` undelivered events
        that cost ``cost`` as the shipper counts a batch."""
        with self._lock:
            self._owned, self._chunks, self._disk_events, self._disk_cost = owned, deque(chunks), events, cost

    def close(self) -> None:
        """Persist what memory still holds (if the spool works), then close the file; an empty file is
        deleted, a file with records left stays for the next start."""
        self._closing.set()  # from now on the spool thread moves nothing and creates no file
        self.persist(create=False)  # first: the sink's stop() counts what is on disk right after
        with self._lock:
            if self._owned is not None:
                self.finish_file(self._owned)
                self._owned = None
        if self.adoptions is not None:
            self.adoptions.stop()
        if self._thread is not None:
            self._thread.join(0.5)

    def finish_file(self, owned: OwnedFile) -> None:
        """What ``close`` does with the file: delete it when empty, else leave it for a later start."""
        owned.finish()
