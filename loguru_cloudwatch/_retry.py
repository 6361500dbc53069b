"""When to try again: exponential backoff with full jitter, capped, never past a deadline.

Full jitter (a delay drawn uniformly between 0 and the exponential ceiling) is what spreads a fleet out:
processes throttled at the same instant retry at different instants, and the calls the shared quota
refuses stay close to the minimum. Under a deadline (``stop()``, ``force_flush(timeout)``) the ceiling is
cut to the time left, so a sink keeps trying until its budget is spent instead of sleeping through it,
and its retries stay spread over that budget rather than bunching up at its end.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any


@dataclass
class Timings:
    """Internal pacing, in seconds (tests shorten them through ``DEFAULT_TIMINGS``)."""

    #: How often a missing credential / region is looked for again.
    credential_recheck: float = 15.0
    #: How long to wait after credentials were refused or the destination cannot be created.
    auth_retry: float = 60.0
    #: Cap of every backoff delay, and of the stretched flush interval while throttled.
    max_backoff: float = 30.0


DEFAULT_TIMINGS = Timings()

#: The smallest base of the exponential ceiling, in seconds.
_MIN_BASE = 0.001
#: Time kept in hand before a deadline for the last call (at least, and at most).
_RESERVE_FLOOR = 0.05
_RESERVE_CEILING = 1.0


class Backoff:
    """Delays before the next attempt: ``uniform(0, min(cap, base * 2**failures))``, within a deadline."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        #: Seconds the last successful call took: the time kept in hand before a deadline is twice that.
        self.call_seconds = _RESERVE_FLOOR

    def ceiling(self, failures: int) -> float:
        """The exponential ceiling after ``failures`` failed attempts (0: before the first retry).

        It doubles from at least 1 ms even when ``base`` is 0, so that retries never become a busy loop.
        """
        return min(self.cap, max(self.base, _MIN_BASE) * (2.0 ** min(failures, 64)))

    def delay(self, failures: int, hint: float | None = None, deadline: float | None = None) -> float:
        """Seconds to wait after ``failures`` failed attempts.

        ``hint`` is the server's own ``retry-after`` (seconds): the delay is at least that, capped like
        every delay. With a ``deadline`` (a ``time.monotonic()`` value) the delay ends early enough to
        leave time for one more call before it; 0 when that time is already short.
        """
        ceiling = self.ceiling(failures)
        if deadline is not None:
            ceiling = min(ceiling, max(0.0, self.window(deadline)))
        delay = random.uniform(0.0, ceiling)
        if hint is not None and hint > delay:
            delay = min(hint, ceiling)
        return delay

    def window(self, deadline: float) -> float:
        """Seconds that can still be waited before ``deadline`` with time left for one call."""
        reserve = min(_RESERVE_CEILING, max(_RESERVE_FLOOR, 2 * self.call_seconds))
        return deadline - time.monotonic() - reserve

    def observed_call(self, seconds: float) -> None:
        """Record how long a successful call took (the reserve before a deadline follows it)."""
        self.call_seconds = seconds


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
