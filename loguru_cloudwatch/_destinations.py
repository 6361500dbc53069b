"""Where this process's live sinks ship, to notice a second sink for the same group and stream.

Calling ``logger.add(CloudWatchSink(group, stream))`` twice (a notebook cell run again, a module imported
twice under two names) ships every record twice. Two sinks may legitimately share a stream (say, two
filters), so this is a warning, once per destination and process, not an error. It costs nothing per
record: sinks register here when they start and leave when they stop.
"""

from __future__ import annotations

import threading
import weakref
from typing import NamedTuple


class Destination(NamedTuple):
    """A group and stream at one endpoint: two sinks with equal destinations ship to the same place."""

    log_group: str
    log_stream: str
    region_name: str | None
    endpoint_url: str | None

    def duplicate_message(self) -> str:
        """What the second sink for this destination says."""
        return (
            f"a second sink ships to log group {self.log_group!r} stream {self.log_stream!r} in this process: "
            "a record logged to both is sent twice (logger.add() run again?). logger.remove(handler_id) "
            "stops a sink; this is said once"
        )


_lock = threading.Lock()
_live: dict[Destination, weakref.WeakSet[object]] = {}
_warned: set[Destination] = set()


def claim(destination: Destination, owner: object, replacing: object = None) -> bool:
    """Record that ``owner`` ships to ``destination``; True when another live owner already does
    (``replacing`` apart: a sink about to be stopped) and this process was not told yet."""
    with _lock:
        owners = _live.setdefault(destination, weakref.WeakSet())
        others = [other for other in owners if other is not replacing and other is not owner]
        owners.add(owner)
        if not others or destination in _warned:
            return False
        _warned.add(destination)
        return True


def release(destination: Destination, owner: object) -> None:
    """``owner`` stopped: it no longer ships to ``destination``."""
    with _lock:
        owners = _live.get(destination)
        if owners is not None:
            owners.discard(owner)
            if not owners:
                del _live[destination]


def forget_all() -> None:
    """In a forked child: the parent's registrations are not this process's (its sinks register again)."""
    global _lock
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork
    _live.clear()
