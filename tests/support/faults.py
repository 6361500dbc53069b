"""CloudWatch failures made up in this process, by a botocore hook on the client.

``FaultInjector`` answers scheduled PutLogEvents attempts with the error answers of ``FAULTS`` (the
catalogue the ``FaultProxy`` of ``tests/support/proxy.py`` answers with too; the proxy makes network-level
faults, and reaches child processes), a custom error, or a broken connection. ``Switch`` is a schedule
that faults until it is switched off.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from tests.support.proxy import FAULTS
from tests.support.recorders import emitter_of

# Actions that raise the exception botocore itself raises for a broken connection.
# The request never reaches moto, so nothing is stored.
CONNECTION_FAULTS = ("reset", "timeout")


class _RawBody:
    """Minimal stand-in for urllib3's response: AWSResponse only calls ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._data


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


FaultAction = str | tuple[Any, ...] | None


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
        emitter_of(target).register(
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


class Switch:
    """A fault schedule: ``action`` for every call while on, then (once off) everything goes through."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self._on = threading.Event()
        self._on.set()

    def off(self) -> None:
        self._on.clear()

    def __iter__(self) -> Iterator[Any]:
        while self._on.is_set():
            yield self.action
