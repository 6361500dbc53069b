"""Delivering what dead processes left in the spool directory, one file at a time.

A sink with a spool looks for orphaned files (``_spool_dir.orphans``: their owner's lock can be taken)
when it starts and every ``ADOPT_INTERVAL`` seconds. It adopts one, and a second ``Worker`` of its own
delivers the file's records, oldest first, to the stream the dead process was writing to, with the same
pacing, retries and accounting as the sink's own records (the same counters: ``stats.sent`` includes
them). When the file is empty the worker stops and the file is deleted; then the next orphan is taken.
Records of the dead process's last send may already be in CloudWatch: they are counted in
``stats.resent`` when the file is adopted (at-least-once, at most one batch per killed process).

Everything here runs on the sink's worker thread (its backlog's ``tick``), except the adoption's own
worker thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ._config import SinkConfig
from ._queue import BatchCost, EventQueue
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
        chunks, self.stream, data_bytes = spool.index()  # SpoolError: the caller moves the file aside
        self._owned = owned
        self._chunks = deque(chunks)
        self._disk_events = sum(chunk[3] for chunk in chunks)
        self._disk_cost = data_bytes + cost.per_event * self._disk_events
        #: Records its dead owner may have sent already: those of its last send (counted as resent).
        self.possibly_sent = 0
        for chunk_id, first, _, count in chunks:
            if first > max(spool.delivered_seq, spool.in_flight_seq):
                break
            read = spool.read_chunk(chunk_id)  # in part delivered, or in the last send: count exactly
            if isinstance(read, Chunk):
                self._disk_events -= count - len(read.events)
                self.possibly_sent += sum(1 for event in read.events if event[1] <= spool.in_flight_seq)

    def batch_ready(self) -> bool:
        return self._disk_events > 0

    def start(self) -> None:
        """No spool thread: nothing is ever queued here."""

    def tick(self) -> float:
        return ADOPTION_TICK


class Adoptions:
    """Finds orphaned spool files and delivers them, one at a time, each with a worker of its own."""

    def __init__(
        self,
        config: SinkConfig,
        counters: Counters,
        reporter: Reporter,
        timings: Timings,
        ship_to: Callable[[str], Shipper],
        cost: BatchCost,
    ) -> None:
        assert config.spool_dir is not None
        self._directory: Path = config.spool_dir
        self._config = config
        self._counters = counters
        self._reporter = reporter
        self._timings = timings
        self._ship_to = ship_to
        self._cost = cost
        self._next_look = 0.0
        self._current: tuple[AdoptedBacklog, Worker] | None = None
        #: Files never to try again in this process (a newer format).
        self._skipped: set[Path] = set()

    def tick(self, own: Path | None) -> None:
        """End a finished adoption; look for the next orphan when it is time to."""
        if self._current is not None:
            backlog, worker = self._current
            if backlog.pending and worker.is_alive():
                return
            worker.shutdown(1.0)  # nothing left: the worker closes the file, which deletes it
            self._current = None
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
        try:
            backlog = AdoptedBacklog(self._config, owned, self._cost, self._reporter)
        except SpoolError as error:
            self._report(f"{error}; moved aside as {owned.quarantine()}")
            return False
        self._counters.resent += backlog.possibly_sent
        shipper = self._ship_to(backlog.stream)
        worker = Worker(self._config, backlog, backlog.wake, self._counters, self._reporter, shipper, self._timings)
        worker.start()
        self._current = (backlog, worker)
        return True

    def _report(self, message: str) -> None:
        self._reporter.report(SinkProblem(SPOOL_DAMAGED, message, 0))

    def stop(self) -> None:
        """The sink stops: the adoption under way stops now; what it did not deliver stays in its file (the
        file's lock is released, so a later start adopts it again)."""
        if self._current is not None:
            self._current[1].shutdown(0.0)
            self._current = None


def spooled_backlog(
    config: SinkConfig,
    queue: EventQueue,
    stream: str,
    counters: Counters,
    reporter: Reporter,
    timings: Timings,
    shipper_class: ShipperClass,
) -> SpooledBacklog:
    """The sink's backlog when ``spool_dir`` is set: its queue in front of its own spool file, and the
    adoption of what dead processes left, each delivered by a ``shipper_class`` of its stream."""

    def ship_to(other_stream: str) -> Shipper:
        return shipper_class(config, other_stream, counters, reporter, timings)

    cost = ship_to(stream).batch_cost
    backlog = SpooledBacklog(config, queue, stream, cost, reporter)
    backlog.adoptions = Adoptions(config, counters, reporter, timings, ship_to, cost)
    return backlog
