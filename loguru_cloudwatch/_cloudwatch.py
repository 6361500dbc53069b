"""The CloudWatch side of the worker: one attempt to deliver a chunk of queued events.

``CloudWatchShipper.send(chunk, deadline)`` cuts the chunk into batches CloudWatch accepts, makes one
PutLogEvents call per batch and fixes on the spot what can be fixed at once: a missing stream or group
is created and the batch sent again, an invalid batch is halved until the offending events are alone
(and rejected, counted), a batch CloudWatch already holds counts as delivered. Anything else (throttling,
a 5xx, a network error, refused credentials, no credentials yet) ends the attempt: the undelivered events
go back to the worker with the reason, and the worker decides when to try again (see ``_worker``).

It owns the client (built behind the credential guard), the destination, and the counters of what was
sent, rejected and failed.
"""

from __future__ import annotations

import time
from typing import Any

from . import _client, _errors
from ._batch import plan_batches, rejected_indexes
from ._config import SinkConfig
from ._frames import release_frames
from ._limits import EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES
from ._queue import BatchCost, Event
from ._report import (
    ACCESS_DENIED,
    CREATE_FAILED,
    DELIVERY_FAILED,
    NO_CREDENTIALS,
    RECOVERED,
    REJECTED,
    Reporter,
    SinkProblem,
)
from ._retry import Timings, retry_after_hint
from ._shipper import DELIVERED, NO_CLIENT, REFUSED, RETRYABLE, Outcome
from ._stats import Counters

#: CloudWatch's cost of a PutLogEvents batch: each event's UTF-8 bytes plus 26, at most 1 MiB in all.
CLOUDWATCH_BATCH_COST = BatchCost(per_event=EVENT_OVERHEAD_BYTES, max_bytes=MAX_BATCH_BYTES)


def _all_delivered() -> Outcome:
    return Outcome(DELIVERED, [])


