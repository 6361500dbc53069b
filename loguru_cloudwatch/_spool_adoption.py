"""Delivering what dead processes left in the spool directory, one file at a time.

A sink with a spool looks for orphaned files (``_spool_dir.orphans``: their owner's lock can be taken)
when it starts and every ``ADOPT_INTERVAL`` seconds. It adopts one, and a second ``Worker`` of its own
delivers the file's records, oldest first, to the stream the dead process was writing to, with the same
pacing, retries and accounting as the sink's own records (counters of its own, one writer each, which
``stats`` adds up: ``stats.sent`` includes them). When the file is empty the worker stops and the file is
deleted (or moved aside when only unreadable rows are left); then the next orphan is taken. A file of
another log group is left for a sink of that group.
Records of the dead process's last send may already be in CloudWatch: they are counted in
``stats.resent`` as they are sent again (at-least-once, at most one batch per killed process).

Everything here runs on the sink's worker thread (its backlog's ``tick``), except the adoption's own
worker thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ._config import SinkConfig
from ._queue import BatchCost, Event, EventQueue
from ._report import SPOOL_DAMAGED, Reporter, SinkProblem
from ._retry import Timings
from ._shipper import Shipper
from ._spool import ADOPTION_TICK, SpooledBacklog
from ._spool_dir import OwnedFile, adopt, orphans
from ._spool_file import Chunk, EmptyFile, NewerFormat, SpoolError
from ._stats import Counters
from ._worker import Worker

#: A shipper's constructor, as ``CloudWatchShipper``'s: (config, stream, counters, reporter, timings).
ShipperClass = Callable[[SinkConfig, str, Counters, Reporter, Timings], Shipper]

#: Seconds between two looks for orphaned files (the first look is at the sink's first tick).
ADOPT_INTERVAL = 10.0


class AdoptedBacklog(SpooledBacklog):
    """A dead process's spool file as a backlog: its chunks only (the queue stays empty), nothing to persist,
    every record due at once (its sequence numbers are the dead process's, not this queue's)."""

    def __init__(self, config: SinkConfig, owned: OwnedFile, cost: BatchCost, reporter: Reporter) -> None:
        #: The adoption worker's wake-up event (nothing here sets it: every record is due at once).
        self.wake = threading.Event()
        queue = EventQueue(1, config.max_queue_bytes, config.max_batch_size, self.wake, cost=cost)
        super().__init__(config, queue, "", cost, reporter)
        spool = owned.spool
        index = spool.index()  # SpoolError: the caller moves the file aside
        self.stream = index.stream
        if index.unlisted:
            self._report_problem(
                SPOOL_DAMAGED,
                f"{spool.path.name}: {index.unlisted} chunks could not be listed (damaged); their records "
                "cannot be delivered, nor counted",
                0,
            )
        events = sum(chunk[3] for chunk in index.chunks)
        for chunk_id, first, _, count in index.chunks:
            if first > spool.delivered_seq:
                break
            read = spool.read_chunk(chunk_id)  # in part delivered: count exactly
            if isinstance(read, Chunk):
                events -= count - len(read.events)
        #: The newest record of the dead owner's last send: it may have reached CloudWatch already.
        self._sent_by_the_owner = spool.in_flight_seq
        #: Records of that send delivered again, on the adoption's worker thread (``stats.resent``).
        self.resent = 0
        self.load(owned, index.chunks, events, index.data_bytes + cost.per_event * events)

    def batch_ready(self) -> bool:
        return self._disk_events > 0

    def start(self) -> None:
        """No spool thread: nothing is ever queued here."""

    def delivered(self, events: list[Event]) -> None:
        self.resent += sum(1 for event in events if event[1] <= self._sent_by_the_owner)

    def finish_file(self, owned: OwnedFile) -> None:
        """Delivered: deleted. Left with records to deliver (the sink stopped): let go, for a later start.
        Left with only rows it could not read: moved aside, or every later start would adopt it again."""
        if self.pending or owned.spool.is_empty():
            owned.finish()
            return
        name = owned.spool.path.name
        self._report_problem(
            SPOOL_DAMAGED, f"{name}: what is left in it cannot be read; moved aside as {owned.quarantine()}", 0
        )

    def tick(self) -> float:
        return ADOPTION_TICK


class Adoptions:
    """Finds orphaned spool files and delivers them, one at a time, each with a worker of its own.

    Each adoption's worker and shipper count in ``Counters`` of their own (one writer each, as the sink's);
    ``counters`` adds them all up for the sink's ``stats``.
    """

    def __init__(
        self,
        config: SinkConfig,
        reporter: Reporter,
        timings: Timings,
        ship_to: Callable[[str, Counters], Shipper],
        cost: BatchCost,
    ) -> None:
        assert config.spool_dir is not None
        self._directory: Path = config.spool_dir
        self._config = config
        self._reporter = reporter
        self._timings = timings
        self._ship_to = ship_to
        self._cost = cost
        self._next_look = 0.0
        self._current: tuple[AdoptedBacklog, Worker] | None = None
        #: The adoptions whose worker may still count (the current one, one whose shutdown timed out): their
        #: counters, backlog (resent and dropped records) and worker; the others' counts are in the totals.
        self._counting: list[tuple[Counters, AdoptedBacklog, Worker]] = []
        self._total = Counters()
        self._total_dropped = 0
        self._lock = threading.Lock()  # ``counters`` and ``dropped`` are read on any thread
        #: Files never to try again in this process (a newer format, another log group's).
        self._skipped: set[Path] = set()

    @property
    def counters(self) -> Counters:
        """What every adoption counted (sent, batches, failed, retries, resent...), added up."""
        with self._lock:
            total = self._total.plus(None)
            for counters, backlog, _ in self._counting:
                total.add(counters)
                total.resent += backlog.resent
        return total

    @property
    def dropped(self) -> int:
        """Records of adopted files that could not be read (damaged chunks), dropped and reported."""
        with self._lock:
            return self._total_dropped + sum(backlog.spool_dropped for _, backlog, _ in self._counting)

    def _end_current(self, timeout: float) -> None:
        if self._current is None:
            return
        self._current[1].shutdown(timeout)  # an emptied file is deleted as the worker closes it
        self._current = None
        with self._lock:  # keep the numbers of the adoptions whose workers are done, not the adoptions
            for entry in [entry for entry in self._counting if not entry[2].is_alive()]:
                counters, backlog, _ = entry
                self._total.add(counters)
                self._total.resent += backlog.resent
                self._total_dropped += backlog.spool_dropped
                self._counting.remove(entry)

    def tick(self, own: Path | None) -> None:
        """End a finished adoption; look for the next orphan when it is time to."""
        if self._current is not None:
            backlog, worker = self._current
            if backlog.pending and worker.is_alive():
                return
            self._end_current(1.0)
            self._next_look = 0.0  # another orphan may be waiting
        if time.monotonic() < self._next_look:
            return
        self._next_look = time.monotonic() + ADOPT_INTERVAL
        skip = self._skipped | ({own} if own is not None else set())
        for path in orphans(self._directory, skip):
            if self._adopt(path):
                return

    def _adopt(self, path: Path) -> bool:
        try:
            owned = adopt(path)
        except EmptyFile:
            return False  # removed: nothing was ever in it
        except NewerFormat as error:
            self._skipped.add(path)
            self._report(str(error))
            return False
        except SpoolError as error:  # unreadable: moved aside, named
            self._report(f"{error}; its records cannot be delivered")
            return False
        if owned is None:
            return False  # its owner lives, or another process adopted it first
        if owned.spool.group != self._config.log_group:
            # Another application's file (a directory shared across groups): its records belong to its
            # group, and only a sink of that group delivers them. Let go of it, untouched.
            owned.finish()
            self._skipped.add(path)
            return False
        try:
            backlog = AdoptedBacklog(self._config, owned, self._cost, self._reporter)
        except SpoolError as error:
            self._report(f"{error}; moved aside as {owned.quarantine()}")
            return False
        counters = Counters()
        shipper = self._ship_to(backlog.stream, counters)
        worker = Worker(self._config, backlog, backlog.wake, counters, self._reporter, shipper, self._timings)
        with self._lock:
            self._counting.append((counters, backlog, worker))
        worker.start()
        self._current = (backlog, worker)
        return True

    def _report(self, message: str) -> None:
        self._reporter.report(SinkProblem(SPOOL_DAMAGED, message, 0))

    def stop(self) -> None:
        """The sink stops: the adoption under way stops now; what it did not deliver stays in its file (the
        file's lock is released, so a later start adopts it again)."""
        self._end_current(0.0)
        self._next_look = math.inf  # and no other starts


def spooled_backlog(
    config: SinkConfig,
    queue: EventQueue,
    stream: str,
    reporter: Reporter,
    timings: Timings,
    shipper_class: ShipperClass,
) -> SpooledBacklog:
    """The sink's backlog when ``spool_dir`` is set: its queue in front of its own spool file, and the
    adoption of what dead processes left, each delivered by a ``shipper_class`` of its stream."""

    def ship_to(other_stream: str, counters: Counters) -> Shipper:
        return shipper_class(config, other_stream, counters, reporter, timings)

    backlog = SpooledBacklog(config, queue, stream, queue.cost, reporter)
    backlog.adoptions = Adoptions(config, reporter, timings, ship_to, queue.cost)
    return backlog
