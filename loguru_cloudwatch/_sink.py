"""The public sink: what loguru calls on the caller's thread, and its lifecycle."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Generator, Sequence
from typing import Any, Callable

from . import _config as cfg
from ._document import RecordEncoder
from ._limits import MAX_BATCH_EVENTS
from ._queue import EventQueue
from ._report import Reporter, SinkProblem, write_stderr
from ._retry import DEFAULT_TIMINGS, Deadline, Timings
from ._shipper import CloudWatchShipper
from ._signals import drain_on_sigterm_in_child
from ._stats import Counters, SinkStats
from ._worker import Worker

_MIB = 1024 * 1024


async def _coroutine_template() -> None:  # pragma: no cover - only its code flags are used
    """Lends its code object to ``_CompleteMethod`` (see there)."""


class _Completion:
    """What ``sink.complete()`` returns: awaiting it runs ``force_flush`` in an executor."""

    __slots__ = ("_sink",)

    def __init__(self, sink: CloudWatchSink) -> None:
        self._sink = sink

    def __await__(self) -> Generator[Any, None, None]:
        loop = asyncio.get_running_loop()
        yield from loop.run_in_executor(None, self._sink.force_flush).__await__()


class _CompleteMethod:
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

    def __init__(self, sink: CloudWatchSink) -> None:
        self._sink = sink

    def __call__(self) -> Awaitable[None]:
        return _Completion(self._sink)


if sys.version_info < (3, 10):  # pragma: no cover
    # On 3.9 ``complete`` must be a real coroutine function for loguru to await it, so a synchronous
    # ``logger.complete()`` creates and drops one: hide exactly that warning, nothing else.
    warnings.filterwarnings(
        "ignore", message=r"coroutine 'CloudWatchSink\.complete' was never awaited", category=RuntimeWarning
    )

_live_sinks: weakref.WeakSet[CloudWatchSink] = weakref.WeakSet()


def live_sinks() -> list[CloudWatchSink]:
    """The sinks of this process not yet stopped (a sink being stopped is still one)."""
    return list(_live_sinks)


def _reinit_sinks_in_child() -> None:
    for sink in list(_live_sinks):
        sink._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_sinks_in_child)


def force_flush_all(timeout: float | None = None) -> bool:
    """Deliver what every ``CloudWatchSink`` of this process holds, within ``timeout`` seconds in all.

    For code that has no reference to its sink, e.g. one added by ``configure_from_env()`` in an AWS
    Lambda handler, which must flush before returning. ``timeout`` defaults to each sink's
    ``shutdown_timeout``. Returns True when every sink's ``force_flush`` did.
    """
    # Stopped sinks are done: what they could not deliver was abandoned and reported by stop().
    sinks = [sink for sink in list(_live_sinks) if not sink._stopped]
    start = time.monotonic()
    # Ask every worker first, so that they all send at once, then wait within one overall deadline.
    requests = []
    for sink in sinks:
        seconds = sink._config.shutdown_timeout if timeout is None else max(0.0, timeout)
        requests.append(sink._worker.begin_flush(Deadline(start + seconds, seconds)))
    delivered = True
    for sink, request in zip(sinks, requests):
        delivered = sink._worker.finish_flush(request) and delivered
    return delivered


def stop_every_sink(before: Callable[[], Any], slack: float) -> None:
    """Stop every sink of this process at once, after ``before()``; wait at most the largest
    ``shutdown_timeout`` + ``slack`` in all.

    Used by the SIGTERM drain: ``before`` is loguru's ``logger.complete`` (records held for ``enqueue=True``
    handlers reach the sinks first), bounded by the same time. Sinks another thread is stopping are
    included: their ``stop()`` waits for that drain instead of letting the signal cut it short.
    """
    sinks = list(_live_sinks)
    timeout = max((sink._config.shutdown_timeout for sink in sinks), default=0.0)
    deadline = time.monotonic() + timeout + slack  # one deadline for it all
    completing = threading.Thread(target=before, name="loguru-cloudwatch-drain", daemon=True)
    completing.start()
    completing.join(timeout)
    threads = [threading.Thread(target=sink.stop, daemon=True) for sink in sinks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _stop_weakly(reference: weakref.ref[CloudWatchSink]) -> None:
    sink = reference()
    if sink is not None:
        sink.stop()


def _stop_when_multiprocessing_child_exits(sink: CloudWatchSink) -> None:
    # multiprocessing children leave through os._exit: no atexit, no loguru remove(), no stop(). They do
    # run multiprocessing's own finalizers first, so the sink registers one there.
    from multiprocessing import util

    util.Finalize(None, _stop_weakly, args=(weakref.ref(sink),), exitpriority=10)


def _in_multiprocessing_child(sink: CloudWatchSink) -> None:
    """A multiprocessing child (fork: from its after-fork callbacks; spawn: at construction)."""
    _stop_when_multiprocessing_child_exits(sink)
    # Pool.terminate() (``with Pool() as pool:``) and Process.terminate() end children with SIGTERM.
    drain_on_sigterm_in_child()


class CloudWatchSink:
    """A loguru sink that ships records to AWS CloudWatch Logs in batches, from a background thread.

    Use it with ``logger.add(CloudWatchSink("my-group"), level="INFO")``. ``write()`` only encodes the
    record and queues it; a daemon worker sends batches with PutLogEvents. Constructing the sink makes
    no network call.

    Args:
        log_group: The log group name (1-512 characters from ``[.-_/#A-Za-z0-9]``).
        log_stream: Stream name template; ``{hostname}``, ``{pid}``, ``{program}`` and ``{date}`` (UTC,
            YYYY-MM-DD) are filled in at start and again in a forked child. ``:`` and ``*`` become ``_``.
            Default ``"{hostname}/{pid}"``.
        serialize: Send one JSON document per record (default True); False sends the text formatted by
            the handler's ``format``, without its trailing newline.
        extra_keys: Keys of ``record["extra"]`` added to the JSON document: None (default) for all, a
            sequence for only those (missing ones are omitted).
        flush_interval: Seconds between timed flushes (default 2.0): a batch that is not full is sent
            once nothing has been sent for this long (full batches go at once).
        max_batch_size: Queued records that trigger an immediate flush, and the most records per
            PutLogEvents call, 1 to 10,000 (default 10,000).
        max_queue_size: Records held in memory at most (default 100,000); beyond it the oldest are
            dropped and counted in ``stats.dropped``.
        max_queue_bytes: The same bound in bytes (default 64 MiB), counting each record's encoded size
            plus a fixed per-record overhead.
        max_retries: In normal operation, retries of a failed PutLogEvents call (default 3) before the
            records go back to the front of the queue for a later flush. ``force_flush`` and ``stop`` keep
            retrying until their deadline instead.
        retry_delay: Base delay in seconds of the exponential backoff with full jitter (default 1.0).
        create_log_group: Create the log group when CloudWatch says it is missing (default True).
        create_log_stream: Create the log stream when CloudWatch says it is missing (default True).
        retention_days: Retention applied when this sink creates the group (default None: never expire).
        log_group_class: ``"STANDARD"`` or ``"INFREQUENT_ACCESS"`` for a group this sink creates.
        kms_key_id: KMS key ARN for a group this sink creates.
        tags: Tags for a group this sink creates.
        client: A ready boto3 ``logs`` client; when given it wins over every other connection option.
        session: A ``boto3.Session`` to build the client from (default: a new default session).
        region_name: The region; default: ``AWS_REGION``, then botocore's own sources.
        endpoint_url: Another endpoint, e.g. a local test server.
        boto_config: A ``botocore.config.Config`` merged over the sink's (single attempt, 5 s connect and
            15 s read timeouts).
        shutdown_timeout: Seconds ``stop()`` may spend delivering what is left (default 10.0), trying again
            after each failure until then; also the default timeout of ``force_flush``.
        on_error: Called with a ``SinkProblem`` for each problem the sink meets, on the worker thread;
            default: a short line on stderr, at most one per kind every 30 seconds.
    """

    def __init__(
        self,
        log_group: str,
        log_stream: str = cfg.DEFAULT_STREAM_TEMPLATE,
        *,
        serialize: bool = True,
        extra_keys: Sequence[str] | None = None,
        flush_interval: float = 2.0,
        max_batch_size: int = MAX_BATCH_EVENTS,
        max_queue_size: int = 100_000,
        max_queue_bytes: int = 64 * _MIB,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        create_log_group: bool = True,
        create_log_stream: bool = True,
        retention_days: int | None = None,
        log_group_class: str | None = None,
        kms_key_id: str | None = None,
        tags: dict[str, str] | None = None,
        client: Any = None,
        session: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        boto_config: Any = None,
        shutdown_timeout: float = 10.0,
        on_error: Callable[[SinkProblem], Any] | None = None,
    ) -> None:
        self._config = cfg.SinkConfig(
            log_group=cfg.check_log_group(log_group),
            log_stream_template=cfg.check_stream_template(log_stream),
            serialize=cfg.check_bool("serialize", serialize),
            extra_keys=cfg.check_extra_keys(extra_keys),
            flush_interval=cfg.check_number(
                "flush_interval", flush_interval, minimum=0, maximum=86400, strict_min=True
            ),
            max_batch_size=cfg.check_int("max_batch_size", max_batch_size, minimum=1, maximum=MAX_BATCH_EVENTS),
            max_queue_size=cfg.check_int("max_queue_size", max_queue_size, minimum=1, maximum=10**9),
            max_queue_bytes=cfg.check_int("max_queue_bytes", max_queue_bytes, minimum=2 * _MIB, maximum=2**40),
            max_retries=cfg.check_int("max_retries", max_retries, minimum=0, maximum=100),
            retry_delay=cfg.check_number("retry_delay", retry_delay, minimum=0, maximum=3600, strict_min=False),
            create_log_group=cfg.check_bool("create_log_group", create_log_group),
            create_log_stream=cfg.check_bool("create_log_stream", create_log_stream),
            retention_days=cfg.check_retention(retention_days),
            log_group_class=cfg.check_group_class(log_group_class),
            kms_key_id=cfg.check_optional_str("kms_key_id", kms_key_id),
            tags=cfg.check_tags(tags),
            client=cfg.check_client(client),
            session=cfg.check_session(session),
            region_name=cfg.check_optional_str("region_name", region_name),
            endpoint_url=cfg.check_optional_str("endpoint_url", endpoint_url),
            boto_config=cfg.check_boto_config(boto_config),
            shutdown_timeout=cfg.check_number(
                "shutdown_timeout", shutdown_timeout, minimum=0, maximum=3600, strict_min=False
            ),
            on_error=cfg.check_callable("on_error", on_error),
        )
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._stop_done = threading.Event()
        self._start()
        _live_sinks.add(self)
        import multiprocessing
        from multiprocessing import util as multiprocessing_util

        # A multiprocessing "fork" child clears the finalizer registry AFTER the os.register_at_fork
        # hooks ran (Process._bootstrap -> _after_fork), dropping the Finalize registered there; its
        # after-fork callbacks run after that clear, so register the stop hook there too.
        multiprocessing_util.register_after_fork(self, _in_multiprocessing_child)
        if multiprocessing.parent_process() is not None:
            _in_multiprocessing_child(self)

    def _start(self) -> None:
        """Create the per-process state: stream name, encoder, queue, counters, worker (also after a fork)."""
        config = self._config
        self.log_stream: str = cfg.render_stream_name(config.log_stream_template)
        """The rendered log stream name of this process."""
        self._encoder = RecordEncoder(config.serialize, config.extra_keys)  # counts this process's truncations
        self._counters = Counters()
        self._reporter = Reporter(config.on_error)
        wake = threading.Event()
        self._queue = EventQueue(config.max_queue_size, config.max_queue_bytes, config.max_batch_size, wake)
        timings = Timings(**vars(DEFAULT_TIMINGS))  # this sink's, fixed at its start
        shipper = CloudWatchShipper(config, self.log_stream, self._counters, self._reporter, timings)
        self._worker = Worker(config, self._queue, wake, self._counters, self._reporter, shipper, timings)
        self._worker_ident: int | None = None
        if not self._stopped:
            self._worker.start()
            self._worker_ident = self._worker.ident

    def _after_fork_in_child(self) -> None:
        # The parent's queued records stay the parent's (sending them here would duplicate them), its
        # worker thread does not exist here, and its locks may be held: start over.
        self._stop_lock = threading.Lock()
        self._stop_done = threading.Event()
        if self._stopped:
            self._stop_done.set()
        self._start()
        if not self._stopped:
            _stop_when_multiprocessing_child_exits(self)

    @property
    def log_group(self) -> str:
        """The log group name."""
        return self._config.log_group

    def __repr__(self) -> str:
        return f"CloudWatchSink(log_group={self._config.log_group!r}, log_stream={self.log_stream!r})"

    def write(self, message: Any) -> None:
        """Encode one loguru message and queue it; called by loguru on the logging thread.

        Never blocks, never does network I/O and never raises: a record that cannot be encoded is
        counted in ``stats.rejected`` and reported.
        """
        try:
            record = message.record
            if record["thread"].id == self._worker_ident:
                return  # the worker's own records (e.g. botocore's, routed into loguru): no feedback loop
            if self._stopped:
                self._counters.ignored += 1
                return
            self._queue.put(*self._encoder.encode(message))
        except Exception as error:
            self._counters.write_rejected += 1
            self._reporter.report(
                SinkProblem("unencodable", f"a record could not be encoded and was dropped: {error!r}", 1, error)
            )

    def force_flush(self, timeout: float | None = None) -> bool:
        """Deliver everything written so far, waiting at most ``timeout`` seconds.

        ``timeout`` defaults to ``shutdown_timeout``. A failed attempt is tried again (exponential backoff
        with full jitter, cut to the time left) until the timeout, whatever ``max_retries`` says. Returns
        True when every record accepted before the call was stored by CloudWatch or definitively rejected
        by it; False on timeout, when records were dropped meanwhile, or when called from the sink's own
        worker thread. Records it could not deliver in time go as soon as CloudWatch allows.
        """
        if timeout is None:
            timeout = self._config.shutdown_timeout
        return self._worker.flush(Deadline.within(max(0.0, float(timeout))))

    if sys.version_info >= (3, 10):

        @property
        def complete(self) -> Callable[[], Awaitable[None]]:
            """``await sink.complete()`` (or ``await logger.complete()``) delivers everything written so far.

            A synchronous ``logger.complete()`` does not flush the sink and gives no warning.
            """
            return _CompleteMethod(self)

    else:  # pragma: no cover - Python 3.9's inspect only recognises real coroutine functions

        async def complete(self) -> None:
            """``await sink.complete()`` (or ``await logger.complete()``) delivers everything written so far.

            A synchronous ``logger.complete()`` does not flush the sink; the "never awaited" warning it
            would cause is filtered out (see below).
            """
            await _Completion(self)

    def stop(self) -> None:
        """Deliver what is left within ``shutdown_timeout`` seconds, then stop the worker.

        A failed attempt is tried again (exponential backoff with full jitter, cut to the time left) until
        everything is sent or the time is up. loguru calls it on ``logger.remove()`` and at exit.
        Idempotent: a call made while another thread is stopping the sink waits (at most
        ``shutdown_timeout`` + 1 s) for that drain to end. Records that could not be delivered are counted in
        ``stats.abandoned`` and stated on stderr, with how long it tried and why it stopped; records
        written afterwards are ignored and counted in ``stats.ignored``.
        """
        with self._stop_lock:
            stopping = self._stopped
            self._stopped = True
        if stopping:
            # Another thread is stopping the sink (the SIGTERM drain while a multiprocessing finalizer or
            # loguru's exit hook runs, say): this caller may be about to end the process, which would cut
            # that drain short.
            if threading.get_ident() != self._worker_ident:
                self._stop_done.wait(self._config.shutdown_timeout + 1.0)
            return
        try:
            self._drain_at_stop()
        finally:
            self._stop_done.set()
            _live_sinks.discard(self)

    def _drain_at_stop(self) -> None:
        timeout = self._config.shutdown_timeout
        drain = self._worker.shutdown(timeout)
        left = self._queue.pending
        if left:
            self._counters.abandoned = left
            if drain.finished:
                why = f"stop() tried for {drain.tried:.1f}s of shutdown_timeout={timeout:g}s"
                if drain.last_problem:
                    why += f"; the last attempt: {drain.last_problem}"
            else:
                why = (
                    f"shutdown_timeout={timeout:g}s ran out while the sink's worker was still busy (a call to "
                    "CloudWatch not answered yet, or a credential lookup)"
                )
                if drain.last_problem:
                    why += f" (before it: {drain.last_problem})"
            message = (
                f"{left} record{'' if left == 1 else 's'} could not be delivered to log group "
                f"{self._config.log_group!r} stream {self.log_stream!r}: {why}"
            )
            write_stderr(message)
            if self._config.on_error is not None:
                self._reporter.report(SinkProblem("undelivered_at_stop", message, left))

    @property
    def stats(self) -> SinkStats:
        """A frozen snapshot of the sink's counters (see ``SinkStats``)."""
        counters = self._counters
        return SinkStats(
            queued=self._queue.pending,
            sent=counters.sent,
            batches=counters.batches,
            dropped=self._queue.dropped,
            rejected=counters.rejected + counters.write_rejected,
            retries=counters.retries,
            failed=counters.failed,
            last_error=self._reporter.last_error,
            ignored=counters.ignored,
            truncated=self._encoder.truncated,
            resent=counters.resent,
            abandoned=counters.abandoned,
        )
