"""Releasing what a failed call's exception keeps alive: the locals of its finished frames."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception of its chain (causes and contexts), each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        pending += [current.__cause__, current.__context__]
        yield current


def release_frames(error: BaseException) -> None:
    """Clear the local variables of the finished frames an exception (and its chain) still references.

    botocore returns a network error from the frame that caught it and raises it again later, so the
    error ends up in a reference cycle (the error -> its traceback -> those frames and their callers ->
    a local holding the error). Until the cyclic garbage collector runs, each failed call would keep its
    batch, the decoded messages and the request body alive: far beyond ``max_queue_bytes`` during an
    outage. Those locals also hold the request signer and its credentials, which have no business
    travelling with ``SinkProblem.exception``. Line numbers stay; only the locals go. Frames still
    running (this thread's own) and suspended generators are left alone, so call it again once the
    frames that handled the error have returned: a finished frame keeps its locals while the traceback
    (through ``f_back``) reaches it, and one of them may hold the error itself (a reference cycle only
    the cyclic garbage collector would free, after many failed attempts had piled up their batches).
    """
    generator_flags = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
    seen: set[int] = set()  # frames
    for current in chain(error):
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
