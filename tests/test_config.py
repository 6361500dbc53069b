"""Configuration: bad options fail at construction with a clear message; stream name templates; a cheap start."""

from __future__ import annotations

import datetime
import json
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from loguru import logger

from loguru_cloudwatch import CloudWatchSink, SinkProblem
from tests.support.aws import REGION, make_logs_client, read_messages
from tests.support.waiting import wait_for

ALLOWED_RETENTION = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


@pytest.fixture
def make_sink() -> Iterator[Callable[..., CloudWatchSink]]:
    """Sinks that are stopped at the end of the test (they have a worker thread)."""
    sinks: list[CloudWatchSink] = []

    def factory(log_group: str = "cfg-group", log_stream: str = "cfg-stream", **options: Any) -> CloudWatchSink:
        settings: dict[str, Any] = {"flush_interval": 0.05, "shutdown_timeout": 1, "on_error": lambda _: None}
        settings.update(options)
        sink = CloudWatchSink(log_group, log_stream, **settings)
        sinks.append(sink)
        return sink

    yield factory
    for sink in sinks:
        sink.stop()


# --------------------------------------------------------------------------- bad configuration


class NoPut:
    """Looks like a client, but cannot send."""

    def create_log_group(self, **_: Any) -> None:  # pragma: no cover - never called
        pass


NAN = math.nan

