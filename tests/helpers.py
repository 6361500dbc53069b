"""Plain helpers shared by the test-suite (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, Optional, TypeVar, Union

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from tests.proxy import FAULTS

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"

T = TypeVar("T")


# --------------------------------------------------------------------------- polling


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises AssertionError (with ``message`` and the last value seen) at the deadline.
    Exceptions raised by the predicate propagate: a broken predicate should fail loudly.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"wait_for timed out after {timeout:.2f}s: {message or predicate!r} (last value: {value!r})"
            )
        time.sleep(interval)


# --------------------------------------------------------------------------- clients / reading


def make_logs_client(
    endpoint_url: str,
    *,
    max_attempts: int | None = None,
    connect_timeout: float = 5,
    read_timeout: float = 10,
) -> Any:
    """A boto3 ``logs`` client pointed at ``endpoint_url`` (moto or a FaultProxy).

    ``max_attempts`` is the *total* number of attempts (1 = no botocore retries).
    """
    retries: dict[str, Any] = {"mode": "standard"}
    if max_attempts is not None:
        retries["total_max_attempts"] = max_attempts
    config = Config(
        retries=retries,  # type: ignore[arg-type]
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    # A fresh Session so no state (cached credentials, handlers) leaks between tests.
    return boto3.session.Session().client("logs", region_name=REGION, endpoint_url=endpoint_url, config=config)


def create_group_and_stream(client: Any, group: str, stream: str) -> None:
    """Create ``group`` and ``stream``, tolerating either already existing."""
    for call, kwargs in (
        (client.create_log_group, {"logGroupName": group}),
        (client.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
    ):
        try:
            call(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise


def read_events(client: Any, group: str, stream: str, *, missing_ok: bool = True) -> list[dict[str, Any]]:
    """Every event of ``stream`` oldest first, as ``{"timestamp", "message"}`` dicts.

    With ``missing_ok`` a missing group/stream reads as ``[]`` so this can be polled
    with :func:`wait_for` while the sink is still creating them.
    """
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "logStreamName": stream,
        "startFromHead": True,
    }
    token: str | None = None
    while True:
        try:
            page = client.get_log_events(**kwargs)
        except ClientError as exc:
            if missing_ok and exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        events.extend({"timestamp": e["timestamp"], "message": e["message"]} for e in page["events"])
        # The documented end condition: the forward token stops changing.
        next_token = page.get("nextForwardToken")
        if not next_token or next_token == token:
            return events
        token = next_token
        kwargs["nextToken"] = next_token


def read_messages(client: Any, group: str, stream: str, **kwargs: Any) -> list[str]:
    """Messages of ``stream`` oldest first."""
    return [e["message"] for e in read_events(client, group, stream, **kwargs)]


def read_json(client: Any, group: str, stream: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Messages of ``stream`` parsed as JSON, oldest first."""
    return [json.loads(m) for m in read_messages(client, group, stream, **kwargs)]


# --------------------------------------------------------------------------- subprocess


def run_python(code: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` from the repo root with the current env plus ``env`` (see ``run_interpreter``)."""
    return run_interpreter(["-c", code], timeout, {**os.environ, **(env or {})})


def run_interpreter(args: list[str], timeout: float, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` from the repo root with exactly ``env``, capturing its output as text.

    A timeout is a test failure carrying whatever the child printed.
    """
    try:
        return subprocess.run(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"python {args[0]} did not finish within {timeout}s\n"
            f"--- stdout ---\n{_as_text(exc.stdout)}\n--- stderr ---\n{_as_text(exc.stderr)}"
        ) from None


def _as_text(data: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even with text=True on some paths.
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


# --------------------------------------------------------------------------- botocore hooks


def _emitter_of(target: Any) -> Any:
    """The event emitter of a boto3/botocore client or session."""
    if hasattr(target, "meta") and hasattr(target.meta, "events"):
        return target.meta.events  # client
    if isinstance(target, boto3.session.Session):
        return target.events
    if isinstance(target, botocore.session.Session):
        return target.get_component("event_emitter")
    raise TypeError(f"cannot attach to {target!r}")


def _decode_body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    if not isinstance(body, str):  # file-like bodies are not used by the JSON protocol
        body = body.read().decode("utf-8")
    return json.loads(body) if body else {}


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
        events = _emitter_of(target)
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
        body = copy.deepcopy(_decode_body(params.get("body")))
        with self._lock:
            self.calls.append(body)

    def _on_send(self, request: AWSPreparedRequest, **_: Any) -> None:
        body = _decode_body(request.body)
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


class _RawBody:
    """Minimal stand-in for urllib3's response: AWSResponse only calls ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._data


# Actions that raise the exception botocore itself raises for a broken connection.
# The request never reaches moto, so nothing is stored.
CONNECTION_FAULTS = ("reset", "timeout")


def fabricated_error_response(url: str, status: int, error_type: str, message: str) -> AWSResponse:
    """An AWSResponse carrying a CloudWatch Logs JSON error."""
    body = json.dumps({"__type": error_type, "message": message}).encode("utf-8")
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "Content-Length": str(len(body)),
        "x-amzn-ErrorType": error_type,
        "x-amzn-RequestId": "00000000-0000-0000-0000-000000000000",
    }
    # The stubs say HTTPHeaders, but AWSResponse wraps any mapping in a HeadersDict.
    return AWSResponse(url, status, headers, _RawBody(body))  # type: ignore[arg-type]


FaultAction = Optional[Union[str, tuple[Any, ...]]]


