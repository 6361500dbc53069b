"""Scenarios 12-13 of issue 4: a burst of hostile records, and security (credentials, TLS, names).

Covered elsewhere and not repeated here: each hostile value on its own (tests/test_document.py), each
option's validation (tests/test_config.py::test_bad_option_raises_naming_option_value_and_allowed), the
short repr (test_config.py::test_repr_is_short_and_has_no_credentials) and credentials in reports and
stderr (tests/test_client.py::test_credentials_never_appear_in_stats_repr_reports_or_output).
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import ipaddress
import json
import math
import ssl
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import botocore.session
import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._encoder import JsonEncoder
from loguru_cloudwatch._frames import chain
from loguru_cloudwatch._limits import MAX_BATCH_BYTES, MAX_BATCH_SPAN_MS, MAX_EVENT_BYTES
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.faults import FaultInjector
from tests.support.hostile import Falsy, Unprintable
from tests.support.problems import ProblemLog
from tests.support.recorders import PutLogEventsRecorder
from tests.support.waiting import wait_for

GROUP = "scenario-hostile"
STREAM = "hostile"
UTC = datetime.timezone.utc


# --------------------------------------------------------------------------- 12. hostile records


def emit(lg: Any, text: str) -> None:
    """One call site for the records whose size matters: their documents differ only by the message."""
    lg.info(text)


def room_for_message(serialize: bool) -> int:
    """The longest ASCII message whose event is exactly CloudWatch's limit, for records logged by ``emit``."""
    if not serialize:
        return MAX_EVENT_BYTES
    captured: list[Any] = []
    handler = logger.add(captured.append, format="{message}")
    try:
        emit(logger, "")
    finally:
        logger.remove(handler)
    _, _, size = JsonEncoder(None).encode(captured[0])
    return MAX_EVENT_BYTES - size


BIG = "é😀a" * 750_000  # 5.25 MB
SURROGATES = "bad \ud800 here \udfff"
NUL = "nul[\x00] byte"
RTL_EMOJI = "rtl שלום مرحبا \u202eabc\u202c emoji 😀 👩\u200d👩\u200d👧"


