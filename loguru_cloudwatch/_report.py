"""How the sink tells its user about its own problems: never through loguru or ``logging`` (that loops)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Seconds between two stderr lines of the same kind; the lines in between are counted, not printed.
STDERR_INTERVAL = 30.0

# The kinds of problems (``SinkProblem.kind``): stable identifiers that code may match on.
NO_CREDENTIALS = "no_credentials"
ACCESS_DENIED = "access_denied"
RECOVERED = "recovered"
THROTTLED = "throttled"
SEND_FAILED = "send_failed"
DELIVERY_FAILED = "delivery_failed"
CREATE_FAILED = "create_failed"
REJECTED = "rejected"
UNENCODABLE = "unencodable"
QUEUE_FULL = "queue_full"
UNDELIVERED_AT_STOP = "undelivered_at_stop"
INTERNAL_ERROR = "internal_error"
DUPLICATE_SINK = "duplicate_sink"
SPOOL_UNAVAILABLE = "spool_unavailable"
SPOOL_FULL = "spool_full"
SPOOL_DAMAGED = "spool_damaged"

#: Every kind, with what it means (the README's table of problems is this one).
PROBLEM_KINDS: Mapping[str, str] = {
    NO_CREDENTIALS: "no credentials or no region found: records are kept, and looked for again every 15 s",
    ACCESS_DENIED: "CloudWatch refused the credentials or a permission: records are kept, retried every 60 s",
    RECOVERED: "delivery resumes after `no_credentials`, `access_denied` or an untrusted certificate; the spool "
    "works again after `spool_unavailable`",
    THROTTLED: "a call was throttled: it is retried after a backoff",
    SEND_FAILED: "a call failed (5xx, network, a lost answer): it is retried after a backoff",
    DELIVERY_FAILED: "a round of `max_retries` retries failed (the records wait for a later attempt), or the "
    "endpoint's TLS certificate failed verification",
    CREATE_FAILED: "the group or stream could not be created, or the retention set: records are kept",
    REJECTED: "CloudWatch cannot accept records (too old, too new, invalid): counted in `stats.rejected`",
    UNENCODABLE: "a record could not be encoded: dropped, counted in `stats.rejected`",
    QUEUE_FULL: "the queue is full: the oldest records were dropped, counted in `stats.dropped`",
    UNDELIVERED_AT_STOP: "`stop()` ran out of `shutdown_timeout`: what is left is counted in `stats.abandoned` "
    "(also printed on stderr)",
    INTERNAL_ERROR: "an unexpected error in the worker (a bug to report): the worker keeps going",
    DUPLICATE_SINK: "a second live sink of this process ships to the same group and stream (each record logged "
    "to both is sent twice): said once per group and stream",
    SPOOL_UNAVAILABLE: "the spool cannot be written (full or read-only filesystem, permission, damage): records "
    "are kept in memory and sent from there; the spool is tried again every 5 s",
    SPOOL_FULL: "the spool reached `max_spool_bytes`: its oldest records were dropped, counted in `stats.dropped`",
    SPOOL_DAMAGED: "part of a spool file could not be read (the file is named): the records of a damaged chunk "
    "are counted in `stats.dropped`, the rest is delivered; a file nothing can be read of is moved aside as "
    "`.damaged`; a file of a newer format is left alone",
}


@dataclass(frozen=True)
class SinkProblem:
    """One problem the sink met, as given to ``on_error``.

    ``kind`` is a short stable identifier, one of ``PROBLEM_KINDS`` (``"no_credentials"``, ``"throttled"``,
    ``"queue_full"``, ...), ``message`` a sentence for humans, ``count`` the number of
    records concerned (0 when none), ``exception`` the underlying exception if any.
    """

    kind: str
    message: str
    count: int = 0
    exception: BaseException | None = None

    def __str__(self) -> str:
        return self.message


def write_stderr(line: str) -> None:
    """Write one line to stderr; a closed or missing stderr is ignored."""
    try:
        stream = sys.stderr
        if stream is not None:
            stream.write(f"loguru-cloudwatch: {line}\n")
            stream.flush()
    except Exception:
        pass


class Reporter:
    """Routes problems to ``on_error`` (every one) or to stderr (rate-limited per kind)."""

    def __init__(self, on_error: Callable[[SinkProblem], Any] | None, interval: float = STDERR_INTERVAL) -> None:
        self._on_error = on_error
        self._interval = interval
        self._lock = threading.Lock()
        self._last_printed: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.last_error: str | None = None

    def report(self, problem: SinkProblem) -> None:
        self.last_error = problem.message
        if self._on_error is not None:
            try:
                self._on_error(problem)
                return
            except Exception as error:
                write_stderr(f"on_error callback raised {type(error).__name__}: {error}; the problem was: {problem}")
                return
        now = time.monotonic()
        with self._lock:
            last = self._last_printed.get(problem.kind)
            if last is not None and now - last < self._interval:
                self._suppressed[problem.kind] = self._suppressed.get(problem.kind, 0) + 1
                return
            self._last_printed[problem.kind] = now
            suppressed = self._suppressed.pop(problem.kind, 0)
        suffix = f" ({suppressed} similar reports suppressed)" if suppressed else ""
        write_stderr(problem.message + suffix)
