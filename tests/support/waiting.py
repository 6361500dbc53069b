"""Waiting for a condition instead of for a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises AssertionError (with ``message`` and the last value seen) at the deadline.
    Exceptions raised by the predicate propagate: a broken predicate should fail loudly.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"wait_for timed out after {timeout:.2f}s: {message or predicate!r} (last value: {value!r})"
            )
        time.sleep(interval)
