"""botocore hooks that record what clients actually sent, and attaching hooks to clients made later.

``PutLogEventsRecorder`` keeps the PutLogEvents bodies (per API call and per HTTP attempt),
``ApiCallRecorder`` every operation with the region and access key each attempt was signed with.
``attach_to_new_logs_clients`` reaches the client the sink builds in its worker thread.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import boto3
import botocore.session
from botocore.awsrequest import AWSPreparedRequest

# --------------------------------------------------------------------------- botocore plumbing


def emitter_of(target: Any) -> Any:
    """The event emitter of a boto3/botocore client or session."""
    if hasattr(target, "meta") and hasattr(target.meta, "events"):
        return target.meta.events  # client
    if isinstance(target, boto3.session.Session):
        return target.events
    if isinstance(target, botocore.session.Session):
        return target.get_component("event_emitter")
    raise TypeError(f"cannot attach to {target!r}")


def decode_body(body: Any) -> dict[str, Any]:
    """A JSON-protocol request body (bytes, str or file-like) as a dict; ``{}`` when empty."""
    if body is None:
        return {}
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    if not isinstance(body, str):  # file-like bodies are not used by the JSON protocol
        body = body.read().decode("utf-8")
    return json.loads(body) if body else {}


def _create_client_attaching(original: Any, attach: Callable[[Any], Any]) -> Any:
    """A ``Session.create_client`` that calls ``attach(client)`` for every ``logs`` client it makes."""

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        if client.meta.service_model.service_name == "logs":
            attach(client)
        return client

    return create_client


def attach_to_new_logs_clients(monkeypatch: Any, attach: Callable[[Any], Any]) -> None:
    """Call ``attach(client)`` for every ``logs`` client created from now on (undone by ``monkeypatch``).

    Hooks botocore's Session.create_client, so it works however the code under test builds its client
    (boto3.client, its own Session, ...).
    """
    original = botocore.session.Session.create_client
    monkeypatch.setattr(botocore.session.Session, "create_client", _create_client_attaching(original, attach))


@contextlib.contextmanager
def attaching_to_new_logs_clients(attach: Callable[[Any], Any]) -> Iterator[None]:
    """:func:`attach_to_new_logs_clients` for the ``with`` block, without pytest (the benchmarks)."""
    original = botocore.session.Session.create_client
    botocore.session.Session.create_client = _create_client_attaching(original, attach)  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]


# --------------------------------------------------------------------------- PutLogEvents


class PutLogEventsRecorder:
    """Records what a client actually sent with PutLogEvents.

    ``calls``: one decoded request body per API call (after validation and
    serialisation: exactly the wire params, ``logEvents`` included).
    ``attempts``: one decoded body per HTTP attempt, so botocore retries show up here.
    Attach to a client or session with :meth:`attach`; the ``put_recorder`` fixture
    attaches it to every logs client created during a test.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []

    def attach(self, target: Any) -> PutLogEventsRecorder:
        events = emitter_of(target)
        # unique_id: attaching twice to the same emitter must not double-record.
        events.register(
            "before-call.cloudwatch-logs.PutLogEvents",
            self._on_call,
            unique_id=f"put-recorder-call-{id(self)}",
        )
        events.register(
            "before-send.cloudwatch-logs.PutLogEvents",
            self._on_send,
            unique_id=f"put-recorder-send-{id(self)}",
        )
        return self

    def _on_call(self, params: dict[str, Any], **_: Any) -> None:
        body = copy.deepcopy(decode_body(params.get("body")))
        with self._lock:
            self.calls.append(body)

    def _on_send(self, request: AWSPreparedRequest, **_: Any) -> None:
        body = decode_body(request.body)
        with self._lock:
            self.attempts.append(body)

    # Convenience views -------------------------------------------------------
    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        """``logEvents`` of every call."""
        with self._lock:
            return [list(c.get("logEvents", [])) for c in self.calls]

    @property
    def event_counts(self) -> list[int]:
        return [len(b) for b in self.batches]

    @property
    def messages(self) -> list[str]:
        """Every message sent, in send order (duplicates from resends included)."""
        return [e["message"] for b in self.batches for e in b]

    @staticmethod
    def batch_size(batch: list[dict[str, Any]]) -> int:
        """PutLogEvents batch size as CloudWatch counts it (UTF-8 bytes + 26 per event)."""
        return sum(len(e["message"].encode("utf-8")) + 26 for e in batch)


# --------------------------------------------------------------------------- every logs API call


class HttpAttempt(NamedTuple):
    operation: str  # e.g. "PutLogEvents"
    region: str  # from the SigV4 credential scope
    access_key: str  # from the SigV4 credential scope
    time: float  # time.monotonic() when sent


class ApiCallRecorder:
    """Every CloudWatch Logs API call and HTTP attempt (any operation) of the clients it is attached to.

    ``calls``: ``(operation, decoded params)`` per API call; ``attempts``: one :class:`HttpAttempt` per HTTP
    attempt; ``clients``: the clients attached, in creation order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.attempts: list[HttpAttempt] = []
        self.clients: list[Any] = []

    def attach(self, target: Any) -> ApiCallRecorder:
        events = emitter_of(target)
        events.register("before-call.cloudwatch-logs", self._on_call, unique_id=f"api-recorder-call-{id(self)}")
        events.register("before-send.cloudwatch-logs", self._on_send, unique_id=f"api-recorder-send-{id(self)}")
        with self._lock:
            self.clients.append(target)
        return self

    def install(self, monkeypatch: Any) -> ApiCallRecorder:
        """Attach to every logs client created from now on."""
        attach_to_new_logs_clients(monkeypatch, self.attach)
        return self

    def _on_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        body = copy.deepcopy(decode_body(params.get("body")))
        with self._lock:
            self.calls.append((model.name, body))

    def _on_send(self, request: AWSPreparedRequest, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        authorization = request.headers.get("Authorization", b"")
        authorization = authorization.decode() if isinstance(authorization, bytes) else str(authorization)
        # "AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/logs/aws4_request, ..."
        scope = authorization.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
        region = scope[2] if len(scope) > 2 else ""
        attempt = HttpAttempt(target.rsplit(".", 1)[-1], region, scope[0] if len(scope) > 2 else "", time.monotonic())
        with self._lock:
            self.attempts.append(attempt)

    @property
    def operations(self) -> list[str]:
        """Operation names of every API call, in order."""
        with self._lock:
            return [name for name, _ in self.calls]

    def params(self, operation: str) -> list[dict[str, Any]]:
        with self._lock:
            return [params for name, params in self.calls if name == operation]

    def count(self, operation: str) -> int:
        return len(self.params(operation))


def put_times(api: ApiCallRecorder) -> list[float]:
    """When each PutLogEvents HTTP attempt was sent (``time.monotonic()``), in order."""
    return [attempt.time for attempt in api.attempts if attempt.operation == "PutLogEvents"]
