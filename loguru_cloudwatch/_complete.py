"""``sink.complete()``: what loguru awaits in ``await logger.complete()``, flushing the sink for asyncio code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any


async def _coroutine_template() -> None:  # pragma: no cover - only its code flags are used
    """Lends its code object to ``CompleteMethod`` (see there)."""


class Completion:
    """What ``sink.complete()`` returns: awaiting it runs the sink's ``force_flush`` in an executor and
    gives its result (True when everything written before was delivered)."""

    __slots__ = ("_flush",)

    def __init__(self, flush: Callable[[], bool]) -> None:
        self._flush = flush

    def __await__(self) -> Generator[Any, None, bool]:
        loop = asyncio.get_running_loop()
        delivered: bool = yield from loop.run_in_executor(None, self._flush).__await__()
        return delivered


class CompleteMethod:
    """``sink.complete``: a coroutine function for loguru, a plain awaitable for everyone else.

    loguru awaits ``complete()`` only if ``inspect.iscoroutinefunction`` says so, but a synchronous
    ``logger.complete()`` also calls it and drops the result: a real coroutine would then print "coroutine
    was never awaited". This callable carries a coroutine's code flags (what ``inspect`` checks) and
    returns an awaitable object that can be dropped silently.
    """

    __code__ = _coroutine_template.__code__
    __defaults__ = None
    __kwdefaults__ = None
    __annotations__: dict[str, Any] = {}
    __name__ = "complete"

    def __init__(self, flush: Callable[[], bool]) -> None:
        self._flush = flush

    def __call__(self) -> Awaitable[bool]:
        return Completion(self._flush)
