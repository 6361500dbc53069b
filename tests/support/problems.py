"""``on_error`` callbacks that collect what the sink reported (the worker thread calls them).

``Problems`` keeps each ``SinkProblem`` itself; ``ProblemLog`` keeps only its kind, count and message (no
exception, so no traceback holding the worker's frames: for memory measurements, and child programs).
"""

from __future__ import annotations

import threading
import time
from typing import Any


class ProblemLog:
    """A thread-safe ``on_error`` callback keeping ``(time.monotonic(), kind, count, message)`` per problem.

    It keeps no reference to ``problem.exception``: an exception's traceback holds the worker's frames, and
    with them the batch being sent, which would distort memory measurements.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[float, str, int, str]] = []

    def __call__(self, problem: Any) -> None:
        with self._lock:
            self.items.append((time.monotonic(), problem.kind, problem.count, problem.message))

    def kinds(self) -> list[str]:
        with self._lock:
            return [kind for _, kind, _, _ in self.items]

    def messages(self, kind: str) -> list[str]:
        with self._lock:
            return [message for _, k, _, message in self.items if k == kind]

    def times(self, kind: str) -> list[float]:
        with self._lock:
            return [when for when, k, _, _ in self.items if k == kind]

    def count(self, kind: str) -> int:
        """How many reports of ``kind``."""
        return len(self.messages(kind))

    def records(self, kind: str) -> int:
        """The sum of the record counts of the reports of ``kind``."""
        with self._lock:
            return sum(count for _, k, count, _ in self.items if k == kind)


class Problems:
    """A thread-safe ``on_error`` callback keeping every problem with the time it arrived (the worker
    thread calls it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[float, Any]] = []

    def __call__(self, problem: Any) -> None:
        with self._lock:
            self.items.append((time.monotonic(), problem))

    def kinds(self) -> list[str]:
        with self._lock:
            return [problem.kind for _, problem in self.items]

    def all(self) -> list[Any]:
        with self._lock:
            return [problem for _, problem in self.items]

    def of(self, kind: str) -> list[Any]:
        with self._lock:
            return [problem for _, problem in self.items if problem.kind == kind]

    of_kind = of

    def times(self, kind: str) -> list[float]:
        with self._lock:
            return [when for when, problem in self.items if problem.kind == kind]

    def count(self, kind: str) -> int:
        """How many problems of this kind were reported."""
        return len(self.of(kind))

    def count_of(self, kind: str) -> int:
        """How many records the problems of this kind concerned (the sum of their ``count``)."""
        return sum(problem.count for problem in self.of(kind))
