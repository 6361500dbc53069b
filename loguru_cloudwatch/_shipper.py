"""The seam between the worker and where events go: the ``Shipper`` protocol and the ``Outcome`` of a send.

The worker (``_worker``) decides when to send and when to try again; a shipper makes one attempt to
deliver a chunk of the queue's oldest events and says how it ended. ``CloudWatchShipper`` (``_cloudwatch``)
is the sink's; the tests' in-memory shipper (``tests/support/memory_shipper.py``) lets the worker's loop be
tested without I/O. (A spool is not a shipper: it sits behind the queue, ``_queue.Backlog``, because
records must reach the disk whether or not anything is being sent.) Nothing here imports boto3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ._queue import BatchCost, Event

# How an attempt ended, as the worker acts on it.
DELIVERED = "delivered"  # every event stored or rejected for good
RETRYABLE = "retryable"  # throttling, 5xx, network, a lost answer: back off, try again
REFUSED = "refused"  # credentials refused, or the destination cannot be created: wait long
NO_CLIENT = "no_client"  # no credentials or region yet: look again later


@dataclass
class Outcome:
    """What one ``send`` achieved; ``undelivered`` keeps the events to try again, in arrival order."""

    status: str
    undelivered: list[Event]
    #: Why the attempt stopped, for the worker's reports (None when delivered).
    reason: str = ""
    error: BaseException | None = None
    #: ThrottlingException or a similar quota error: the worker slows down.
    throttled: bool = False
    #: The server's retry-after hint, in seconds.
    retry_after: float | None = None
    #: For REFUSED and NO_CLIENT: seconds until trying again is worthwhile in normal operation.
    wait: float = 0.0


class Shipper(Protocol):
    """What the worker hands the queue's oldest events to: one attempt per ``send``.

    See the module's docstring for the shippers there are.
    """

    #: Seconds the last successful call took (the worker keeps that much in hand before a deadline).
    last_call_seconds: float
    #: What one batch may hold: the queue cuts chunks by it.
    batch_cost: BatchCost

    def connect(self, force: bool) -> Any:
        """Get ready to send (credentials, a client), looking again now if ``force``; None if not ready."""

    def send(self, chunk: list[Event], deadline: float | None) -> Outcome:
        """Try once to deliver ``chunk``; ``deadline`` (monotonic seconds) bounds the attempt's extra calls."""
