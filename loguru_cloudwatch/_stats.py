"""The sink's counters and the frozen snapshot users read as ``sink.stats``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SinkStats:
    """A snapshot of what a ``CloudWatchSink`` has done since it was created (or since a fork).

    All counts are numbers of records (log events) unless the name says calls.
    """

    #: Records waiting in memory now (including a batch being sent from memory).
    queued: int
    #: Records CloudWatch stored.
    sent: int
    #: Successful PutLogEvents calls.
    batches: int
    #: Records dropped, oldest first: the queue was full (``max_queue_size`` / ``max_queue_bytes``), the
    #: spool was full (``max_spool_bytes``), or a damaged spool chunk could not be read.
    dropped: int
    #: Records CloudWatch refused (too old, too new, invalid) or that could not be sent at all.
    rejected: int
    #: PutLogEvents calls repeated after a retryable failure: within a round of ``max_retries``, and every
    #: attempt of a ``force_flush`` or ``stop()`` after one (the first call of a new round is not one).
    retries: int
    #: PutLogEvents calls that failed (each attempt counts). The ResourceNotFound answer to the first call to
    #: a stream that does not exist yet is not a failure when the sink then creates it.
    failed: int
    #: The most recent problem, as reported to ``on_error`` / stderr; None if there was none.
    last_error: str | None
    #: Records written after ``stop()``, ignored.
    ignored: int = 0
    #: Records cut to fit CloudWatch's 1 MiB event limit (they were still sent).
    truncated: int = 0
    #: Records sent again after an answer was lost (CloudWatch may hold them twice).
    resent: int = 0
    #: Records still undelivered when ``stop()`` ran out of time (a batch whose call was still unanswered
    #: then included: if that call succeeds afterwards, its records are in ``sent`` too).
    abandoned: int = 0
    #: Records waiting in the spool on disk now (including a batch being sent from there); with
    #: ``spool_dir`` only. At ``stop()``, what it could not deliver stays there for a later start.
    spooled: int = 0


class Counters:
    """Mutable counters behind ``SinkStats``; each has exactly one writer, so no lock is needed.

    - ``sent``, ``batches``, ``rejected``, ``failed``, ``resent``: the shipper (``CloudWatchShipper``), on
      the worker thread;
    - ``retries``: the worker (``Worker``), on the worker thread;
    - ``write_rejected`` (records ``write()`` could not encode) and ``ignored`` (written after ``stop()``):
      ``CloudWatchSink.write()``, which loguru serializes with its handler lock;
    - ``abandoned``: ``CloudWatchSink.stop()``, once.

    The adoption of dead processes' spool files (``_spool_adoption``) runs workers of its own, each writing
    ``Counters`` of its own; ``CloudWatchSink.stats`` adds them (``plus``).

    The other statistics have their own single owner: ``dropped`` and ``queued`` the backlog (``EventQueue``
    under its lock, or the spool's), ``truncated`` the encoder, ``last_error`` the ``Reporter``.
    ``CloudWatchSink.stats`` reads them all into one ``SinkStats``; ``stats.rejected`` is ``rejected +
    write_rejected``.
    """

    def __init__(self) -> None:
        self.write_rejected = 0
        self.sent = 0
        self.batches = 0
        self.rejected = 0
        self.retries = 0
        self.failed = 0
        self.ignored = 0
        self.resent = 0
        self.abandoned = 0

    def add(self, other: Counters) -> None:
        """Add ``other``'s counts to these (a total being built; never a live writer's counters)."""
        for name, count in vars(other).items():  # every attribute is a count
            setattr(self, name, getattr(self, name) + count)

    def plus(self, other: Counters | None) -> Counters:
        """A new ``Counters``: these counts plus ``other``'s (None: these alone)."""
        total = Counters()
        total.add(self)
        if other is not None:
            total.add(other)
        return total
