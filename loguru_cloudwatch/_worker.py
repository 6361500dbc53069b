"""The background worker: a daemon thread that decides when queued events go out, and hands them to the shipper.

Modelled on OpenTelemetry's batch processor: it sleeps on an Event that the queue sets when a full batch
is waiting, wakes at the latest every flush interval, answers flush requests, and drains what is left
within a deadline when the sink stops. The shipper (``_shipper``) makes each attempt; this module decides
when the next one is made. Three modes:

- **normal**: a full batch goes at once, a partial one once nothing was sent for the flush interval. A
  failed attempt is retried after a jittered backoff, ``max_retries`` times in a row (a round); then the
  events wait, longer after each failed round. While CloudWatch throttles, the interval stretches (up to
  ``max_backoff``), so calls get fewer and fuller; each delivered call halves it back.
- **flush**: ``force_flush(timeout)`` makes everything accepted before it due now. While its caller
  waits, failed attempts are retried (backoff with full jitter, cut to the time left) until the events
  are delivered or the caller's deadline passes: ``max_retries`` does not bound it.
- **final drain**: ``stop()`` makes everything due, with ``shutdown_timeout`` as the deadline, then the
  thread ends.

A retry always takes the oldest events afresh, so the records that arrived meanwhile ride along up to
CloudWatch's batch limits instead of waiting for calls of their own.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ._config import SinkConfig
from ._queue import Event, EventQueue
from ._report import Reporter, SinkProblem
from ._retry import DEFAULT_TIMINGS, Backoff, Timings
from ._shipper import DELIVERED, NO_CLIENT, REFUSED, RETRYABLE, CloudWatchShipper, Outcome, release_frames
from ._stats import Counters

__all__ = ["DEFAULT_TIMINGS", "DrainReport", "FlushRequest", "Timings", "Worker"]

#: Asynchronous signals the worker thread blocks, so that the kernel delivers them to another thread.
SIGNALS_FOR_THE_PROGRAM = {
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
}


def leave_signals_to_the_program() -> None:
    """Block the program's asynchronous signals in the calling (helper) thread.

    A Python signal handler runs only when the main thread wakes up: a signal the kernel delivered to a
    helper thread would leave a main thread blocked in a wait (a lock, a queue) asleep, and the handler
    (SIGTERM, SIGINT...) never run.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS_FOR_THE_PROGRAM)


