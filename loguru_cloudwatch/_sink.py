"""The public sink: what loguru calls on the caller's thread, and its lifecycle."""

from __future__ import annotations

import os
import textwrap
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from . import _destinations
from ._complete import CompleteMethod
from ._destinations import Destination, destination_of
from ._encoder import encoder_for
from ._options import DEFAULT, build_config, options_doc
from ._queue import Backlog, EventQueue
from ._report import DUPLICATE_SINK, UNDELIVERED_AT_STOP, UNENCODABLE, Reporter, SinkProblem, write_stderr
from ._retry import Deadline, Timings
from ._signals import drain_on_sigterm_in_child
from ._stats import Counters, SinkStats
from ._stream_name import render_stream_name
from ._worker import SHIPPING_THREADS, Worker

_live_sinks: weakref.WeakSet[CloudWatchSink] = weakref.WeakSet()


def live_sinks() -> list[CloudWatchSink]:
    """The sinks of this process not yet stopped (a sink being stopped is still one)."""
    return list(_live_sinks)


def is_stopped(sink: CloudWatchSink) -> bool:
    """Whether ``stop()`` was called on ``sink`` (loguru calls it when its handler is removed)."""
    return sink._stopped


def _reinit_sinks_in_child() -> None:
    _destinations.forget_all()
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
    for sink, request in zip(sinks, requests, strict=True):
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
    no network call. A bad option raises ``ValueError`` or ``TypeError`` naming the option, the value
    and what is allowed.

    The options, their defaults and their meaning (``Args:`` below) come from ``_options.OPTIONS``.
    """

    def __init__(
        self,
        log_group: str,
        log_stream: str = DEFAULT.log_stream,
        *,
        serialize: bool = DEFAULT.serialize,
        extra_keys: Sequence[str] | None = DEFAULT.extra_keys,
        traceback_values: bool = DEFAULT.traceback_values,
        flush_interval: float = DEFAULT.flush_interval,
        max_batch_size: int = DEFAULT.max_batch_size,
        max_queue_size: int = DEFAULT.max_queue_size,
        max_queue_bytes: int = DEFAULT.max_queue_bytes,
        spool_dir: str | os.PathLike[str] | None = DEFAULT.spool_dir,
        max_spool_bytes: int = DEFAULT.max_spool_bytes,
        max_retries: int = DEFAULT.max_retries,
        retry_delay: float = DEFAULT.retry_delay,
        create_log_group: bool = DEFAULT.create_log_group,
        create_log_stream: bool = DEFAULT.create_log_stream,
        retention_days: int | None = DEFAULT.retention_days,
        log_group_class: str | None = DEFAULT.log_group_class,
        kms_key_id: str | None = DEFAULT.kms_key_id,
        tags: dict[str, str] | None = DEFAULT.tags,
        client: Any = DEFAULT.client,
        session: Any = DEFAULT.session,
        region_name: str | None = DEFAULT.region_name,
        endpoint_url: str | None = DEFAULT.endpoint_url,
        boto_config: Any = DEFAULT.boto_config,
        shutdown_timeout: float = DEFAULT.shutdown_timeout,
        on_error: Callable[[SinkProblem], Any] | None = DEFAULT.on_error,
        _timings: Timings | None = None,
    ) -> None:
        # Every parameter but ``self`` and ``_timings`` is an option of the table (a test checks it).
        arguments = dict(locals())
        del arguments["self"], arguments["_timings"]
        self._config = build_config(arguments)
        #: The internal pacing (tests shorten it); fixed for this sink's life, forked children included.
        self._timings = Timings() if _timings is None else _timings
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
        self.log_stream: str = render_stream_name(config.log_stream_template)
        """The rendered log stream name of this process."""
        # The encoder counts this process's truncations.
        self._encoder = encoder_for(config.serialize, config.extra_keys, config.traceback_values)
        self._counters = Counters()
        self._reporter = Reporter(config.on_error)
        wake = threading.Event()
        # boto3 is imported here, when the first sink starts, not with the package (~200 ms a program
        # without a sink need not pay); never later either: at interpreter shutdown, where the final
        # drain runs, importing it would fail.
        from ._cloudwatch import CloudWatchShipper

        shipper = CloudWatchShipper(config, self.log_stream, self._counters, self._reporter, self._timings)
        self._queue = EventQueue(
            config.max_queue_size, config.max_queue_bytes, config.max_batch_size, wake, cost=shipper.batch_cost
        )
        self._backlog: Backlog = self._queue
        if config.spool_dir is not None:
            from ._spool_adoption import spooled_backlog  # sqlite3 only for a sink that spools

            self._backlog = spooled_backlog(
                config, self._queue, self.log_stream, self._reporter, self._timings, CloudWatchShipper
            )
        self._worker = Worker(config, self._backlog, wake, self._counters, self._reporter, shipper, self._timings)
        self._worker.on_first_chunk = self._claim_destination
        self._destination: Destination | None = None
        self._worker_ident: int | None = None
        if not self._stopped:
            self._worker.start()
            self._worker_ident = self._worker.ident

    def _claim_destination(self) -> None:
        # On the worker thread, when this sink's first records are sent: two sinks that both ship records
        # to one stream are duplicates, a sink never used (its logger.add() failed, say) is none.
        self._destination = destination = destination_of(self._config, self.log_stream)
        if _destinations.claim(destination, self):
            self._reporter.report(SinkProblem(DUPLICATE_SINK, destination.duplicate_message()))
        if self._stopped:  # stop() began meanwhile and may not have seen the destination
            _destinations.release(destination, self)

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
            if record["thread"].id in SHIPPING_THREADS:
                return  # a worker's own records (e.g. botocore's, routed into loguru): no feedback loop
            if self._stopped:
                self._counters.ignored += 1
                return
            self._queue.put(*self._encoder.encode(message))
        except Exception as error:
            self._counters.write_rejected += 1
            self._reporter.report(
                SinkProblem(UNENCODABLE, f"a record could not be encoded and was dropped: {error!r}", 1, error)
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

    @property
    def complete(self) -> Callable[[], Awaitable[bool]]:
        """``await sink.complete()`` delivers everything written so far and returns what ``force_flush()``
        would (``await logger.complete()`` flushes it too).

        A synchronous ``logger.complete()`` does not flush the sink and gives no warning.
        """
        return CompleteMethod(self.force_flush)

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
        if self._destination is not None:
            _destinations.release(self._destination, self)  # it takes no more records
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
        kept = self._backlog.on_disk
        if kept:
            write_stderr(
                f"{kept} record{'' if kept == 1 else 's'} kept in the spool {self._config.spool_dir} for a later "
                f"start (stop() tried for {drain.tried:.1f}s of shutdown_timeout={timeout:g}s)"
            )
        left = self._backlog.pending - kept
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
                self._reporter.report(SinkProblem(UNDELIVERED_AT_STOP, message, left))

    @property
    def stats(self) -> SinkStats:
        """A frozen snapshot of the sink's counters (see ``SinkStats``)."""
        counters = self._counters.plus(self._backlog.adopted)  # adopted spool files count apart
        return SinkStats(
            queued=self._backlog.pending - self._backlog.on_disk,
            sent=counters.sent,
            batches=counters.batches,
            dropped=self._backlog.dropped,
            rejected=counters.rejected + counters.write_rejected,
            retries=counters.retries,
            failed=counters.failed,
            last_error=self._reporter.last_error,
            ignored=counters.ignored,
            truncated=self._encoder.truncated,
            resent=counters.resent,
            abandoned=counters.abandoned,
            spooled=self._backlog.on_disk,
        )


CloudWatchSink.__doc__ = f"{CloudWatchSink.__doc__}\n{textwrap.indent(options_doc(), '    ')}\n"
