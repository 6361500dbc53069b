"""Test support: the worker without I/O. ``MemoryShipper`` stands in for ``CloudWatchShipper``.

It records every ``send`` (when, which events, under which deadline) and answers from a script of
outcomes, so that the worker's loop, flush requests, deadlines and pacing are tested on exact sequences
of attempts, in milliseconds, without moto. ``WorkerRig`` wires a real ``Worker`` to a real ``EventQueue``
the way the sink does, with a spool in front of the queue when given a ``spool_dir``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from loguru_cloudwatch._cloudwatch import CLOUDWATCH_BATCH_COST
from loguru_cloudwatch._config import SinkConfig
from loguru_cloudwatch._queue import Backlog, Event, EventQueue
from loguru_cloudwatch._report import Reporter, SinkProblem
from loguru_cloudwatch._retry import Deadline, Timings
from loguru_cloudwatch._shipper import DELIVERED, NO_CLIENT, REFUSED, RETRYABLE, Outcome
from loguru_cloudwatch._spool import SpooledBacklog
from loguru_cloudwatch._stats import Counters
from loguru_cloudwatch._worker import DrainReport, Worker

#: Answers a script may hold: delivered, throttled (retryable), failed (retryable), or a wait in seconds
#: after a refusal or while there is no client, as ``("refused", seconds)`` / ``("no_client", seconds)``.
Answer = Any

CONFIG = SinkConfig(
    log_group="memory",
    log_stream_template="memory-stream",
    serialize=False,
    extra_keys=None,
    traceback_values=False,
    flush_interval=60.0,
    max_batch_size=10_000,
    max_queue_size=100_000,
    max_queue_bytes=64 * 1024 * 1024,
    spool_dir=None,
    max_spool_bytes=1 << 30,
    max_retries=3,
    retry_delay=0.01,
    create_log_group=True,
    create_log_stream=True,
    retention_days=None,
    log_group_class=None,
    kms_key_id=None,
    tags=None,
    client=None,
    session=None,
    region_name=None,
    endpoint_url=None,
    boto_config=None,
    shutdown_timeout=1.0,
    on_error=None,
)


@dataclass(frozen=True)
class Send:
    """One call of ``send``: when (monotonic), the events it was given, the attempt's deadline."""

    at: float
    events: list[Event]
    deadline: float | None


class MemoryShipper:
    """A shipper that keeps what it is sent; each ``send`` takes the next scripted answer (then ``default``)."""

    def __init__(self, script: Iterable[Answer] = (), default: Answer = "delivered") -> None:
        self.last_call_seconds = 0.0
        self.batch_cost = CLOUDWATCH_BATCH_COST  # the in-memory shipper counts batches as CloudWatch does
        self.default = default
        self.sends: list[Send] = []
        self.delivered: list[Event] = []
        self.connects: list[bool] = []
        self._script = list(script)
        self._lock = threading.Lock()

    def connect(self, force: bool) -> Any:
        self.connects.append(force)
        return self

    def send(self, chunk: list[Event], deadline: float | None) -> Outcome:
        with self._lock:
            answer = self._script.pop(0) if self._script else self.default
            self.sends.append(Send(time.monotonic(), list(chunk), deadline))
            if answer == "delivered":
                self.delivered += chunk
                return Outcome(DELIVERED, [])
        if answer in ("throttled", "failed"):
            throttled = answer == "throttled"
            reason = "PutLogEvents failed (ThrottlingException)" if throttled else "PutLogEvents failed (503)"
            return Outcome(RETRYABLE, chunk, reason, throttled=throttled)
        status, wait = answer
        assert status in ("refused", "no_client"), answer
        return Outcome(REFUSED if status == "refused" else NO_CLIENT, chunk, f"not sending: {status}", wait=wait)

    def messages(self) -> list[str]:
        """The delivered events' messages, in delivery order."""
        with self._lock:
            return [event[2] for event in self.delivered]


class WorkerRig:
    """A started ``Worker`` with its queue and a ``MemoryShipper``, put together as ``CloudWatchSink`` does."""

    def __init__(
        self,
        shipper: MemoryShipper,
        start: bool = True,
        **options: Any,
    ) -> None:
        self.config = replace(CONFIG, **options)
        self.problems: list[SinkProblem] = []
        self.shipper = shipper
        self.counters = Counters()
        wake = threading.Event()
        config = self.config
        self.queue = EventQueue(
            config.max_queue_size, config.max_queue_bytes, config.max_batch_size, wake, cost=shipper.batch_cost
        )
        self.reporter = reporter = Reporter(self.problems.append)
        self.backlog: Backlog = self.queue
        if config.spool_dir is not None:
            self.backlog = SpooledBacklog(config, self.queue, config.log_stream_template, shipper.batch_cost, reporter)
        self.worker = Worker(config, self.backlog, wake, self.counters, reporter, shipper, Timings())
        if start:
            self.worker.start()

    def log(self, count: int, prefix: str = "m") -> list[str]:
        """Queue ``count`` events now; their messages."""
        messages = [f"{prefix}{i}" for i in range(count)]
        now = int(time.time() * 1000)
        for message in messages:
            self.queue.put(now, message, len(message.encode()))
        return messages

    def flush(self, seconds: float) -> bool:
        return self.worker.flush(Deadline.within(seconds))

    def stop(self, seconds: float) -> DrainReport:
        return self.worker.shutdown(seconds)