@dataclass
class FlushRequest:
    """One ``force_flush``: everything up to ``target_seq`` delivered before ``deadline`` (monotonic)."""

    target_seq: int
    deadline: float
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
        log_stream: str,
        queue: EventQueue,
        wake: threading.Event,
        counters: Counters,
        reporter: Reporter,
    ) -> None:
        self._config = config
        self._queue = queue
        self._wake = wake
        self._counters = counters
        self._reporter = reporter
        self.timings = Timings(**vars(DEFAULT_TIMINGS))
        self.shipper = CloudWatchShipper(config, log_stream, counters, reporter, self.timings)
        self._backoff = Backoff(config.retry_delay, self.timings.max_backoff)
        self._shutdown = threading.Event()
        self._shutdown_deadline = 0.0
        self._requests: list[FlushRequest] = []
        self._requests_lock = threading.Lock()
        #: Events with a sequence number up to this one are due now (asked for by a flush, waited for or not).
        self._due_seq = 0
        self._inflight: list[Event] = []
        # Pacing: a failed head of the queue goes again at _next_attempt; nothing goes out before it.
        self._next_attempt = 0.0
        self._retrying = False
        self._failures = 0  # failed attempts in a row, in any mode
        self._round_failures = 0  # failed attempts in the current round (normal mode)
        self._failed_rounds = 0  # failed rounds in a row (normal mode)
        self._pace = config.flush_interval  # the flush interval, stretched while throttled
        self._next_timed = 0.0
        #: The deadline _next_attempt was planned within (None: planned in normal mode).
        self._planned_for: float | None = None
        self._last_problem = ""
        self._last_status = DELIVERED
        self._drain_started = 0.0
        self._drain_report: DrainReport | None = None
        self._dropped_reported = 0
        self._thread = threading.Thread(target=self._run, name="loguru-cloudwatch-worker", daemon=True)
        self.ident: int | None = None

    # -- called from other threads -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self.ident = self._thread.ident

    @property
    def native_id(self) -> int | None:
        """The worker thread's id in the operating system."""
        return self._thread.native_id

    @property
    def inflight_count(self) -> int:
        return len(self._inflight)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def flush(self, deadline: float) -> bool:
        """Wait until every event accepted so far is delivered or rejected; False at ``deadline`` (monotonic)."""
        return self.finish_flush(self.begin_flush(deadline))

    def begin_flush(self, deadline: float) -> FlushRequest | None:
        """Make everything accepted so far due now, to be delivered by ``deadline``, without waiting."""
        if threading.get_ident() == self.ident or not self._thread.is_alive():
            return None
        request = FlushRequest(self._queue.last_seq, deadline, self._queue.dropped)
        with self._requests_lock:
            self._requests.append(request)
            self._due_seq = max(self._due_seq, request.target_seq)
        self._wake.set()
        return request

    def finish_flush(self, request: FlushRequest | None) -> bool:
        """Wait at most until the request's deadline; True when it was met. The events stay due either way."""
        if request is None:
            if threading.get_ident() == self.ident:
                return False  # the worker cannot wait for itself
            return not self._queue and not self._inflight  # stopped: nothing more will be sent
        request.done.wait(max(0.0, request.deadline - time.monotonic()))
        with self._requests_lock:
            if request in self._requests:
                self._requests.remove(request)
        return request.ok and self._queue.dropped == request.dropped_before

    def shutdown(self, timeout: float) -> DrainReport:
        """Deliver what is left within ``timeout`` seconds, waiting that long at most; how it went."""
        started = time.monotonic()
        self._shutdown_deadline = started + timeout
        self._drain_started = started
        self._shutdown.set()
        self._wake.set()
        if self._thread.is_alive() and threading.get_ident() != self.ident:
            # A little slack past the deadline lets the worker finish its bookkeeping.
            self._thread.join(timeout + 0.2)
        report = self._drain_report
        if report is None:
            return DrainReport(False, time.monotonic() - started, self._last_problem)
        return report

    # -- the worker thread -----------------------------------------------------------------------

    def _run(self) -> None:
        self.ident = threading.get_ident()
        leave_signals_to_the_program()
        # Build the client now, not at the first flush: that first flush may be the one made at exit,
        # when creating it could fail or be slow. A short pause first lets the thread that constructed
        # the sink return at once instead of waiting for the GIL while boto3 builds the client.
        self._shutdown.wait(0.02)
        self._guarded(self.shipper.connect, False)
        self._next_timed = time.monotonic() + self._pace
        while not self._shutdown.is_set():
            self._wake.clear()
            self._guarded(self._step)
            self._answer_requests(final=False)
            self._report_drops()
            if self._shutdown.is_set():
                break
            self._wake.wait(self._seconds_to_next_step())
        self._guarded(self._final_drain)
        self._answer_requests(final=True)
        self._report_drops()

    def _guarded(self, function: Any, *args: Any) -> None:
        """Run one step; an unexpected error is reported, never allowed to kill the worker."""
        try:
            function(*args)
        except Exception as error:
            self._report("internal_error", f"unexpected error in the flush worker: {error!r}", 0, error)

    def _report(self, kind: str, message: str, count: int = 0, error: BaseException | None = None) -> None:
        self._reporter.report(SinkProblem(kind, message, count, error))

    def _report_drops(self) -> None:
        dropped = self._queue.dropped
        if dropped > self._dropped_reported:
            new = dropped - self._dropped_reported
            self._dropped_reported = dropped
            self._report(
                "queue_full",
                f"dropped {new} oldest records: the queue is full (max_queue_size="
                f"{self._config.max_queue_size}, max_queue_bytes={self._config.max_queue_bytes}); "
                f"{dropped} dropped in all",
                new,
            )

    def _answer_requests(self, final: bool) -> None:
        with self._requests_lock:
            if not self._requests:
                return
            first_pending = self._queue.first_seq()
            for request in list(self._requests):
                if request.target_seq < first_pending or final:
                    request.ok = request.target_seq < first_pending
                    request.done.set()
                    self._requests.remove(request)

    # -- when to send ------------------------------------------------------------------------------

    def _flush_deadline(self) -> float | None:
        """The latest deadline of a flush still waited for, or None (normal mode)."""
        now = time.monotonic()
        with self._requests_lock:
            deadlines = [request.deadline for request in self._requests if request.deadline > now]
        return max(deadlines) if deadlines else None

    def _due_now(self) -> bool:
        """The head of the queue must go as soon as the backoff allows (a retry, or asked for by a flush)."""
        return self._retrying or self._queue.first_seq() <= self._due_seq or self._queue.batch_ready()

    def _step(self) -> None:
        """Make one attempt if it is time for one."""
        now = time.monotonic()
        if now >= self._next_timed:
            # The timed flush: everything queued now is due (records arriving meanwhile wait for a full
            # batch or the next interval rather than each call chasing the queue's tail).
            self._next_timed = now + self._pace
            with self._requests_lock:
                self._due_seq = max(self._due_seq, self._queue.last_seq)
        if not self._queue:
            return
        deadline = self._flush_deadline()
        if deadline is not None:
            self._fit_wait_into(deadline)
        if now < self._next_attempt:
            return
        if deadline is not None or self._due_now():
            self._attempt(deadline)
            # While full batches keep going out, the partial tail waits: it is sent once nothing has been
            # sent for a whole interval, which keeps calls at the minimum under a steady stream.
            self._next_timed = max(self._next_timed, time.monotonic() + self._pace)

    def _seconds_to_next_step(self) -> float:
        now = time.monotonic()
        if self._queue and (self._due_now() or self._flush_deadline() is not None):
            wake_at = self._next_attempt
        else:
            wake_at = max(self._next_attempt, self._next_timed)
        return max(0.0, wake_at - now)

    def _fit_wait_into(self, deadline: float, final: bool = False) -> None:
        """A backoff planned without this deadline that would outlast its budget is drawn again within it.

        A wait the shipper asked for (credentials missing or refused) stands, except at the final drain,
        which tries once more at once: credentials may have been fixed meanwhile.
        """
        if self._planned_for is not None and self._planned_for >= deadline:
            return
        self._planned_for = deadline
        now = time.monotonic()
        if self._last_status in (REFUSED, NO_CLIENT):
            if final:
                self._next_attempt = now
            return
        if self._next_attempt > now + max(0.0, self._backoff.window(deadline)):
            self._next_attempt = now + self._backoff.delay(self._failures, deadline=deadline)

    def _final_drain(self) -> None:
        deadline = self._shutdown_deadline
        self._due_seq = self._queue.last_seq
        self._last_problem = ""
        try:
            if self._queue:
                self.shipper.connect(True)  # credentials may have appeared since the last look
                self._fit_wait_into(deadline, final=True)
            while self._queue and self._next_attempt < deadline and time.monotonic() < deadline:
                wait = self._next_attempt - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self._attempt(deadline)
        finally:
            self._drain_report = DrainReport(
                True, time.monotonic() - self._drain_started, self._last_problem if self._queue else ""
            )

    # -- one attempt and what follows from it ------------------------------------------------------

    def _attempt(self, deadline: float | None) -> None:
        error = self._attempt_once(deadline)
        if error is not None:
            release_frames(error)  # _attempt_once and the shipper's frames have returned now
            del error  # this frame is on the error's traceback too: it must not hold the error

    def _attempt_once(self, deadline: float | None) -> BaseException | None:
        """Send the head of the queue once; the error to release, if the attempt failed with one."""
        if self._retrying and self._last_status == RETRYABLE:
            self._counters.retries += 1  # a call repeated after a retryable failure
        self._inflight = self._queue.take(self._config.max_batch_size)
        undelivered: list[Event] = self._inflight
        try:
            outcome = self.shipper.send(self._inflight, deadline)
            undelivered = outcome.undelivered
        except Exception as error:
            self._report("internal_error", f"unexpected error in the flush worker: {error!r}", 0, error)
            outcome = Outcome(RETRYABLE, undelivered, f"unexpected error ({error!r})", error)
        finally:
            self._queue.put_back(undelivered)
            self._inflight = []
        if outcome.status == DELIVERED and not outcome.undelivered:
            self._delivered()
            return None
        self._failed(outcome, deadline)
        return outcome.error

    def _delivered(self) -> None:
        self._failures = self._round_failures = self._failed_rounds = 0
        self._retrying = False
        self._next_attempt = 0.0
        self._planned_for = None
        self._pace = max(self._config.flush_interval, self._pace / 2)
        self._backoff.observed_call(self.shipper.last_call_seconds)
        self._last_problem = ""
        self._last_status = DELIVERED

    def _failed(self, outcome: Outcome, deadline: float | None) -> None:
        self._failures += 1
        self._last_status = outcome.status
        self._last_problem = outcome.reason
        count = len(outcome.undelivered)
        if outcome.throttled:
            # Fewer, fuller calls while the account's quota is exhausted.
            self._pace = min(max(self._config.flush_interval, self.timings.max_backoff), self._pace * 2)
        now = time.monotonic()
        self._planned_for = deadline
        if deadline is not None:
            # A flush or the final drain: keep trying within the deadline, whatever max_retries says.
            self._retrying = True
            if outcome.status in (REFUSED, NO_CLIENT):
                delay = outcome.wait  # credentials missing or refused: nothing to gain by asking sooner
            elif self._backoff.window(deadline) > 0:
                delay = self._backoff.delay(self._failures - 1, outcome.retry_after, deadline)
                self._report_retry(outcome, delay, count)
            else:
                delay = deadline - now  # no time left for another call to answer
            self._next_attempt = min(now + delay, deadline)
            return
        if outcome.status in (REFUSED, NO_CLIENT):
            # Configuration problems: the shipper said when trying again is worthwhile.
            self._retrying = False
            self._round_failures = 0
            self._next_attempt = now + outcome.wait
            return
        if self._round_failures < self._config.max_retries:
            delay = self._backoff.delay(self._round_failures, outcome.retry_after)
            self._round_failures += 1
            self._retrying = True
            self._next_attempt = now + delay
            self._report_retry(outcome, delay, count)
            return
        attempts = self._round_failures + 1
        self._failed_rounds += 1
        self._round_failures = 0
        self._retrying = False
        pause = self._backoff.delay(self._config.max_retries + self._failed_rounds, outcome.retry_after)
        self._next_attempt = now + pause
        self._report(
            "delivery_failed",
            f"{attempts} attempts failed, the last: {outcome.reason}; {count} records kept for a later "
            f"attempt in about {pause:.1f}s",
            count,
            outcome.error,
        )

    def _report_retry(self, outcome: Outcome, delay: float, count: int) -> None:
        if outcome.status != RETRYABLE:
            return  # credentials missing or refused: the shipper reports those once
        kind = "throttled" if outcome.throttled else "send_failed"
        self._report(kind, f"{outcome.reason}; will retry in {delay:.1f}s", count, outcome.error)
