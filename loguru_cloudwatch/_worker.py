"""The background flush worker: a daemon thread that turns queued events into PutLogEvents calls.

Modelled on OpenTelemetry's batch processor: it sleeps on an Event that the queue sets when a full batch
is waiting, wakes at the latest every ``flush_interval``, answers ``force_flush`` requests, and drains
what is left within a deadline when the sink stops. It is the only thread that talks to CloudWatch.
"""

from __future__ import annotations

import inspect
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import _client
from ._batch import plan_batches, rejected_indexes
from ._config import SinkConfig
from ._queue import Event, EventQueue
from ._report import Reporter, SinkProblem
from ._stats import Counters


@dataclass
class Timings:
    """Internal pacing, in seconds (tests shorten them through ``DEFAULT_TIMINGS``)."""

    #: How often a missing credential / region is looked for again.
    credential_recheck: float = 15.0
    #: How long to wait after credentials were refused or the destination cannot be created.
    auth_retry: float = 60.0
    #: Cap of every backoff delay.
    max_backoff: float = 30.0


DEFAULT_TIMINGS = Timings()

#: Asynchronous signals the worker thread blocks, so that the kernel delivers them to another thread.
_SIGNALS_FOR_THE_PROGRAM = {
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
}


def _release_frames(error: BaseException) -> None:
    """Clear the local variables of the finished frames an exception (and its chain) still references.

    botocore returns a network error from the frame that caught it and raises it again later, so the
    error ends up in a reference cycle (the error -> its traceback -> those frames and their callers ->
    a local holding the error). Until the cyclic garbage collector runs, each failed call would keep its
    batch, the decoded messages and the request body alive: far beyond ``max_queue_bytes`` during an
    outage. Those locals also hold the request signer and its credentials, which have no business
    travelling with ``SinkProblem.exception``. Line numbers stay; only the locals go. Frames still
    running (this thread's own) and suspended generators are left alone.
    """
    generator_flags = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        pending += [current.__cause__, current.__context__]
        tb = current.__traceback__
        while tb is not None:
            frame: Any = tb.tb_frame
            while frame is not None and id(frame) not in seen:
                seen.add(id(frame))
                if frame.f_code.co_flags & generator_flags:
                    break
                try:
                    frame.clear()
                except RuntimeError:  # still running: so are all its callers
                    break
                frame = frame.f_back
            tb = tb.tb_next


@dataclass
class _FlushRequest:
    target_seq: int
    dropped_before: int
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