@pytest.mark.parametrize("serialize", [True, False], ids=["json", "text"])
@pytest.mark.parametrize("enqueue", [False, True], ids=["direct", "enqueue"])
def test_one_hostile_burst_nothing_crashes_or_blocks_acceptable_records_arrive_the_rest_counted(
    serialize: bool,
    enqueue: bool,
    endpoint: str,
    logs_client: Any,
    put_recorder: PutLogEventsRecorder,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    problems = ProblemLog()
    room = room_for_message(serialize)
    sink = CloudWatchSink(
        GROUP,
        STREAM,
        endpoint_url=endpoint,
        serialize=serialize,
        flush_interval=60.0,
        retry_delay=0.002,
        shutdown_timeout=10,
        on_error=problems,
    )
    # catch=False: anything the sink raised would reach the logging call.
    logger.add(sink, format="{message}", enqueue=enqueue, catch=False)
    now = datetime.datetime.now(UTC).replace(microsecond=0)

    def at(moment: datetime.datetime) -> Any:
        return logger.patch(lambda record: record.update(time=moment))

    circular: dict[str, Any] = {"k": 1}
    circular["self"] = circular
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    calls = [
        ("empty", lambda: emit(logger, "")),
        ("one byte", lambda: emit(logger, "x")),
        ("at the limit", lambda: emit(logger, "a" * room)),
        ("just over", lambda: emit(logger, "a" * (room + 1))),
        ("5 MB", lambda: logger.info(BIG)),
        ("surrogates", lambda: logger.info(SURROGATES)),
        ("nul", lambda: logger.info(NUL)),
        ("rtl emoji", lambda: logger.info(RTL_EMOJI)),
        (
            "extras",
            lambda: logger.bind(
                obj=Path("/x"),
                plain=object(),
                raw=b"\xff\x00ab",
                numbers={3, 1, 2},
                when=when,
                price=decimal.Decimal("1.10"),
                nan=math.nan,
                circular=circular,
                unprintable=Unprintable(),
            ).info("extras"),
        ),
        ("broken extra", lambda: logger.patch(lambda record: record.update(extra=Falsy())).info("broken extra")),
        ("15 days old", lambda: at(now - datetime.timedelta(days=15)).info("15 days old")),
        ("3 hours ahead", lambda: at(now + datetime.timedelta(hours=3)).info("3 hours ahead")),
        ("out of order 1", lambda: at(now - datetime.timedelta(seconds=10)).info("out of order 1")),
        ("out of order 2", lambda: at(now - datetime.timedelta(seconds=30)).info("out of order 2")),
        ("out of order 3", lambda: at(now - datetime.timedelta(seconds=20)).info("out of order 3")),
        ("71 hours ago", lambda: at(now - datetime.timedelta(hours=71)).info("71 hours ago")),
        ("47 hours ago", lambda: at(now - datetime.timedelta(hours=47)).info("47 hours ago")),
        ("23 hours ago", lambda: at(now - datetime.timedelta(hours=23)).info("23 hours ago")),
        ("after", lambda: logger.info("after")),
    ]
    slowest = 0.0
    started = time.monotonic()
    for _, call in calls:
        before = time.monotonic()
        call()  # must not raise
        slowest = max(slowest, time.monotonic() - before)
    burst = time.monotonic() - started
    assert slowest < 2.0, slowest  # the 5 MB record is cut on the caller's thread; nothing waits for the network
    assert burst < 5.0, burst
    # No assertion on put_recorder.calls here: the record at the limit fills a batch by bytes, which
    # rightly wakes the worker, and whether its call lands before this line is the scheduler's choice.
    logger.complete()
    assert sink.force_flush(30), sink.stats

    refused = {"15 days old", "3 hours ahead"}
    if serialize:
        refused.add("broken extra")  # its extra cannot be read at all; in text mode only the message counts
    stats = sink.stats
    assert (stats.sent, stats.rejected, stats.truncated) == (len(calls) - len(refused), len(refused), 2)
    assert (stats.queued, stats.dropped, stats.abandoned) == (0, 0, 0)
    # The others are counted with the reason.
    rejected = problems.messages("rejected")
    assert len(rejected) == 2 and problems.records("rejected") == 2
    assert any("14-day" in message for message in rejected)
    assert any("2 hours in the future" in message for message in rejected)
    assert problems.records("unencodable") == (1 if serialize else 0)

    raw = read_messages(logs_client, GROUP, STREAM)
    assert len(raw) == len(calls) - len(refused)
    assert all(1 <= len(message.encode("utf-8")) <= MAX_EVENT_BYTES for message in raw)
    texts = [json.loads(message)["message"] for message in raw] if serialize else raw
    expected_plain = ["x", NUL, RTL_EMOJI, "extras", "after", "out of order 1", "71 hours ago", "23 hours ago"]
    for text in expected_plain:
        assert texts.count(text) == 1, text
    assert texts.count("a" * room) == 1  # exactly at the limit: not cut
    exact = [message for message in raw if len(message.encode("utf-8")) == MAX_EVENT_BYTES]
    assert len(exact) == 1
    assert texts.count("" if serialize else "(empty message)") == 1
    assert texts.count(SURROGATES.encode("utf-8", "backslashreplace").decode()) == 1
    over = [text for text in texts if text.startswith("a" * 1000) and "truncated by loguru-cloudwatch" in text]
    big = [text for text in texts if text.startswith("é😀a") and "truncated by loguru-cloudwatch" in text]
    assert len(over) == 1 and len(big) == 1
    assert texts.count("broken extra") == (0 if serialize else 1)
    if serialize:
        [extras] = [json.loads(message) for message in raw if json.loads(message)["message"] == "extras"]
        assert extras["obj"] == "/x"
        assert extras["plain"].startswith("<object object at ")
        assert extras["raw"] == "\\xff\x00ab"
        assert sorted(extras["numbers"]) == [1, 2, 3]
        assert datetime.datetime.fromisoformat(extras["when"]) == when
        assert extras["price"] == "1.10"
        assert extras["nan"] is None
        assert extras["circular"] == {"k": 1, "self": "<circular reference>"}
        assert "Unprintable" in extras["unprintable"]
    # What was sent respected CloudWatch's rules: sorted, within 24 hours and 1 MiB per call.
    for batch in put_recorder.batches:
        stamps = [event["timestamp"] for event in batch]
        assert stamps == sorted(stamps)
        assert stamps[-1] - stamps[0] <= MAX_BATCH_SPAN_MS
        assert PutLogEventsRecorder.batch_size(batch) <= MAX_BATCH_BYTES
    sent_times = {event["timestamp"] for batch in put_recorder.batches for event in batch}
    day_ms = 24 * 3600 * 1000
    assert min(sent_times) == int((now - datetime.timedelta(hours=71)).timestamp() * 1000)
    assert max(sent_times) - min(sent_times) > 2 * day_ms  # spread over 3 days: split, not refused


# --------------------------------------------------------------------------- 13. security


KEY_ID = "AKIAHOSTILE000000042"
SECRET = "wJalrXUtnFEMI/K7MDENG/Hostile+Secret+Value+42"
TOKEN = "FwoGZXIvYXdzEHostileSessionToken0042"


def texts_of(error: BaseException) -> list[str]:
    """What an error reporter would show of an exception: its text, traceback and each frame's local values."""
    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    for current in chain(error):
        texts += [str(current), repr(current)]
        tb = current.__traceback__
        while tb is not None:
            for name, value in tb.tb_frame.f_locals.items():
                with contextlib.suppress(Exception):  # a repr that raises shows nothing
                    texts.append(f"{name}={value!r}")
            tb = tb.tb_next
    return texts


def test_no_credential_in_exceptions_reports_repr_stats_or_validation_errors(
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    fault_injector: FaultInjector,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    create_group_and_stream(logs_client, GROUP, STREAM)
    errors: list[BaseException] = []
    reports: list[str] = []

    def on_error(problem: Any) -> None:  # keeps the exceptions, as an error tracker would
        reports.append(f"{problem!r} {problem}")
        if problem.exception is not None:
            errors.append(problem.exception)

    # Network errors (botocore keeps the signed request in its frames), an error answer, a refusal.
    fault_injector.set_schedule(["reset", "timeout", "throttle", "reset"])
    sink = CloudWatchSink(
        GROUP, STREAM, endpoint_url=endpoint, flush_interval=0.05, retry_delay=0.002, max_retries=5, on_error=on_error
    )
    logger.add(sink, format="{message}")
    for index in range(5):
        logger.info("record {}", index)
    assert sink.force_flush(10), sink.stats
    assert len(errors) == 4

    texts = [repr(sink), str(sink), repr(sink.stats), *reports]
    for error in errors:
        texts += texts_of(error)
    # Options given the wrong object (a dict of keys where a session or client was meant) fail without
    # showing the keys.
    for option in ("session", "client", "boto_config"):
        with pytest.raises(TypeError) as raised:
            CloudWatchSink(GROUP, **{option: {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}})
        texts.append(str(raised.value))
        assert option in str(raised.value)
    with pytest.raises(TypeError) as raised:
        CloudWatchSink(GROUP, session=KEY_ID)
    texts.append(str(raised.value))
    logger.remove()
    out, err = capfd.readouterr()
    texts += [out, err]

    for text in texts:
        for credential in (KEY_ID, SECRET, TOKEN):
            assert credential not in text, text[:2000]


def make_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no default trust store knows."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _AcceptEverything(BaseHTTPRequestHandler):
    """A fake CloudWatch that says yes to every call it is able to read."""

    protocol_version = "HTTP/1.1"
    requests: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests.append(self.headers.get("X-Amz-Target", ""))
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def tls_endpoint(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTPS endpoint with a self-signed certificate: (url, certificate file, targets of the calls it read)."""
    cert_path, key_path = make_self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    handler = type("Handler", (_AcceptEverything,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_path, handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_tls_certificates_are_verified_by_default(
    tls_endpoint: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert_path, requests = tls_endpoint
    created: list[dict[str, Any]] = []
    original = botocore.session.Session.create_client

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        created.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", spy)
    problems = ProblemLog()
    sink = CloudWatchSink(
        GROUP, STREAM, endpoint_url=url, flush_interval=0.05, max_retries=0, retry_delay=0.01, on_error=problems
    )
    logger.add(sink, format="{message}")
    for index in range(3):
        logger.info("secret business {}", index)

    wait_for(lambda: problems.count("delivery_failed") >= 1, timeout=10, message="a failed delivery")
    [first, *_] = problems.messages("delivery_failed")
    assert "SSL" in first and "CERTIFICATE_VERIFY_FAILED" in first.upper().replace(" ", "_"), first
    assert requests == []  # the handshake failed: not a byte of a request reached the server
    assert (sink.stats.sent, sink.stats.queued) == (0, 3)
    # The sink never turns verification off.
    assert created and all(kwargs.get("verify") in (None, True) for kwargs in created)
    logger.remove()

    # Control: the same endpoint, its certificate trusted the standard way: now it is reached.
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert_path))
    trusted = CloudWatchSink(GROUP, STREAM, endpoint_url=url, flush_interval=0.05, on_error=problems)
    logger.add(trusted, format="{message}")
    logger.info("now trusted")
    assert trusted.force_flush(10), trusted.stats
    assert requests == ["Logs_20140328.PutLogEvents"]
    assert trusted.stats.sent == 1


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        pytest.param("{date:%Y}", "can be rendered", id="format-spec-for-a-string"),
        pytest.param("{pid.__class__.__init__.__globals__}", "only the fields", id="attribute-walk"),
        pytest.param("{hostname[0]}", "only the fields", id="indexing"),
        pytest.param("{program!s:{pid}}x{", "template", id="unbalanced"),
    ],
)
def test_hostile_stream_templates_are_refused_naming_the_option(template: str, fragment: str) -> None:
    with pytest.raises(ValueError) as raised:
        CloudWatchSink(GROUP, template)
    message = str(raised.value)
    assert message.startswith("CloudWatchSink option log_stream=")
    assert fragment in message