# (id, arguments, exception, option named, a fragment of what is allowed)
BAD: list[tuple[str, dict[str, Any], type[Exception], str, str]] = [
    ("group-empty", {"log_group": ""}, ValueError, "log_group", "1 to 512"),
    ("group-513", {"log_group": "g" * 513}, ValueError, "log_group", "1 to 512"),
    ("group-space", {"log_group": "my group"}, ValueError, "log_group", "[.-_/#A-Za-z0-9]"),
    ("group-colon", {"log_group": "app:prod"}, ValueError, "log_group", "[.-_/#A-Za-z0-9]"),
    ("group-star", {"log_group": "app*"}, ValueError, "log_group", "[.-_/#A-Za-z0-9]"),
    ("group-unicode", {"log_group": "grüße"}, ValueError, "log_group", "[.-_/#A-Za-z0-9]"),
    ("group-aws", {"log_group": "aws/lambda/x"}, ValueError, "log_group", "aws/"),
    ("group-int", {"log_group": 123}, TypeError, "log_group", "string"),
    ("group-none", {"log_group": None}, TypeError, "log_group", "string"),
    ("stream-int", {"log_stream": 5}, TypeError, "log_stream", "string"),
    ("stream-unknown-field", {"log_stream": "{hostname}/{foo}"}, ValueError, "log_stream", "{hostname}"),
    ("stream-positional", {"log_stream": "app-{}"}, ValueError, "log_stream", "{pid}"),
    ("stream-index", {"log_stream": "app-{0}"}, ValueError, "log_stream", "{program}"),
    ("stream-attribute", {"log_stream": "{hostname.upper}"}, ValueError, "log_stream", "{date}"),
    ("stream-unbalanced", {"log_stream": "app-{pid"}, ValueError, "log_stream", "template"),
    ("stream-empty", {"log_stream": ""}, ValueError, "log_stream", "at least one character"),
    ("stream-renders-empty", {"log_stream": "{program:.0}"}, ValueError, "log_stream", "at least one character"),
    ("serialize-str", {"serialize": "yes"}, TypeError, "serialize", "True or False"),
    ("serialize-int", {"serialize": 1}, TypeError, "serialize", "True or False"),
    ("extra-keys-str", {"extra_keys": "request_id"}, TypeError, "extra_keys", "sequence of strings"),
    ("extra-keys-ints", {"extra_keys": ["a", 1]}, TypeError, "extra_keys", "strings"),
    ("extra-keys-int", {"extra_keys": 5}, TypeError, "extra_keys", "sequence"),
    ("flush-str", {"flush_interval": "1"}, TypeError, "flush_interval", "number"),
    ("flush-bool", {"flush_interval": True}, TypeError, "flush_interval", "number"),
    ("flush-zero", {"flush_interval": 0}, ValueError, "flush_interval", "> 0"),
    ("flush-negative", {"flush_interval": -1.5}, ValueError, "flush_interval", "> 0"),
    ("flush-nan", {"flush_interval": NAN}, ValueError, "flush_interval", "> 0"),
    ("flush-inf", {"flush_interval": math.inf}, ValueError, "flush_interval", "<="),
    ("batch-zero", {"max_batch_size": 0}, ValueError, "max_batch_size", "1 to 10,000"),
    ("batch-10001", {"max_batch_size": 10_001}, ValueError, "max_batch_size", "1 to 10,000"),
    ("batch-str", {"max_batch_size": "100"}, TypeError, "max_batch_size", "integer"),
    ("batch-bool", {"max_batch_size": True}, TypeError, "max_batch_size", "integer"),
    ("batch-float", {"max_batch_size": 100.0}, TypeError, "max_batch_size", "integer"),
    ("queue-zero", {"max_queue_size": 0}, ValueError, "max_queue_size", "integer from 1"),
    ("queue-negative", {"max_queue_size": -5}, ValueError, "max_queue_size", "integer from 1"),
    ("queue-str", {"max_queue_size": "10"}, TypeError, "max_queue_size", "integer"),
    ("queue-bytes-small", {"max_queue_bytes": 1024}, ValueError, "max_queue_bytes", "2,097,152"),
    ("queue-bytes-bool", {"max_queue_bytes": False}, TypeError, "max_queue_bytes", "integer"),
    ("retries-negative", {"max_retries": -1}, ValueError, "max_retries", "integer from 0"),
    ("retries-str", {"max_retries": "3"}, TypeError, "max_retries", "integer"),
    ("retries-none", {"max_retries": None}, TypeError, "max_retries", "integer"),
    ("delay-negative", {"retry_delay": -0.1}, ValueError, "retry_delay", ">= 0"),
    ("delay-str", {"retry_delay": "1"}, TypeError, "retry_delay", "number"),
    ("delay-nan", {"retry_delay": NAN}, ValueError, "retry_delay", ">= 0"),
    ("create-group-str", {"create_log_group": "no"}, TypeError, "create_log_group", "True or False"),
    ("create-stream-int", {"create_log_stream": 0}, TypeError, "create_log_stream", "True or False"),
    ("retention-2", {"retention_days": 2}, ValueError, "retention_days", "1, 3, 5, 7, 14"),
    ("retention-0", {"retention_days": 0}, ValueError, "retention_days", "3653"),
    ("retention-str", {"retention_days": "7"}, TypeError, "retention_days", "integer"),
    ("retention-bool", {"retention_days": True}, TypeError, "retention_days", "integer"),
    ("retention-float", {"retention_days": 7.0}, TypeError, "retention_days", "integer"),
    ("class-lower", {"log_group_class": "standard"}, ValueError, "log_group_class", "INFREQUENT_ACCESS"),
    ("class-int", {"log_group_class": 1}, ValueError, "log_group_class", "STANDARD"),
    ("kms-int", {"kms_key_id": 123}, TypeError, "kms_key_id", "string"),
    ("tags-int-value", {"tags": {"team": 1}}, TypeError, "tags", "mapping of strings to strings"),
    ("tags-int-key", {"tags": {1: "x"}}, TypeError, "tags", "mapping of strings to strings"),
    ("tags-list", {"tags": [("team", "core")]}, TypeError, "tags", "mapping"),
    ("client-object", {"client": object()}, TypeError, "client", "CloudWatch Logs client"),
    ("client-no-put", {"client": NoPut()}, TypeError, "client", "CloudWatch Logs client"),
    ("session-str", {"session": "default"}, TypeError, "session", "boto3.Session"),
    ("region-int", {"region_name": 1}, TypeError, "region_name", "string"),
    ("endpoint-bytes", {"endpoint_url": b"http://x"}, TypeError, "endpoint_url", "string"),
    ("endpoint-no-scheme", {"endpoint_url": "localhost:5000"}, ValueError, "endpoint_url", "http:// or https://"),
    ("endpoint-no-host", {"endpoint_url": "http://"}, ValueError, "endpoint_url", "with a host"),
    ("endpoint-not-a-url", {"endpoint_url": "not a url"}, ValueError, "endpoint_url", "http:// or https://"),
    ("endpoint-bad-port", {"endpoint_url": "http://127.0.0.1:99999"}, ValueError, "endpoint_url", "URL"),
    ("boto-config-dict", {"boto_config": {"retries": {"max_attempts": 1}}}, TypeError, "boto_config", "Config"),
    ("shutdown-negative", {"shutdown_timeout": -1}, ValueError, "shutdown_timeout", ">= 0"),
    ("shutdown-str", {"shutdown_timeout": "10"}, TypeError, "shutdown_timeout", "number"),
    ("shutdown-nan", {"shutdown_timeout": NAN}, ValueError, "shutdown_timeout", ">= 0"),
    ("on-error-str", {"on_error": "print"}, TypeError, "on_error", "callable"),
]


