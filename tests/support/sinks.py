"""A sink in this process: a text-mode ``CloudWatchSink`` added to loguru, and numbered records to log."""

from __future__ import annotations

from typing import Any

from loguru import logger

from loguru_cloudwatch import CloudWatchSink


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