class Worker:
    """Owns the connection to CloudWatch and everything that happens off the callers' threads."""

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
        self._stream = log_stream
        self._queue = queue
        self._wake = wake
        self._counters = counters
        self._reporter = reporter
        self.timings = Timings(**vars(DEFAULT_TIMINGS))
        self._shutdown = threading.Event()
        self._shutdown_deadline = 0.0
        self._requests: list[_FlushRequest] = []
        self._requests_lock = threading.Lock()
        self._inflight: list[Event] = []
        self._client: Any = None
        self._body_encoder: _client.PutBodyEncoder | None = None
        self._session: Any = None
        self._next_connect_check = 0.0
        self._guard_problem: str | None = None
        self._auth_problem: str | None = None
        self._blocked_until = 0.0
        self._failure_streak = 0
        self._last_send = 0.0
        self._dropped_reported = 0
        #: Sequence numbers of events whose last send lost its answer (CloudWatch may hold them already).
        self._maybe_stored: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="loguru-cloudwatch-worker", daemon=True)
        self.ident: int | None = None

    # -- called from other threads -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self.ident = self._thread.ident

    @property
    def inflight_count(self) -> int:
        return len(self._inflight)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def flush(self, timeout: float) -> bool:
        """Wait until every event accepted so far is delivered or rejected; False on timeout."""
        return self.finish_flush(self.begin_flush(), timeout)

    def begin_flush(self) -> _FlushRequest | None:
        """Ask for everything accepted so far to be sent, without waiting (see ``finish_flush``)."""
        if threading.get_ident() == self.ident or not self._thread.is_alive():
            return None
        request = _FlushRequest(self._queue.last_seq, self._queue.dropped)
        with self._requests_lock:
            self._requests.append(request)
        self._wake.set()
        return request

    def finish_flush(self, request: _FlushRequest | None, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for a request of ``begin_flush``; True when it was met."""
        if request is None:
            if threading.get_ident() == self.ident:
                return False  # the worker cannot wait for itself
            return not self._queue and not self._inflight  # stopped: nothing more will be sent
        request.done.wait(timeout)
        with self._requests_lock:
            if request in self._requests:
                self._requests.remove(request)
        return request.ok and self._queue.dropped == request.dropped_before

    def shutdown(self, timeout: float) -> None:
        """Ask the worker to deliver what is left within ``timeout`` seconds, and wait that long."""
        self._shutdown_deadline = time.monotonic() + timeout
        self._shutdown.set()
        self._wake.set()
        if self._thread.is_alive() and threading.get_ident() != self.ident:
            # A little slack past the deadline lets the worker finish its bookkeeping.
            self._thread.join(timeout + 0.2)

    # -- the worker thread -----------------------------------------------------------------------

    def _run(self) -> None:
        self.ident = threading.get_ident()
        if hasattr(signal, "pthread_sigmask"):
            # Leave these signals to the program's own threads. A Python signal handler runs only when the
            # main thread wakes up: a signal the kernel delivered to this thread would leave a main thread
            # blocked in a wait (a lock, a queue) asleep, and the handler (SIGTERM, SIGINT...) never run.
            signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS_FOR_THE_PROGRAM)
        interval = self._config.flush_interval
        # Build the client now, not at the first flush: that first flush may be the one made at exit,
        # when creating it could fail or be slow. A short pause first lets the thread that constructed
        # the sink return at once instead of waiting for the GIL while boto3 builds the client.
        self._shutdown.wait(0.02)
        self._guarded(self._ensure_client, False)
        next_timed = time.monotonic() + interval
        while not self._shutdown.is_set():
            now = time.monotonic()
            self._wake.wait(max(0.0, next_timed - now))
            self._wake.clear()
            if self._shutdown.is_set():
                break
            now = time.monotonic()
            timed = now >= next_timed
            if timed:
                next_timed = now + interval
            with self._requests_lock:
                requested = bool(self._requests)
            self._guarded(self._cycle, timed or requested, None)
            # While full batches keep going out, the partial tail waits: it is sent once nothing has been
            # sent for a whole interval, which keeps calls at the minimum under a steady stream.
            next_timed = max(next_timed, self._last_send + interval)
            self._answer_requests(final=False)
            self._report_drops()
        self._guarded(self._cycle, True, self._shutdown_deadline)
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

    def _ensure_client(self, force: bool) -> Any:
        """The credential guard: a client when credentials and a region can be found, else None."""
        if self._client is not None:
            return self._client
        now = time.monotonic()
        if not force and now < self._next_connect_check:
            return None
        try:
            connection, self._session = _client.connect(self._config, self._session)
        except Exception as error:
            connection = _client.Connection(None, f"could not create the CloudWatch Logs client: {error!r}")
        if connection.client is None:
            self._next_connect_check = now + self.timings.credential_recheck
            if connection.problem != self._guard_problem:
                self._guard_problem = connection.problem
                self._report("no_credentials", f"not sending: {connection.problem}", len(self._queue))
            return None
        if self._guard_problem is not None:
            self._guard_problem = None
            self._report("recovered", "credentials and region found: delivery resumes")
        self._client = connection.client
        self._body_encoder = _client.PutBodyEncoder(self._client) if self._config.client is None else None
        return self._client

    def _cycle(self, flush_all: bool, deadline: float | None) -> None:
        """Send queued events: full batches, and if ``flush_all`` everything queued when the cycle began.

        Records arriving during the cycle wait for a full batch or the next interval, rather than each
        send chasing the queue's tail with ever smaller batches.
        """
        final = deadline is not None
        last_wanted = self._queue.last_seq if flush_all else 0
        while self._queue:
            now = time.monotonic()
            if final:
                if now >= deadline:  # type: ignore[operator]
                    return
            elif self._shutdown.is_set() or now < self._blocked_until:
                return
            if not final and not self._queue.batch_ready() and self._queue.first_seq() > last_wanted:
                return
            client = self._ensure_client(final)
            if client is None:
                return
            if self._maybe_stored:
                # Forget events dropped from the queue meanwhile (the queue is in arrival order).
                first = self._queue.first_seq()
                self._maybe_stored = {seq for seq in self._maybe_stored if seq >= first}
            self._last_send = time.monotonic()
            self._inflight = self._queue.take(self._config.max_batch_size)
            undelivered: list[Event] = self._inflight
            try:
                undelivered = self._deliver(client, self._inflight, deadline)
            finally:
                self._queue.put_back(undelivered)
                self._inflight = []
            if undelivered:
                return

    def _deliver(self, client: Any, chunk: list[Event], deadline: float | None) -> list[Event]:
        """Send one chunk; returns the events that must wait for a later attempt."""
        batches, too_old, too_new = plan_batches(chunk, int(time.time() * 1000))
        if too_old:
            self._reject(len(too_old), "older than CloudWatch's 14-day limit")
        if too_new:
            self._reject(len(too_new), "more than 2 hours in the future")
        for index, batch in enumerate(batches):
            undelivered = self._send(client, batch, deadline)
            if undelivered:
                return undelivered + [event for later in batches[index + 1 :] for event in later]
        return []

    def _reject(self, count: int, reason: str, error: BaseException | None = None) -> None:
        self._counters.rejected += count
        self._report("rejected", f"CloudWatch cannot accept {count} records: {reason}", count, error)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(self.timings.max_backoff, self._config.retry_delay * (2**attempt))
        return random.uniform(0.0, ceiling)

    def _pause(self, delay: float, deadline: float | None) -> bool:
        """Sleep before a retry; False when the time is up (stop requested, or past the deadline)."""
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            return time.monotonic() < deadline
        return not self._shutdown.wait(delay)

    def _send(self, client: Any, batch: list[Event], deadline: float | None) -> list[Event]:
        """One batch, with retries; returns the events not delivered (empty on success or rejection)."""
        config = self._config
        attempt = 0
        created = False
        log_events = [{"timestamp": timestamp, "message": message} for timestamp, _, message, _ in batch]
        if self._maybe_stored:
            # An earlier attempt gave up on a lost answer: sending these again may store them twice.
            again = {event[1] for event in batch} & self._maybe_stored
            self._counters.resent += len(again)
            self._maybe_stored -= again
        body_encoder = self._body_encoder if client is self._client else None
        call_events = log_events
        if body_encoder is not None:
            body_encoder.body = body_encoder.encode(config.log_group, self._stream, log_events)
            call_events = []
        while True:
            try:
                response = client.put_log_events(
                    logGroupName=config.log_group, logStreamName=self._stream, logEvents=call_events
                )
            except Exception as error:
                _release_frames(error)
                self._counters.failed += 1
                kind = _client.classify(error)
                if kind == _client.ALREADY_ACCEPTED:
                    self._delivered(len(batch), None)
                    return []
                if kind == _client.NOT_FOUND and not created:
                    failure = _client.create_destination(
                        client, config, self._stream, lambda text: self._report("create_failed", text)
                    )
                    if failure is None:
                        created = True
                        continue
                    # A throttled or failed create is retried like a failed put; a refusal
                    # (permissions, create_* disabled, a bad name) waits as a configuration problem.
                    create_error = failure.error
                    kind = _client.INVALID if create_error is None else _client.classify(create_error)
                    if create_error is None or kind not in (_client.RETRYABLE, _client.ANSWER_LOST, _client.AUTH):
                        self._report("create_failed", f"not sending: {failure.message}", len(batch), create_error)
                        self._block(self.timings.auth_retry)
                        return batch
                    error = create_error
                if kind == _client.INVALID:
                    return self._bisect(client, batch, deadline, error)
                if kind == _client.AUTH:
                    self._refused(error, len(batch))
                    return batch
                if attempt >= config.max_retries or (deadline is None and self._shutdown.is_set()):
                    if kind == _client.ANSWER_LOST:
                        self._maybe_stored.update(event[1] for event in batch)
                    self._failure_streak += 1
                    pause = self._backoff(config.max_retries + self._failure_streak)
                    self._report(
                        "delivery_failed",
                        f"PutLogEvents failed {attempt + 1} times ({_client.describe_error(error)}); "
                        f"{len(batch)} records kept for a later attempt in about {pause:.1f}s",
                        len(batch),
                        error,
                    )
                    self._block(pause)
                    return batch
                kind_name = "throttled" if _client.is_throttling(error) else "send_failed"
                self._report(
                    kind_name, f"PutLogEvents failed, will retry: {_client.describe_error(error)}", len(batch), error
                )
                if not self._pause(self._backoff(attempt), deadline):
                    return batch
                attempt += 1
                self._counters.retries += 1
                if kind == _client.ANSWER_LOST:
                    # The lost answer may have been a success: this resend can store these records twice.
                    self._counters.resent += len(batch)
                continue
            self._delivered(len(batch), response.get("rejectedLogEventsInfo"))
            return []

    def _bisect(self, client: Any, batch: list[Event], deadline: float | None, error: BaseException) -> list[Event]:
        """InvalidParameter: never resend the batch unchanged; halve it until the offending events are alone."""
        if len(batch) == 1:
            self._reject(1, f"refused by CloudWatch ({_client.describe_error(error)})", error)
            return []
        middle = len(batch) // 2
        undelivered = self._send(client, batch[:middle], deadline)
        if undelivered:
            return undelivered + batch[middle:]
        return self._send(client, batch[middle:], deadline)

    def _refused(self, error: BaseException, count: int) -> None:
        """Credentials or permissions refused: say it once, keep the records, retry slowly."""
        description = _client.describe_error(error)
        if description != self._auth_problem:
            self._auth_problem = description
            self._report(
                "access_denied",
                f"CloudWatch refused the credentials or permission ({description}); records are kept and "
                f"sending is retried every {self.timings.auth_retry:g}s. The sink needs logs:PutLogEvents, "
                "logs:CreateLogStream and logs:CreateLogGroup",
                count,
                error,
            )
        if self._config.client is None:
            # Rebuild the client at the next attempt so that fixed credentials are picked up.
            self._client = None
            if self._config.session is None:
                self._session = None
            self._next_connect_check = time.monotonic() + self.timings.auth_retry
        self._block(self.timings.auth_retry)

    def _block(self, seconds: float) -> None:
        self._blocked_until = time.monotonic() + seconds

    def _delivered(self, count: int, rejected_info: Any) -> None:
        self._failure_streak = 0
        self._blocked_until = 0.0
        if self._auth_problem is not None:
            self._auth_problem = None
            self._report("recovered", "CloudWatch accepts the credentials again: delivery resumes")
        rejected = rejected_indexes(rejected_info, count)
        refused = sum(len(indexes) for indexes in rejected.values())
        self._counters.batches += 1
        self._counters.sent += count - refused
        for reason, indexes in rejected.items():
            self._reject(len(indexes), f"rejected by CloudWatch as {reason.replace('_', ' ')} (rejectedLogEventsInfo)")