class CloudWatchShipper:
    """Delivers chunks of events to one log stream; used by the worker thread only."""

    def __init__(
        self, config: SinkConfig, log_stream: str, counters: Counters, reporter: Reporter, timings: Timings
    ) -> None:
        self._config = config
        self._stream = log_stream
        self._counters = counters
        self._reporter = reporter
        self.timings = timings
        self.client: Any = None
        self._body_encoder: _client.PutBodyEncoder | None = None
        self._session: Any = None
        self._next_connect_check = 0.0
        self._guard_problem: str | None = None
        #: Why CloudWatch last refused the sink (credentials, permission, certificate), until it accepts again.
        self._refusal: str | None = None
        #: The stream (or group) was missing and creating it failed: create before the next put.
        self._create_first = False
        #: Sequence numbers of events whose last send lost its answer (CloudWatch may hold them already).
        self.maybe_stored: set[int] = set()
        #: Seconds the last successful PutLogEvents call took.
        self.last_call_seconds = 0.0
        self.batch_cost = CLOUDWATCH_BATCH_COST

    def _report(self, kind: str, message: str, count: int = 0, error: BaseException | None = None) -> None:
        self._reporter.report(SinkProblem(kind, message, count, error))

    # -- the credential guard ------------------------------------------------------------------

    def connect(self, force: bool) -> Any:
        """A client when credentials and a region can be found, else None (looked for again later)."""
        if self.client is not None:
            return self.client
        now = time.monotonic()
        if not force and now < self._next_connect_check:
            return None
        try:
            connection, self._session = _client.connect(self._config, self._session)
        except Exception as error:
            connection = _client.Connection(None, f"could not create the CloudWatch Logs client: {error!r}")
        if connection.client is None:
            self._next_connect_check = time.monotonic() + self.timings.credential_recheck
            if connection.problem != self._guard_problem:
                self._guard_problem = connection.problem
                self._report(NO_CREDENTIALS, f"not sending: {connection.problem}")
            return None
        if self._guard_problem is not None:
            self._guard_problem = None
            self._report(RECOVERED, "credentials and region found: delivery resumes")
        self.client = connection.client
        self._body_encoder = _client.PutBodyEncoder(self.client) if self._config.client is None else None
        return self.client

    # -- one attempt -----------------------------------------------------------------------------

    def send(self, chunk: list[Event], deadline: float | None) -> Outcome:
        """Try once to deliver ``chunk``; ``deadline`` (monotonic) ends the attempt's extra calls early."""
        client = self.connect(force=False)
        if client is None:
            wait = max(0.0, self._next_connect_check - time.monotonic())
            why = self._guard_problem or f"waiting to build a new client after {self._refusal or 'a refusal'}"
            return Outcome(NO_CLIENT, chunk, f"not sending: {why}", wait=wait)
        if self.maybe_stored:
            # Forget events dropped from the queue meanwhile: the chunk comes from the queue's head.
            first = min(event[1] for event in chunk)
            self.maybe_stored = {seq for seq in self.maybe_stored if seq >= first}
        batches, too_old, too_new = plan_batches(chunk, int(time.time() * 1000))
        if too_old:
            self._reject(len(too_old), "older than CloudWatch's 14-day limit")
        if too_new:
            self._reject(len(too_new), "more than 2 hours in the future")
        for index, batch in enumerate(batches):
            outcome = self._put(client, batch, deadline)
            if outcome.undelivered:
                outcome.undelivered += [event for later in batches[index + 1 :] for event in later]
                return outcome
        return _all_delivered()

    def _put(self, client: Any, batch: list[Event], deadline: float | None) -> Outcome:
        """One PutLogEvents of one batch, with the fixes that need no waiting (create, bisect)."""
        created = False
        if self._create_first:
            failure = self._create(client, batch)
            if failure is not None:
                return failure
            created = True
        while True:
            error = self._call(client, batch)
            if error is None:
                return _all_delivered()
            release_frames(error)  # now that the call's frame is finished too (it holds the batch)
            kind = _errors.classify(error)
            if kind == _errors.ALREADY_ACCEPTED:
                self._delivered(len(batch), None)
                return _all_delivered()
            if kind == _errors.NOT_FOUND and not created:
                # The first put to a new stream: the expected answer, not a failure, once creating works.
                failure = self._create(client, batch)
                if failure is not None:
                    self._counters.failed += 1
                    return failure
                created = True
                continue
            self._counters.failed += 1
            if kind == _errors.INVALID:
                return self._bisect(client, batch, deadline, error)
            if kind == _errors.AUTH:
                return self._refused(error, batch)
            if kind == _errors.UNTRUSTED:
                return self._untrusted(error, batch)
            if kind == _errors.ANSWER_LOST:
                self.maybe_stored.update(event[1] for event in batch)
            return Outcome(
                RETRYABLE,
                batch,
                f"PutLogEvents failed ({_errors.describe_error(error)})",
                error,
                throttled=_errors.is_throttling(error),
                retry_after=retry_after_hint(error),
            )

    def _call(self, client: Any, batch: list[Event]) -> Exception | None:
        """Make the call; None on success (counted), else the error."""
        config = self._config
        log_events = [{"timestamp": timestamp, "message": message} for timestamp, _, message, _ in batch]
        if self.maybe_stored:
            # An earlier attempt lost its answer: sending these again may store them twice.
            again = {event[1] for event in batch} & self.maybe_stored
            self._counters.resent += len(again)
            self.maybe_stored -= again
        body_encoder = self._body_encoder if client is self.client else None
        call_events = log_events
        if body_encoder is not None:
            body_encoder.body = body_encoder.encode(config.log_group, self._stream, log_events)
            call_events = []
        started = time.monotonic()
        try:
            response = client.put_log_events(
                logGroupName=config.log_group, logStreamName=self._stream, logEvents=call_events
            )
        except Exception as error:
            return error  # counted by _put, which knows whether it was a failure
        finally:
            if body_encoder is not None:
                body_encoder.body = None  # up to 1 MiB: not kept alive until the next call
        self.last_call_seconds = time.monotonic() - started
        self._delivered(len(batch), response.get("rejectedLogEventsInfo"))
        return None

    def _create(self, client: Any, batch: list[Event]) -> Outcome | None:
        """Create the stream (and the group if missing too); None when it exists now."""
        failure = _client.create_destination(
            client, self._config, self._stream, lambda text, error: self._report(CREATE_FAILED, text)
        )
        if failure is None:
            self._create_first = False
            return None
        self._create_first = True
        error = failure.error
        kind = _errors.INVALID if error is None else _errors.classify(error)
        if error is not None and kind in (_errors.RETRYABLE, _errors.ANSWER_LOST):
            # A throttled or failed create is retried like a failed put.
            throttled = _errors.is_throttling(error)
            return Outcome(RETRYABLE, batch, failure.message, error, throttled, retry_after_hint(error))
        if error is not None and kind == _errors.AUTH:
            return self._refused(error, batch)
        # A refusal (create_* disabled, a bad name, a missing permission) waits as a configuration problem.
        self._report(CREATE_FAILED, f"not sending: {failure.message}", len(batch), error)
        return Outcome(REFUSED, batch, failure.message, error, wait=self.timings.auth_retry)

    def _bisect(self, client: Any, batch: list[Event], deadline: float | None, error: BaseException) -> Outcome:
        """InvalidParameter: never resend the batch unchanged; halve it until the offending events are alone."""
        if len(batch) == 1:
            self._reject(1, f"refused by CloudWatch ({_errors.describe_error(error)})", error)
            return _all_delivered()
        middle = len(batch) // 2
        first = self._put(client, batch[:middle], deadline)
        if first.undelivered:
            first.undelivered += batch[middle:]
            return first
        if deadline is not None and time.monotonic() >= deadline:
            return Outcome(RETRYABLE, batch[middle:], "the deadline passed while isolating invalid events")
        return self._put(client, batch[middle:], deadline)

    def _refused(self, error: BaseException, batch: list[Event]) -> Outcome:
        """Credentials or permissions refused: say it once, keep the records, retry slowly."""
        if self._config.client is None:
            # Rebuild the client at the next attempt so that fixed credentials are picked up.
            self.client = None
            if self._config.session is None:
                self._session = None
            self._next_connect_check = time.monotonic() + self.timings.auth_retry
        return self._refusal_outcome(
            error,
            batch,
            ACCESS_DENIED,
            "CloudWatch refused the credentials or permission",
            "The sink needs logs:PutLogEvents, logs:CreateLogStream and logs:CreateLogGroup",
        )

    def _untrusted(self, error: BaseException, batch: list[Event]) -> Outcome:
        """The endpoint's certificate is not trusted: retrying soon cannot help (the sink never stops verifying)."""
        return self._refusal_outcome(
            error,
            batch,
            DELIVERY_FAILED,
            "the endpoint's TLS certificate failed verification",
            "Trust its CA with AWS_CA_BUNDLE or boto_config, or fix endpoint_url",
        )

    def _refusal_outcome(self, error: BaseException, batch: list[Event], kind: str, what: str, fix: str) -> Outcome:
        """Report a refusal once (until CloudWatch accepts again); the records wait ``auth_retry``."""
        description = _errors.describe_error(error)
        if description != self._refusal:
            self._refusal = description
            self._report(
                kind,
                f"{what} ({description}); records are kept and sending is retried every "
                f"{self.timings.auth_retry:g}s. {fix}",
                len(batch),
                error,
            )
        return Outcome(REFUSED, batch, f"{what} ({description})", error, wait=self.timings.auth_retry)

    def _reject(self, count: int, reason: str, error: BaseException | None = None) -> None:
        self._counters.rejected += count
        self._report(REJECTED, f"CloudWatch cannot accept {count} records: {reason}", count, error)

    def _delivered(self, count: int, rejected_info: Any) -> None:
        if self._refusal is not None:
            self._refusal = None
            self._report(RECOVERED, "CloudWatch accepts the sink's requests again: delivery resumes")
        rejected = rejected_indexes(rejected_info, count)
        refused = sum(len(indexes) for indexes in rejected.values())
        self._counters.batches += 1
        self._counters.sent += count - refused
        for reason, indexes in rejected.items():
            self._reject(len(indexes), f"rejected by CloudWatch as {reason.replace('_', ' ')} (rejectedLogEventsInfo)")