@pytest.mark.parametrize(("arguments", "error", "option", "allowed"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_option_raises_naming_option_value_and_allowed(
    arguments: dict[str, Any], error: type[Exception], option: str, allowed: str
) -> None:
    threads_before = threading.active_count()
    log_group = arguments.pop("log_group", "cfg-group")
    log_stream = arguments.pop("log_stream", "cfg-stream")
    (value,) = [log_group] if option == "log_group" else [log_stream] if option == "log_stream" else arguments.values()

    with pytest.raises(error) as raised:
        CloudWatchSink(log_group, log_stream, **arguments)

    assert type(raised.value) is error
    text = str(raised.value)
    assert option in text
    assert repr(value)[:40] in text  # the bad value (long ones are shortened)
    assert allowed in text, text
    assert threading.active_count() == threads_before  # no worker left behind by a refused sink


def test_long_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(ValueError) as raised:
        CloudWatchSink("g" * 5000)
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"max_batch_size": 1}, id="batch-1"),
        pytest.param({"max_batch_size": 10_000}, id="batch-10000"),
        pytest.param({"max_queue_size": 1}, id="queue-1"),
        pytest.param({"max_queue_bytes": 2 * 1024 * 1024}, id="queue-bytes-2MiB"),
        pytest.param({"max_retries": 0, "retry_delay": 0}, id="no-retries"),
        pytest.param({"flush_interval": 1}, id="int-seconds"),
        pytest.param({"flush_interval": 0.001}, id="tiny-interval"),
        pytest.param({"shutdown_timeout": 0}, id="shutdown-0"),
        pytest.param({"retention_days": 1}, id="retention-1"),
        pytest.param({"retention_days": 3653}, id="retention-3653"),
        pytest.param({"log_group_class": "STANDARD"}, id="class-standard"),
        pytest.param({"log_group_class": "INFREQUENT_ACCESS"}, id="class-ia"),
        pytest.param({"extra_keys": ("a", "b")}, id="extra-keys-tuple"),
        pytest.param({"tags": {"team": "core"}, "kms_key_id": "arn:aws:kms:us-east-1:1:key/x"}, id="tags-kms"),
        pytest.param({"boto_config": Config(read_timeout=3)}, id="boto-config"),
        pytest.param({"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"}, id="region-endpoint"),
        pytest.param({"on_error": print}, id="on-error-builtin"),
    ],
)
def test_valid_boundary_options_are_accepted(make_sink: Any, options: dict[str, Any]) -> None:
    sink = make_sink(**options)
    assert sink.log_group == "cfg-group"
    assert sink.log_stream == "cfg-stream"