class FaultInjector:
    """Answers scheduled PutLogEvents HTTP attempts with fabricated errors.

    The schedule is consumed one entry per HTTP *attempt* (the hook runs inside
    botocore's retry loop); past its end everything goes through. Entries:
    ``None``/``"ok"`` let the request through; a key of :data:`FAULTS` answers that
    error; ``"reset"``/``"timeout"`` raise ConnectionClosedError/ReadTimeoutError;
    ``("error", status, type, message)`` answers a custom error.
    ``actions`` records what every attempt got.
    """

    def __init__(self, schedule: Iterable[FaultAction] = ()) -> None:
        self._lock = threading.Lock()
        self._schedule = iter(schedule)
        self.actions: list[FaultAction] = []

    def set_schedule(self, schedule: Iterable[FaultAction]) -> None:
        with self._lock:
            self._schedule = iter(schedule)

    def attach(self, target: Any) -> FaultInjector:
        _emitter_of(target).register(
            "before-send.cloudwatch-logs.PutLogEvents",
            self._on_send,
            unique_id=f"fault-injector-{id(self)}",
        )
        return self

    @property
    def calls(self) -> int:
        """HTTP attempts seen so far."""
        with self._lock:
            return len(self.actions)

    def _on_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        with self._lock:
            action = next(self._schedule, "ok")
            self.actions.append(action)
        if action is None or action == "ok":
            return None
        if action == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        if action == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if isinstance(action, tuple) and action and action[0] == "error":
            _, status, error_type, message = action
            return fabricated_error_response(request.url, status, error_type, message)
        if isinstance(action, str) and action in FAULTS:
            return fabricated_error_response(request.url, *FAULTS[action])
        raise ValueError(f"unknown fault action {action!r}")


# --------------------------------------------------------------------------- every logs API call


def attach_to_new_logs_clients(monkeypatch: Any, attach: Callable[[Any], Any]) -> None:
    """Call ``attach(client)`` for every ``logs`` client created from now on (undone by ``monkeypatch``).

    Hooks botocore's Session.create_client, so it works however the code under test builds its client
    (boto3.client, its own Session, ...).
    """
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        if client.meta.service_model.service_name == "logs":
            attach(client)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)


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
        events = _emitter_of(target)
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
        body = copy.deepcopy(_decode_body(params.get("body")))
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


# --------------------------------------------------------------------------- on_error collector


class ProblemLog:
    """A thread-safe ``on_error`` callback keeping ``(time.monotonic(), kind, count, message)`` per problem.

    It keeps no reference to ``problem.exception``: an exception's traceback holds the worker's frames, and
    with them the batch being sent, which would distort memory measurements.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[float, str, int, str]] = []

    def __call__(self, problem: Any) -> None:
        with self._lock:
            self.items.append((time.monotonic(), problem.kind, problem.count, problem.message))

    def kinds(self) -> list[str]:
        with self._lock:
            return [kind for _, kind, _, _ in self.items]

    def messages(self, kind: str) -> list[str]:
        with self._lock:
            return [message for _, k, _, message in self.items if k == kind]

    def times(self, kind: str) -> list[float]:
        with self._lock:
            return [when for when, k, _, _ in self.items if k == kind]

    def count(self, kind: str) -> int:
        """How many reports of ``kind``."""
        return len(self.messages(kind))

    def records(self, kind: str) -> int:
        """The sum of the record counts of the reports of ``kind``."""
        with self._lock:
            return sum(count for _, k, count, _ in self.items if k == kind)


class Problems:
    """A thread-safe ``on_error`` callback keeping every problem with the time it arrived (the worker
    thread calls it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[float, Any]] = []

    def __call__(self, problem: Any) -> None:
        with self._lock:
            self.items.append((time.monotonic(), problem))

    def kinds(self) -> list[str]:
        with self._lock:
            return [problem.kind for _, problem in self.items]

    def all(self) -> list[Any]:
        with self._lock:
            return [problem for _, problem in self.items]

    def of(self, kind: str) -> list[Any]:
        with self._lock:
            return [problem for _, problem in self.items if problem.kind == kind]

    of_kind = of

    def times(self, kind: str) -> list[float]:
        with self._lock:
            return [when for when, problem in self.items if problem.kind == kind]

    def count(self, kind: str) -> int:
        """How many problems of this kind were reported."""
        return len(self.of(kind))

    def count_of(self, kind: str) -> int:
        """How many records the problems of this kind concerned (the sum of their ``count``)."""
        return sum(problem.count for problem in self.of(kind))


def log_many(prefix: str, count: int) -> list[str]:
    """Log ``prefix-0`` ... ``prefix-{count-1}`` at INFO through loguru; returns the messages."""
    from loguru import logger

    messages = [f"{prefix}-{index}" for index in range(count)]
    for message in messages:
        logger.info(message)
    return messages


#: loguru's README recipe for routing the standard ``logging`` module into loguru, as program text for
#: tests that run it in a subprocess (needs ``inspect``, ``logging`` and loguru's ``logger`` imported).
INTERCEPT_HANDLER_SOURCE = """\
class InterceptHandler(logging.Handler):
    def emit(self, record):
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())
"""

#: Ways a child program's main code can end, as (code appended to the program, expected exit status).
PROGRAM_ENDINGS = [
    pytest.param("", 0, id="end-of-script"),
    pytest.param("sys.exit(3)", 3, id="sys-exit"),
    pytest.param("raise RuntimeError('unhandled at the end')", 1, id="unhandled-exception"),
]

# --------------------------------------------------------------------------- sinks


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


# --------------------------------------------------------------------------- hostile values


class Unprintable:
    """Neither str() nor repr() works on it."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Typeless:
    """Even isinstance() raises on it."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class")


class Falsy:
    """An ``extra`` that breaks every use: truth value, iteration, item access."""

    def __bool__(self) -> bool:
        raise RuntimeError("no bool")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iter")

    def items(self) -> Any:
        raise RuntimeError("no items")
