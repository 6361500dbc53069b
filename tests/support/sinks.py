"""A sink in this process: a text-mode ``CloudWatchSink`` added to loguru, and numbered records to log."""

from __future__ import annotations

from typing import Any

from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from tests.support.aws import read_messages
from tests.support.waiting import wait_for

#: The pacing of test files in which ``force_flush`` drives delivery (unless a test wants timed flushes).
FLUSH_DRIVEN_PACING: dict[str, Any] = {
    "flush_interval": 10.0,
    "retry_delay": 0.005,
    "max_retries": 3,
    "shutdown_timeout": 2.0,
}


def add_text_sink(
    group: str,
    stream: str,
    endpoint_url: str | None,
    defaults: dict[str, Any],
    *,
    enqueue: bool = False,
    **options: Any,
) -> CloudWatchSink:
    """A text-mode sink added to loguru with ``format="{message}"``: each event is exactly what was logged.

    ``options`` override the calling test file's ``defaults`` (its pacing), which override ``serialize=False``.
    """
    sink = CloudWatchSink(group, stream, endpoint_url=endpoint_url, **{"serialize": False, **defaults, **options})
    logger.add(sink, format="{message}", level="DEBUG", enqueue=enqueue)
    return sink


def log_many(prefix: str, count: int) -> list[str]:
    """Log ``prefix-0`` ... ``prefix-{count-1}`` at INFO through loguru; returns the messages."""
    messages = [f"{prefix}-{index}" for index in range(count)]
    for message in messages:
        logger.info(message)
    return messages


class TextStream:
    """One test file's log stream: text-mode sinks with the file's pacing, and what the stream holds.

    ``defaults`` is the file's own dict: a test may add to it (``monkeypatch.setitem(defaults, "_timings",
    ...)``) for the sinks it adds.
    """

    def __init__(self, group: str, stream: str, defaults: dict[str, Any]) -> None:
        self.group = group
        self.stream = stream
        self.defaults = defaults

    def add_sink(self, endpoint_url: str | None, **options: Any) -> CloudWatchSink:
        return add_text_sink(self.group, self.stream, endpoint_url, self.defaults, **options)

    def stored(self, client: Any) -> list[str]:
        return read_messages(client, self.group, self.stream)

    def wait_stored(self, client: Any, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until the stream holds ``count`` events, and return them."""
        wait_for(
            lambda: len(self.stored(client)) >= count, timeout=timeout, interval=0.05, message=f"{count} events stored"
        )
        return self.stored(client)
