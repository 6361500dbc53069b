"""Where this process's live sinks ship, to notice a second sink for the same group and stream.

Calling ``logger.add(CloudWatchSink(group, stream))`` twice (a notebook cell run again, a module imported
twice under two names) ships every record twice. Two sinks may legitimately share a stream (say, two
filters), so this is a warning, once per destination and process, not an error. It costs nothing per
record: a sink registers here from its worker when it first sends records (a sink that never gets any,
say one whose ``logger.add()`` failed, ships nothing twice), and leaves when it stops.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ._config import SinkConfig


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


def destination_of(config: SinkConfig, log_stream: str) -> Destination:
    """Where a sink with ``config`` ships: the region and endpoint of its ``client`` or ``session`` if given."""
    region, endpoint = config.region_name, config.endpoint_url
    if config.client is not None:
        meta = getattr(config.client, "meta", None)
        region, endpoint = getattr(meta, "region_name", None), getattr(meta, "endpoint_url", None)
    elif config.session is not None and region is None:
        region = getattr(config.session, "region_name", None)
    return Destination(config.log_group, log_stream, region, endpoint)


_lock = threading.Lock()
_live: dict[Destination, weakref.WeakSet[object]] = {}
_warned: set[Destination] = set()


def claim(destination: Destination, owner: object) -> bool:
    """Record that ``owner`` ships to ``destination``; True when another live owner already does and this
    process was not told yet."""
    with _lock:
        owners = _live.setdefault(destination, weakref.WeakSet())
        others = [other for other in owners if other is not owner]
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
