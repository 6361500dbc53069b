"""When to try again: the retry policy, as the worker applies it after each attempt.

Exponential backoff with full jitter: after ``k`` failed attempts the next one waits ``uniform(0,
min(cap, retry_delay * 2**k))``. Full jitter is what spreads a fleet out: processes throttled at the same
instant retry at different instants, and the calls a shared quota refuses stay few. Two regimes:

- **normal operation**: a round is one attempt and ``max_retries`` retries; after a failed round the
  events wait ``retry_delay * 2**(max_retries + rounds)`` (jittered, capped) before the next round. While
  CloudWatch throttles, the flush interval stretches too: each call delivered after being throttled
  doubles it (up to ``max_backoff``), each call delivered at once halves it back. Calls get fewer and
  fuller until they fit the quota, and the pace comes back within a few calls once the quota frees up.
- **under a deadline** (``force_flush(timeout)`` while its caller waits, ``stop()``): no round limit. The
  ceiling is also cut to a quarter of the budget, so that a sink finishes soon after the quota frees up
  (with 20 processes behind 4 calls/s, the last one delivered after about 5 s instead of 7-8 s), and never
  to more than the time left minus a reserve for one call. Once the ceiling has outgrown the time left,
  ``FINAL_ATTEMPTS`` more attempts are made, one in each equal slot of it (the last close to the
  deadline), and then no more: halving the time left at every failure would bunch a throttled fleet's
  attempts up just before the deadline.

The server's retry-after hint, when an answer carries one, is a floor under the jittered delay (capped
like every delay). botocore makes a single attempt per call here (see ``_client``), so its own backoff
and its reading of ``x-amz-retry-after`` never come into play.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any


@dataclass
class Timings:
    """Internal pacing, in seconds: fixed per sink (tests pass shorter ones as ``CloudWatchSink(_timings=...)``)."""

    #: How often a missing credential / region is looked for again.
    credential_recheck: float = 15.0
    #: How long to wait after credentials were refused or the destination cannot be created.
    auth_retry: float = 60.0
    #: Cap of every backoff delay, and of the stretched flush interval while throttled.
    max_backoff: float = 30.0


#: Attempts left once the exponential ceiling has outgrown the time left before a deadline.
FINAL_ATTEMPTS = 3
#: Under a deadline, the ceiling is at most this share of the deadline's whole budget.
BUDGET_SHARE = 0.25
#: The smallest base of the exponential ceiling, in seconds: retries never become a busy loop.
_MIN_BASE = 0.001
#: Time kept in hand before a deadline for the last call (at least, and at most).
_RESERVE_FLOOR = 0.05
_RESERVE_CEILING = 1.0


@dataclass(frozen=True)
class Deadline:
    """When a flush or the final drain must be over (``at``, a ``time.monotonic()`` value) and the
    seconds it was given in all."""

    at: float
    seconds: float

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def passed(self) -> bool:
        return time.monotonic() >= self.at


class Pacing:
    """The retry state of one sink: when the next attempt may start, and why.

    ``next_attempt`` (monotonic) is the earliest start of the next attempt; ``retrying`` says the head of
    the queue failed and goes again then, without waiting for a full batch or the flush interval.
    """

    def __init__(self, retry_delay: float, max_retries: int, flush_interval: float, timings: Timings) -> None:
        self._base = max(retry_delay, _MIN_BASE)
        self._max_retries = max_retries
        self._flush_interval = flush_interval
        self._cap = timings.max_backoff
        self.next_attempt = 0.0
        self.retrying = False
        #: The last failure was retryable (throttling, 5xx, network): the next attempt is a retry.
        self.retryable = False
        #: The flush interval now: stretched while throttled.
        self.interval = flush_interval
        self._failures = 0  # failed attempts in a row, in any regime
        self._round_failures = 0
        self._failed_rounds = 0
        self._waiting_on_shipper = False  # the wait was the shipper's (credentials missing or refused)
        self._throttled = False  # throttled since the last delivery
        self._planned_for: Deadline | None = None
        # The final attempts before a deadline: which deadline, when their span began, how long it is.
        self._final_for: float | None = None
        self._final_start = 0.0
        self._final_span = 0.0
        self._final_made = FINAL_ATTEMPTS
        self._call_seconds = _RESERVE_FLOOR

    # -- outcomes ----------------------------------------------------------------------------------

    def delivered(self, call_seconds: float) -> None:
        """An attempt delivered everything it carried."""
        self._failures = self._round_failures = self._failed_rounds = 0
        self.retrying = self.retryable = self._waiting_on_shipper = False
        self.next_attempt = 0.0
        self._planned_for = None
        if self._throttled:
            # Through a quota: the next calls come less often, and carry more.
            self.interval = min(max(self._flush_interval, self._cap), self.interval * 2)
        else:
            self.interval = max(self._flush_interval, self.interval / 2)
        self._throttled = False
        self._call_seconds = call_seconds

    def failed(self, throttled: bool, retry_after: float | None, deadline: Deadline | None) -> tuple[float | None, int]:
        """A retryable failure: ``(delay before the next attempt, attempts in the failed round)``.

        The delay is None when no further attempt fits before ``deadline``. The attempt count is 0 unless
        the failure ended a round (normal operation), when the events wait longer.
        """
        self._failures += 1
        self.retryable = True
        self._waiting_on_shipper = False
        self._throttled = self._throttled or throttled
        if deadline is not None:
            self.retrying = True
            delay = self._delay_before(deadline, self._failures - 1, retry_after)
            self._plan(deadline, delay)
            return delay, 0
        self._planned_for = None
        if self._round_failures < self._max_retries:
            delay = self._draw(self._ceiling(self._round_failures), retry_after)
            self._round_failures += 1
            self.retrying = True
            self.next_attempt = time.monotonic() + delay
            return delay, 0
        attempts = self._round_failures + 1
        self._failed_rounds += 1
        self._round_failures = 0
        self.retrying = False
        delay = self._draw(self._ceiling(self._max_retries + self._failed_rounds), retry_after)
        self.next_attempt = time.monotonic() + delay
        return delay, attempts

    def told_to_wait(self, seconds: float, deadline: Deadline | None) -> None:
        """The shipper cannot send (no credentials yet, or refused): nothing to gain before ``seconds``."""
        self._failures += 1
        self.retryable = False
        self._waiting_on_shipper = True
        self._round_failures = 0
        self.retrying = deadline is not None
        if deadline is not None:
            self._plan(deadline, seconds)
        else:
            self._planned_for = None
            self.next_attempt = time.monotonic() + seconds

    def fit_into(self, deadline: Deadline, final: bool = False) -> None:
        """Make a wait planned without ``deadline`` fit its budget (a flush, or the final drain, began).

        A backoff longer than the deadline's own ceiling (a share of its budget, and the time left) is
        drawn again within it. A wait the shipper asked for stands, except at the final drain, which tries
        once more at once: credentials may have been fixed.
        """
        if self._planned_for == deadline and not final:
            return
        self._planned_for = deadline
        now = time.monotonic()
        if self._waiting_on_shipper:
            if final:
                self.next_attempt = now
            return
        if self.next_attempt > now + max(0.0, min(self._window(deadline), self._budget_ceiling(deadline))):
            self._plan(deadline, self._delay_before(deadline, self._failures))

    def no_attempt_fits(self, deadline: Deadline) -> bool:
        """No further attempt can start before ``deadline``."""
        return self.next_attempt >= deadline.at

    # -- the arithmetic ------------------------------------------------------------------------------

    def _plan(self, deadline: Deadline, delay: float | None) -> None:
        self._planned_for = deadline
        self.next_attempt = deadline.at if delay is None else min(time.monotonic() + delay, deadline.at)

    def _ceiling(self, failures: int) -> float:
        return min(self._cap, self._base * (2.0 ** min(failures, 64)))

    def _budget_ceiling(self, deadline: Deadline) -> float:
        """The largest backoff under ``deadline``: a share of its whole budget (at least ``retry_delay``)."""
        return max(self._base, BUDGET_SHARE * deadline.seconds)

    def _window(self, deadline: Deadline) -> float:
        """Seconds that can still be waited before ``deadline`` with time left for one call."""
        reserve = min(_RESERVE_CEILING, max(_RESERVE_FLOOR, 2 * self._call_seconds))
        return deadline.at - time.monotonic() - reserve

    def _delay_before(self, deadline: Deadline, failures: int, hint: float | None = None) -> float | None:
        window = self._window(deadline)
        if window <= 0:
            return None
        ceiling = min(self._ceiling(failures), self._budget_ceiling(deadline))
        if ceiling < window:
            return self._draw(ceiling, hint, min(self._cap, window))
        # The ceiling has outgrown the time left: the final attempts, one in each equal slot of it, so the
        # last comes near the deadline and a fleet's stay spread out.
        now = time.monotonic()
        if self._final_for != deadline.at:
            self._final_for, self._final_start, self._final_span, self._final_made = deadline.at, now, window, 0
        if self._final_made >= FINAL_ATTEMPTS:
            return None
        slot = self._final_span / FINAL_ATTEMPTS
        at = self._final_start + random.uniform(self._final_made * slot, (self._final_made + 1) * slot)
        self._final_made += 1
        delay = max(0.0, at - now)
        if hint is not None and hint > delay:
            delay = min(hint, window)
        return delay

    def _draw(self, ceiling: float, hint: float | None, limit: float | None = None) -> float:
        """A delay under ``ceiling``, raised to the server's ``hint`` up to ``limit`` (default: the cap)."""
        delay = random.uniform(0.0, ceiling)
        if hint is not None and hint > delay:
            delay = min(hint, self._cap if limit is None else limit)
        return delay


def retry_after_hint(error: BaseException) -> float | None:
    """The server's hint of when to try again, in seconds, if its error answer carried one.

    ``x-amz-retry-after`` is milliseconds (what botocore's standard retry mode reads); ``Retry-After`` is
    seconds or an HTTP date (RFC 9110). CloudWatch Logs does not document either, but a proxy or a
    compatible endpoint may send them.
    """
    response: Any = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    try:
        if "x-amz-retry-after" in headers:
            value = float(headers["x-amz-retry-after"]) / 1000.0
        elif "retry-after" in headers:
            text = str(headers["retry-after"]).strip()
            value = float(text) if text.isdigit() else parsedate_to_datetime(text).timestamp() - time.time()
        else:
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    return value if value > 0 else None
