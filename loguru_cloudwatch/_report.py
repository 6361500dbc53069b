"""How the sink tells its user about its own problems: never through loguru or ``logging`` (that loops)."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

#: Seconds between two stderr lines of the same kind; the lines in between are counted, not printed.
STDERR_INTERVAL = 30.0


@dataclass(frozen=True)
class SinkProblem:
    """One problem the sink met, as given to ``on_error``.

    ``kind`` is a short stable identifier (``"no_credentials"``, ``"throttled"``, ``"queue_full"``,
    ``"rejected"``, ``"access_denied"``, ...), ``message`` a sentence for humans, ``count`` the number of
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
