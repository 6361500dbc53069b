"""A deterministic fault-injecting HTTP proxy for loopback tests.

``FaultProxy(upstream_url)`` listens on 127.0.0.1 (free port) and forwards every
request to ``upstream_url`` (moto). Each PutLogEvents request (``X-Amz-Target:
Logs_20140328.PutLogEvents``) consumes one action from the schedule; when the
schedule is exhausted, requests are forwarded. Other operations are always forwarded.

Actions:
    "ok"                    forward
    "throttle"              answer 400 ThrottlingException (JSON), not forwarded
    "500" / "503"           answer that status with a JSON error, not forwarded
    any other key of FAULTS ("invalid", "notfound", "denied", ...): that error
    "reset"                 abortive close (RST, SO_LINGER 0) without answering
    ("delay", seconds)      sleep, then forward
    ("delay_answer", s)     forward (events stored), sleep, then answer
    "drop_answer"           forward (events stored), then close without answering
    "hang"                  never answer; released (connection aborted) by close()
    ("retry_after", s)      answer 400 ThrottlingException with ``x-amz-retry-after: <s in ms>``

Account-wide quotas: ``proxy.limit("PutLogEvents", per_second=4)`` (or ``"CreateLogStream"``, or any
other operation) puts a token bucket in front of that operation, shared by every client of the proxy —
threads and processes alike, as CloudWatch's quotas are per account and region. A request beyond it is
answered 400 ThrottlingException without reaching moto (a scheduled PutLogEvents action runs first; the
bucket applies to what the schedule lets through). ``ops`` lists an ``Op`` for every request of any
operation: its outcome is "accepted" (moto answered 200), moto's error type (e.g.
"ResourceNotFoundException"), "limited" (the bucket refused it), or the scheduled PutLogEvents action.

Unlike the in-process ``FaultInjector`` this works for subprocesses too, and it
exercises real sockets: urllib3 pooling, timeouts and connection errors.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

#: The X-Amz-Target prefix of every CloudWatch Logs operation.
TARGET_PREFIX = "Logs_20140328."
PUT_LOG_EVENTS_TARGET = TARGET_PREFIX + "PutLogEvents"

# name -> (HTTP status, __type, message): bodies shaped like real CloudWatch Logs errors.
FAULTS: dict[str, tuple[int, str, str]] = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "500": (500, "InternalFailure", "An internal error occurred."),
    "503": (503, "ServiceUnavailableException", "The service is unavailable. Please try again."),
    "invalid": (400, "InvalidParameterException", "Log events must be in chronological order."),
    "notfound": (400, "ResourceNotFoundException", "The specified log stream does not exist."),
    "denied": (400, "AccessDeniedException", "User is not authorized to perform: logs:PutLogEvents"),
    "unrecognized": (400, "UnrecognizedClientException", "The security token included in the request is invalid."),
    "expired": (400, "ExpiredTokenException", "The security token included in the request is expired"),
    "limit": (400, "LimitExceededException", "Resource limit exceeded."),
}


Action = str | tuple[Any, ...]


class Op(NamedTuple):
    """One request the proxy answered, of any operation."""

    operation: str  # e.g. "PutLogEvents", "CreateLogStream"
    outcome: str  # "accepted", moto's error type, "limited", or the scheduled action's name
    stream: str | None  # the request's logStreamName
    events: int  # PutLogEvents: the number of events (else 0)
    at: float  # time.monotonic() when the answer was decided


# Hop-by-hop headers are per connection and must not be relayed (RFC 9110 7.6.1);
# Content-Length is recomputed from the body actually relayed.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)

_UPSTREAM_TIMEOUT = 30.0


class RateLimit:
    """A token bucket: ``per_second`` tokens a second, at most ``burst`` saved (default: one second's worth).

    ``closed_for`` seconds from creation no token is given at all (a throttling burst of known length).
    """

    def __init__(self, per_second: float, burst: float | None = None, closed_for: float = 0.0) -> None:
        if per_second < 0 or (burst is not None and burst < 1):
            raise ValueError(f"per_second must be >= 0 and burst >= 1, got {per_second!r}, {burst!r}")
        self.per_second = float(per_second)
        self.burst = float(burst if burst is not None else max(1.0, per_second))
        self._lock = threading.Lock()
        now = time.monotonic()
        self._opens_at = now + closed_for
        self._tokens = self.burst
        self._updated = max(now, self._opens_at)
        self.granted = 0
        self.refused = 0

    def take(self) -> bool:
        """One token if there is one (the request may go), else False (answer ThrottlingException)."""
        with self._lock:
            now = time.monotonic()
            if now < self._opens_at:
                self.refused += 1
                return False
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self.granted += 1
                return True
            self.refused += 1
            return False


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many processes may connect at the same instant (a fleet starting or stopping together): a short
    # listen backlog would make the kernel drop their SYNs and delay them by whole seconds.
    request_queue_size = 256
    proxy: FaultProxy

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self._lock = threading.Lock()
        self._aborted: set[socket.socket] = set()
        self.handlers: dict[threading.Thread, socket.socket] = {}
        super().__init__(("127.0.0.1", 0), _Handler)

    def mark_abort(self, sock: socket.socket) -> None:
        # SO_LINGER {on, 0}: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._lock:
            self._aborted.add(sock)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            aborted = request in self._aborted
            self._aborted.discard(request)
        if aborted:
            # Skip the polite shutdown(SHUT_WR): it would send a FIN before the RST.
            request.close()
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up make relaying fail: expected, stay quiet.
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            self.proxy.errors.append(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real endpoints
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        with self.server._lock:
            self.server.handlers[threading.current_thread()] = self.connection

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server._lock:
                self.server.handlers.pop(threading.current_thread(), None)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_POST

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer section ends with an empty line.
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=_UPSTREAM_TIMEOUT)
        try:
            # Keep the client's Host header: it is part of the SigV4 signature.
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def _relay(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _forward_and_record(self, body: bytes, operation: str, stream: str | None, events: int = 0) -> None:
        status, reason, headers, data = self._forward(body)
        error_type = next((value for name, value in headers if name.lower() == "x-amzn-errortype"), "")
        outcome = "accepted" if status == 200 else (error_type.split(":")[0] or str(status))
        self.server.proxy._record_op(operation, outcome, stream, events)
        self._relay(status, reason, headers, data)

    def _send_error_json(
        self, status: int, error_type: str, message: str, extra_headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        data = json.dumps({"__type": error_type, "message": message}).encode()
        self._relay(
            status,
            http.client.responses.get(status, ""),
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-ErrorType", error_type),
                ("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000"),
                *extra_headers,
            ],
            data,
        )

    def _abort(self) -> None:
        self.close_connection = True
        self.server.mark_abort(self.connection)

    def _drop(self) -> None:
        # Orderly close (FIN) without a response.
        self.close_connection = True

    # ------------------------------------------------------------------ dispatch

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        target = self.headers.get("X-Amz-Target", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else target
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        stream = params.get("logStreamName") if isinstance(params, dict) else None
        if target != PUT_LOG_EVENTS_TARGET:
            if proxy._allowed(operation):
                self._forward_and_record(body, operation, stream)
            else:
                proxy._record_op(operation, "limited", stream)
                self._send_error_json(*FAULTS["throttle"])
            return

        n_events = len(params.get("logEvents", [])) if isinstance(params, dict) else -1
        action = proxy._next_action(n_events, params, stream)
        name = action[0] if isinstance(action, tuple) else action

        if name == "ok":
            self._forward_and_record(body, operation, stream, n_events)
        elif name == "limited":
            self._send_error_json(*FAULTS["throttle"])
        elif name == "delay":
            if proxy._closing.wait(float(action[1])):
                self._abort()
                return
            self._relay(*self._forward(body))
        elif name == "delay_answer":
            answer = self._forward(body)
            if proxy._closing.wait(float(action[1])):
                self._abort()
                return
            self._relay(*answer)
        elif name == "drop_answer":
            self._forward(body)
            self._drop()
        elif name == "reset":
            self._abort()
        elif name == "retry_after":
            self._send_error_json(
                *FAULTS["throttle"], extra_headers=[("x-amz-retry-after", str(int(action[1] * 1000)))]
            )
        elif name == "hang":
            proxy._closing.wait()
            self._abort()
        elif name in FAULTS:
            self._send_error_json(*FAULTS[name])
        else:  # validated in set_schedule; defensive
            self._abort()


_SIMPLE_ACTIONS = frozenset({"ok", "reset", "drop_answer", "hang", *FAULTS})
_TIMED_ACTIONS = frozenset({"delay", "delay_answer", "retry_after"})


def _validate(action: Action) -> None:
    if isinstance(action, tuple):
        if len(action) == 2 and action[0] in _TIMED_ACTIONS and float(action[1]) >= 0:
            return
    elif action in _SIMPLE_ACTIONS:
        return
    raise ValueError(f"unknown proxy action {action!r}")


class FaultProxy:
    """Fault-injecting proxy in front of ``upstream_url``; see the module docstring.

    ``calls`` lists ``(action, n_events)`` per PutLogEvents request, ``requests`` the
    decoded request bodies, ``errors`` unexpected exceptions raised in handlers.
    """

    def __init__(self, upstream_url: str, schedule: Iterable[Action] = ()) -> None:
        parts = urlsplit(upstream_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream_url needs host and port: {upstream_url!r}")
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port
        self.calls: list[tuple[Action, int]] = []
        self.requests: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self.ops: list[Op] = []
        self.limits: dict[str, RateLimit] = {}
        self._lock = threading.Lock()
        self._schedule: Iterator[Action] = iter(())
        self._closing = threading.Event()
        self._closed = False
        self.set_schedule(schedule)
        self._server = _ProxyServer(self)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # Short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FaultProxy:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def set_schedule(self, schedule: Iterable[Action]) -> None:
        """Replace the schedule. Lists are validated up front; iterators lazily."""
        if isinstance(schedule, (list, tuple)):
            for action in schedule:
                _validate(action)
        with self._lock:
            self._schedule = iter(schedule)

    def limit(
        self, operation: str, per_second: float, burst: float | None = None, closed_for: float = 0.0
    ) -> RateLimit:
        """Put an account-wide token bucket in front of ``operation`` (see ``RateLimit``); returns it."""
        bucket = RateLimit(per_second, burst, closed_for)
        with self._lock:
            self.limits[operation] = bucket
        return bucket

    def unlimit(self, operation: str) -> None:
        """Lift the limit of ``operation``."""
        with self._lock:
            self.limits.pop(operation, None)

    def _allowed(self, operation: str) -> bool:
        with self._lock:
            bucket = self.limits.get(operation)
        return bucket is None or bucket.take()

    def _record_op(self, operation: str, outcome: str, stream: str | None, events: int = 0) -> None:
        with self._lock:
            self.ops.append(Op(operation, outcome, stream, events, time.monotonic()))

    def _next_action(self, n_events: int, params: dict[str, Any], stream: str | None = None) -> Action:
        with self._lock:
            action = next(self._schedule, "ok")
            if action is None:
                action = "ok"
            _validate(action)
            bucket = self.limits.get("PutLogEvents")
        if action == "ok" and bucket is not None and not bucket.take():
            action = "limited"
        with self._lock:
            self.calls.append((action, n_events))
            self.requests.append(params)
            if action != "ok":  # forwarded requests are recorded with moto's answer
                outcome = str(action[0] if isinstance(action, tuple) else action)
                self.ops.append(Op("PutLogEvents", outcome, stream, n_events, time.monotonic()))
            return action

    def op_count(self, operation: str, outcome: str | None = None, stream: str | None = None) -> int:
        """How many requests of ``operation`` had ``outcome`` (any when None) for ``stream`` (any when None)."""
        with self._lock:
            return sum(
                1
                for op in self.ops
                if op.operation == operation and outcome in (None, op.outcome) and stream in (None, op.stream)
            )

    def count(self, action: Action) -> int:
        """How many PutLogEvents calls got ``action`` (tuples match on their name)."""
        with self._lock:
            return sum(1 for a, _ in self.calls if a == action or (isinstance(a, tuple) and a[0] == action))

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, release hanging/delayed handlers and drop open connections."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()  # wakes "hang" and "delay" handlers
        self._server.shutdown()
        self._server.server_close()
        with self._server._lock:
            handlers = dict(self._server.handlers)
        for sock in handlers.values():
            # Idle keep-alive handlers block reading the next request: wake them.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in handlers:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FaultProxy({self.url} -> {self.upstream_host}:{self.upstream_port})"