@pytest.mark.parametrize(
    "name",
    ["g", "G" * 512, "a.b-c_d/e#F9", "/aws/lambda/fn", "aws", "AWS/upper-is-allowed", "x/aws/y"],
)
def test_valid_group_names_are_accepted(make_sink: Any, name: str) -> None:
    assert make_sink(log_group=name).log_group == name


@pytest.mark.parametrize("days", ALLOWED_RETENTION)
def test_every_retention_cloudwatch_accepts_is_accepted(days: int) -> None:
    from loguru_cloudwatch._config import check_retention

    assert check_retention("retention_days", days) == days


def test_retention_not_accepted_names_every_allowed_value() -> None:
    with pytest.raises(ValueError) as raised:
        CloudWatchSink("cfg-group", retention_days=2)
    text = str(raised.value)
    for days in ALLOWED_RETENTION:
        assert str(days) in text


def test_group_settings_are_applied_when_the_sink_creates_the_group(make_sink: Any, endpoint: str) -> None:
    client = make_logs_client(endpoint)
    create_calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-call.cloudwatch-logs.CreateLogGroup",
        lambda params, **_: create_calls.append(json.loads(params["body"])),
    )
    sink = make_sink(
        log_group="created-group",
        client=client,
        retention_days=7,
        log_group_class="INFREQUENT_ACCESS",
        tags={"team": "core"},
        kms_key_id="arn:aws:kms:us-east-1:123456789012:key/k",
    )
    logger.add(sink)
    logger.info("creates the group")

    assert sink.force_flush(10), sink.stats
    assert create_calls == [
        {
            "logGroupName": "created-group",
            "logGroupClass": "INFREQUENT_ACCESS",
            "tags": {"team": "core"},
            "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
        }
    ]
    (group,) = client.describe_log_groups(logGroupNamePrefix="created-group")["logGroups"]
    assert group["retentionInDays"] == 7
    assert client.list_tags_log_group(logGroupName="created-group")["tags"] == {"team": "core"}
    assert read_messages(client, "created-group", "cfg-stream")
    client.close()


# --------------------------------------------------------------------------- stream name templates


def utc_today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def test_default_stream_is_hostname_and_pid() -> None:
    sink = CloudWatchSink("cfg-group", flush_interval=0.05, shutdown_timeout=1)
    try:
        expected = f"{socket.gethostname()}/{os.getpid()}".replace(":", "_").replace("*", "_")
        assert sink.log_stream == expected[:512]
    finally:
        sink.stop()


def test_stream_template_fields(make_sink: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "web-1.example")
    monkeypatch.setattr(sys, "argv", ["/opt/app/my-service.py", "--flag"])
    before = utc_today()
    sink = make_sink(log_stream="{program}/{hostname}/{pid}/{date}/{{literal}}")
    after = utc_today()

    program, hostname, pid, date, literal = sink.log_stream.split("/")
    assert program == "my-service.py"
    assert hostname == "web-1.example"
    assert pid == str(os.getpid())
    assert date in {before, after}
    assert literal == "{literal}"


def test_date_is_utc_whatever_the_local_zone(make_sink: Any) -> None:
    # At any moment one of these zones has a different calendar date than UTC (+14 h and -12 h).
    old = os.environ.get("TZ")
    try:
        for zone in ("Etc/GMT-14", "Etc/GMT+12"):
            os.environ["TZ"] = zone
            time.tzset()
            before = utc_today()
            sink = make_sink(log_stream="app-{date}")
            after = utc_today()
            assert sink.log_stream in {f"app-{before}", f"app-{after}"}, zone
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_forbidden_characters_are_replaced(make_sink: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "host:8080*x")
    sink = make_sink(log_stream="app:prod*1/{hostname}")
    assert sink.log_stream == "app_prod_1/host_8080_x"


