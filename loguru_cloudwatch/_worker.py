"""The background worker: a daemon thread that decides when queued events go out, and hands them to the shipper.

Modelled on OpenTelemetry's batch processor: it sleeps on an Event that the queue sets when a full batch
is waiting, wakes at the latest every flush interval, answers flush requests, and drains what is left
within a deadline when the sink stops. The shipper (the protocol: ``_shipper``; the sink's: ``_cloudwatch``)
makes each attempt; this module decides when the next one is made. Three modes:

- **normal**: a full batch goes at once, a partial one once nothing was sent for the flush interval. A
  failed attempt is retried after a jittered backoff, ``max_retries`` times in a row (a round); then the
  events wait, longer after each failed round. While CloudWatch throttles, the interval stretches, so
  calls get fewer and fuller. The numbers are ``_retry``'s.
- **flush**: ``force_flush(timeout)`` makes everything accepted before it due now. While its caller
  waits, failed attempts are retried (backoff with full jitter, cut to the time left) until the events
  are delivered or the caller's deadline passes: ``max_retries`` does not bound it.
- **final drain**: ``stop()`` makes everything due, with ``shutdown_timeout`` as the deadline, then the
  thread ends.

A retry always takes the oldest events afresh, so the records that arrived meanwhile ride along up to
CloudWatch's batch limits instead of waiting for calls of their own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._config import SinkConfig
from ._frames import release_frames
from ._queue import Backlog, Event
from ._report import DELIVERY_FAILED, INTERNAL_ERROR, QUEUE_FULL, SEND_FAILED, THROTTLED, Reporter, SinkProblem
from ._retry import Deadline, Pacing, Timings
from ._shipper import DELIVERED, RETRYABLE, Outcome, Shipper
from ._signals import leave_signals_to_the_program
from ._stats import Counters

#: The ident of every worker thread running in this process (a sink's own, and those delivering adopted
#: spool files): ``CloudWatchSink.write()`` ignores records logged on them (botocore's, routed into loguru),
#: which would otherwise feed the sink its own sending, forever. A forked child starts with none.
SHIPPING_THREADS: set[int] = set()
os.register_at_fork(after_in_child=SHIPPING_THREADS.clear)


@dataclass
class FlushRequest:
    """One ``force_flush``: everything up to ``target_seq`` delivered before ``deadline``."""

    target_seq: int
    deadline: Deadline
    dropped_before: int
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


@dataclass(frozen=True)
class DrainReport:
    """How the final drain ended."""

    #: The drain ended (False: a call was still unanswered when ``shutdown`` stopped waiting).
    finished: bool
    #: Seconds from the stop request to the end of the drain (or of the wait).
    tried: float
    #: The last attempt's problem when records were left, else "".
    last_problem: str


class Worker:
    """Owns the thread that sends, and when it sends; the shipper owns how."""

    def __init__(
        self,
        config: SinkConfig,
        queue: Backlog,
        wake: threading.Event,
        counters: Counters,
        reporter: Reporter,
        shipper: Shipper,
        timings: Timings,
    ) -> None:
        self._config = config
        self._queue = queue
        self._wake = wake
        self._counters = counters
        self._reporter = reporter
        self.shipper = shipper
        self._pacing = Pacing(config.retry_delay, config.max_retries, config.flush_interval, timings)
        self._shutdown = threading.Event()
        self._shutdown_deadline = Deadline(0.0, 0.0)
        self._requests: list[FlushRequest] = []
        self._requests_lock = threading.Lock()
        self._closed = False  # set with the final answer: later flush requests get no answer to wait for
        #: Events with a sequence number up to this one are due now (asked for by a flush, waited for or not).
        self._due_seq = 0
        self._next_timed = 0.0
        self._last_problem = ""
        #: Called once, on this thread, when the first events are taken to be sent.
        self.on_first_chunk: Callable[[], Any] | None = None
        self._drain_report: DrainReport | None = None
        self._dropped_reported = 0
        self._tick_within = float("inf")  # the most seconds to sleep before the backlog's next tick
        self._thread = threading.Thread(target=self._run, name="loguru-cloudwatch-worker", daemon=True)
        self.ident: int | None = None

    # -- called from other threads -------------------------------------------------------------

    def start(self) -> None:
        self._queue.start()
        self._thread.start()
        self.ident = self._thread.ident

    @property
    def native_id(self) -> int | None:
        """The worker thread's id in the operating system."""
        return self._thread.native_id

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def flush(self, deadline: Deadline) -> bool:
        """Wait until every event accepted so far is delivered or rejected; False at ``deadline``."""
        return self.finish_flush(self.begin_flush(deadline))

    def begin_flush(self, deadline: Deadline) -> FlushRequest | None:
        """Make everything accepted so far due now, to be delivered by ``deadline``, without waiting."""
        if threading.get_ident() == self.ident or not self._thread.is_alive():
            return None
        request = FlushRequest(self._queue.last_seq, deadline, self._queue.dropped)
        if not self._queue.pending:
            # Nothing queued or in flight: met already (no need to wait for a worker still building its client).
            request.ok = True
            request.done.set()
            return request
        with self._requests_lock:
            if self._closed:
                return None  # the final drain has answered its last requests
            self._requests.append(request)
            self._due_seq = max(self._due_seq, request.target_seq)
        self._wake.set()
        return request

    def finish_flush(self, request: FlushRequest | None) -> bool:
        """Wait at most until the request's deadline; True when it was met. The events stay due either way."""
        if request is None:
            if threading.get_ident() == self.ident:
                return False  # the worker cannot wait for itself
            return not self._queue.pending  # stopped: nothing more will be sent
        request.done.wait(max(0.0, request.deadline.at - time.monotonic()))
        with self._requests_lock:
            if request in self._requests:
                self._requests.remove(request)
        return request.ok

    def shutdown(self, timeout: float) -> DrainReport:
        """Deliver what is left within ``timeout`` seconds, waiting that long at most; how it went."""
        self._shutdown_deadline = Deadline.within(timeout)
        self._shutdown.set()
        self._wake.set()
        if self._thread.is_alive() and threading.get_ident() != self.ident:
            # A little slack past the deadline lets the worker finish its bookkeeping.
            self._thread.join(timeout + 0.2)
        report = self._drain_report
        if report is None:
            tried = time.monotonic() - (self._shutdown_deadline.at - timeout)
            return DrainReport(False, tried, self._last_problem)
        return report

    # -- the worker thread -----------------------------------------------------------------------

    def _run(self) -> None:
        self.ident = threading.get_ident()
        SHIPPING_THREADS.add(self.ident)
        try:
            self._work()
        finally:
            SHIPPING_THREADS.discard(self.ident)

    def _work(self) -> None:
        leave_signals_to_the_program()
        # Build the client now, not at the first flush: that first flush may be the one made at exit,
        # when creating it could fail or be slow. A short pause first lets the thread that constructed
        # the sink return at once instead of waiting for the GIL while boto3 builds the client.
        self._shutdown.wait(0.02)
        self._guarded(self.shipper.connect, False)
        self._next_timed = time.monotonic() + self._pacing.interval
        while not self._shutdown.is_set():
            self._wake.clear()
            self._guarded(self._tick)
            self._guarded(self._step)
            self._answer_requests(final=False)
            self._report_drops()
            if self._shutdown.is_set():
                break
            self._wake.wait(min(self._seconds_to_next_step(), self._tick_within))
        self._guarded(self._final_drain)
        self._answer_requests(final=True)
        self._report_drops()
        self._guarded(self._queue.close)

    def _tick(self) -> None:
        self._tick_within = self._queue.tick() or float("inf")

    def _guarded(self, function: Any, *args: Any) -> None:
        """Run one step; an unexpected error is reported, never allowed to kill the worker."""
        try:
            function(*args)
        except Exception as error:
            self._report(INTERNAL_ERROR, f"unexpected error in the flush worker: {error!r}", 0, error)

    def _report(self, kind: str, message: str, count: int = 0, error: BaseException | None = None) -> None:
        self._reporter.report(SinkProblem(kind, message, count, error))

    def _report_drops(self) -> None:
        dropped = self._queue.memory_dropped
        if dropped > self._dropped_reported:
            new = dropped - self._dropped_reported
            self._dropped_reported = dropped
            self._report(
                QUEUE_FULL,
                f"dropped {new} oldest records: the queue is full (max_queue_size="
                f"{self._config.max_queue_size}, max_queue_bytes={self._config.max_queue_bytes}); "
                f"{dropped} dropped in all",
                new,
            )

    def _answer_requests(self, final: bool) -> None:
        """Tell the callers of ``force_flush`` whose records are all delivered (or, at the end, all)."""
        with self._requests_lock:
            self._closed = final
            if not self._requests:
                return
            first_pending = self._queue.first_seq()
            dropped = self._queue.dropped
            for request in list(self._requests):
                met = request.target_seq < first_pending
                if met or final:
                    # Drops after this moment are of records accepted later: not this request's.
                    request.ok = met and dropped == request.dropped_before
                    request.done.set()
                    self._requests.remove(request)

    # -- when to send ------------------------------------------------------------------------------

    def _flush_deadline(self) -> Deadline | None:
        """The earliest deadline of a flush still waited for (attempts must fit it), or None."""
        with self._requests_lock:
            waiting = [request.deadline for request in self._requests if not request.deadline.passed()]
        return min(waiting, key=lambda deadline: deadline.at) if waiting else None

    def _due_now(self) -> bool:
        """The head of the queue must go as soon as the backoff allows (a retry, or asked for by a flush)."""
        return self._pacing.retrying or self._queue.first_seq() <= self._due_seq or self._queue.batch_ready()

    def _step(self) -> None:
        """Make one attempt if it is time for one."""
        now = time.monotonic()
        if now >= self._next_timed:
            # The timed flush: everything queued now is due (records arriving meanwhile wait for a full
            # batch or the next interval rather than each call chasing the queue's tail).
            self._next_timed = now + self._pacing.interval
            with self._requests_lock:
                self._due_seq = max(self._due_seq, self._queue.last_seq)
        if not self._queue:
            return
        deadline = self._flush_deadline()
        if deadline is not None:
            self._pacing.fit_into(deadline)
        if now < self._pacing.next_attempt:
            return
        if deadline is not None or self._due_now():
            self._attempt(deadline)
            # While full batches keep going out, the partial tail waits: it is sent once nothing has been
            # sent for a whole interval, which keeps calls at the minimum under a steady stream.
            self._next_timed = max(self._next_timed, time.monotonic() + self._pacing.interval)

    def _seconds_to_next_step(self) -> float:
        if self._queue and (self._due_now() or self._flush_deadline() is not None):
            wake_at = self._pacing.next_attempt
        else:
            wake_at = max(self._pacing.next_attempt, self._next_timed)
        return max(0.0, wake_at - time.monotonic())

    def _final_drain(self) -> None:
        deadline = self._shutdown_deadline
        self._due_seq = self._queue.last_seq
        self._last_problem = ""
        try:
            if self._queue:
                self.shipper.connect(True)  # credentials may have appeared since the last look
                self._pacing.fit_into(deadline, final=True)
            while self._queue and not deadline.passed() and not self._pacing.no_attempt_fits(deadline):
                wait = self._pacing.next_attempt - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self._attempt(deadline)
                self._answer_requests(final=False)  # a force_flush made meanwhile may be met already
        finally:
            tried = time.monotonic() - (deadline.at - deadline.seconds)
            self._drain_report = DrainReport(True, tried, self._last_problem if self._queue else "")

    # -- one attempt and what follows from it ------------------------------------------------------

    def _attempt(self, deadline: Deadline | None) -> None:
        error = self._attempt_once(deadline)
        if error is not None:
            release_frames(error)  # _attempt_once and the shipper's frames have returned now
            del error  # this frame is on the error's traceback too: it must not hold the error

    def _attempt_once(self, deadline: Deadline | None) -> BaseException | None:
        """Send the head of the queue once; the error to release, if the attempt failed with one."""
        if self._pacing.retrying and self._pacing.retryable:
            self._counters.retries += 1  # a call repeated after a retryable failure
        chunk = self._queue.take(self._config.max_batch_size)
        undelivered: list[Event] = chunk
        try:
            if self.on_first_chunk is not None and chunk:
                first_chunk, self.on_first_chunk = self.on_first_chunk, None
                first_chunk()
            outcome = self.shipper.send(chunk, None if deadline is None else deadline.at)
            undelivered = outcome.undelivered
        except Exception as error:
            self._report(INTERNAL_ERROR, f"unexpected error in the flush worker: {error!r}", 0, error)
            outcome = Outcome(RETRYABLE, undelivered, f"unexpected error ({error!r})", error)
        finally:
            self._queue.put_back(undelivered)
        if outcome.status == DELIVERED and not outcome.undelivered:
            self._pacing.delivered(self.shipper.last_call_seconds)
            self._last_problem = ""
            return None
        self._failed(outcome, deadline)
        return outcome.error

    def _failed(self, outcome: Outcome, deadline: Deadline | None) -> None:
        self._last_problem = outcome.reason
        count = len(outcome.undelivered)
        if outcome.status != RETRYABLE:
            # Credentials missing or refused: the shipper said when trying again is worthwhile, and
            # reported the problem once.
            self._pacing.told_to_wait(outcome.wait, deadline)
            return
        delay, round_attempts = self._pacing.failed(outcome.throttled, outcome.retry_after, deadline)
        if delay is None:
            return  # no further attempt fits before the deadline: stop() or force_flush() says so
        if round_attempts:
            self._report(
                DELIVERY_FAILED,
                f"{round_attempts} attempts failed, the last: {outcome.reason}; {count} records kept for a "
                f"later attempt in about {delay:.1f}s",
                count,
                outcome.error,
            )
            return
        kind = THROTTLED if outcome.throttled else SEND_FAILED
        self._report(kind, f"{outcome.reason}; will retry in {delay:.1f}s", count, outcome.error)