def test_stream_name_is_cut_to_512_characters(make_sink: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_sink(log_stream="s" * 600).log_stream == "s" * 512
    monkeypatch.setattr(socket, "gethostname", lambda: "h" * 1000)
    assert make_sink(log_stream="{hostname}-{pid}").log_stream == "h" * 512


def test_records_go_to_the_rendered_stream(make_sink: Any, logs_client: Any) -> None:
    endpoint = logs_client.meta.endpoint_url
    sink = make_sink(log_stream="svc:{pid}*x", endpoint_url=endpoint)
    logger.add(sink, format="{message}", serialize=False)
    logger.info("where am I")

    assert sink.force_flush(10), sink.stats
    assert sink.log_stream == f"svc_{os.getpid()}_x"
    assert read_messages(logs_client, "cfg-group", sink.log_stream)
    streams = logs_client.describe_log_streams(logGroupName="cfg-group")["logStreams"]
    assert [s["logStreamName"] for s in streams] == [sink.log_stream]


# --------------------------------------------------------------------------- a cheap, quiet start


class CountingListener:
    """A TCP endpoint that counts connections; it answers nothing (``close_at_once``: closes them at once)."""

    def __init__(self, close_at_once: bool) -> None:
        self.connections = 0
        self._close_at_once = close_at_once
        self._held: list[socket.socket] = []
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            if self._close_at_once:
                connection.close()
            else:
                self._held.append(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for connection in self._held:
            connection.close()
        self._socket.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    server = CountingListener(close_at_once=True)
    yield server
    server.close()


def test_construction_makes_no_network_call(make_sink: Any, listener: CountingListener) -> None:
    problems: list[SinkProblem] = []
    started = time.monotonic()
    sink = make_sink(endpoint_url=listener.url, on_error=problems.append, retry_delay=0.001, max_retries=0)
    assert time.monotonic() - started < 0.5

    # The worker is up (it answers a flush) and still has not connected: nothing to send, nothing sent.
    assert sink.force_flush(5)
    assert listener.connections == 0

    # The endpoint is live: the first record does reach it.
    logger.add(sink)
    logger.info("first record")
    wait_for(lambda: listener.connections >= 1, timeout=10, message="the first record never reached the endpoint")


def test_construction_is_fast_when_the_credential_chain_would_block(
    make_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No credentials anywhere, and an instance-metadata endpoint that never answers: finding out takes
    # seconds, so it must not happen in the constructor.
    hanging = CountingListener(close_at_once=False)
    try:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", hanging.url)
        monkeypatch.setenv("AWS_METADATA_SERVICE_TIMEOUT", "1")
        monkeypatch.setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1")
        started = time.monotonic()
        sink = make_sink(shutdown_timeout=0.2)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, f"constructor took {elapsed:.2f}s"
        # The lookup does happen, off the caller's thread.
        wait_for(lambda: hanging.connections >= 1, timeout=10, message="no credential lookup on the worker")
        sink.stop()
    finally:
        hanging.close()


# --------------------------------------------------------------------------- repr


def test_repr_is_short_and_has_no_credentials(make_sink: Any, endpoint: str) -> None:
    access_key = "AKIAEXAMPLEACCESSKEY"
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
    token = "FwoGZXIvYXdzSESSIONTOKENexample"
    session = boto3.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret, aws_session_token=token, region_name=REGION
    )
    client = session.client("logs", endpoint_url=endpoint)
    with_session = make_sink(session=session, endpoint_url=endpoint)
    with_client = make_sink(client=client)
    logger.add(with_session)
    logger.add(with_client)

    for text in (repr(with_session), repr(with_client), str(with_client), repr(logger)):
        for credential in (access_key, secret, token):
            assert credential not in text
    for sink in (with_session, with_client):
        assert len(repr(sink)) < 200
        assert "cfg-group" in repr(sink)
        assert "cfg-stream" in repr(sink)
