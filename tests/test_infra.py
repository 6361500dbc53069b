"""The test infrastructure itself (``tests/support``, ``conftest.py``), exercised with plain boto3 (no sink)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    HTTPClientError,
    ReadTimeoutError,
)

from tests.support import REPO_ROOT
from tests.support.aws import (
    REGION,
    create_group_and_stream,
    fake_aws_env,
    make_logs_client,
    read_events,
    read_json,
    read_messages,
)
from tests.support.programs import run_interpreter, run_python
from tests.support.proxy import FaultProxy
from tests.support.recorders import PutLogEventsRecorder, attaching_to_new_logs_clients
from tests.support.waiting import wait_for

GROUP = "infra-group"
STREAM = "infra-stream"


def _events(n: int, start_ms: int | None = None, prefix: str = "m") -> list[dict[str, Any]]:
    base = start_ms if start_ms is not None else int(time.time() * 1000) - 60_000
    return [{"timestamp": base + i, "message": f"{prefix}{i}"} for i in range(n)]


def _put(client: Any, events: list[dict[str, Any]]) -> Any:
    return client.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=events)


def _error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


# --------------------------------------------------------------------------- moto + readers


def test_moto_round_trip(logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    base = int(time.time() * 1000) - 1_000
    sent = [{"timestamp": base + i, "message": json.dumps({"n": i})} for i in range(3)]
    _put(logs_client, sent)

    assert read_events(logs_client, GROUP, STREAM) == sent
    assert read_messages(logs_client, GROUP, STREAM) == [e["message"] for e in sent]
    assert read_json(logs_client, GROUP, STREAM) == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_endpoint_resets_moto_state(logs_client: Any) -> None:
    # Names reused by every test: a leftover group would make this fail.
    create_group_and_stream(logs_client, GROUP, STREAM)
    groups = logs_client.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [GROUP]


def test_read_events_reads_every_page(logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    base = int(time.time() * 1000) - 60_000
    # moto pages at 10,000 events: 12,000 needs two pages.
    _put(logs_client, _events(6_000, base, "a"))
    _put(logs_client, _events(6_000, base + 6_000, "b"))
    messages = read_messages(logs_client, GROUP, STREAM)
    assert len(messages) == 12_000
    assert messages[0] == "a0" and messages[5_999] == "a5999" and messages[-1] == "b5999"


def test_read_events_missing_stream(logs_client: Any) -> None:
    assert read_events(logs_client, "nope", "nope") == []
    with pytest.raises(ClientError) as info:
        read_events(logs_client, "nope", "nope", missing_ok=False)
    assert _error_code(info.value) == "ResourceNotFoundException"


# --------------------------------------------------------------------------- plain helpers


def test_wait_for_returns_truthy_value() -> None:
    start = time.monotonic()
    box: list[int] = []
    timer = threading.Timer(0.05, box.append, args=(7,))
    timer.start()
    try:
        assert wait_for(lambda: list(box), timeout=5) == [7]
    finally:
        timer.join()
    assert time.monotonic() - start < 2


def test_wait_for_raises_with_message() -> None:
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"never happens.*last value: 0"):
        wait_for(lambda: 0, timeout=0.1, message="never happens")
    assert 0.1 <= time.monotonic() - start < 1


def test_run_python_env_and_cwd() -> None:
    result = run_python(
        "import os, sys; print(os.getcwd()); print(os.environ['EXTRA']); "
        "print(os.environ['AWS_ACCESS_KEY_ID']); sys.exit(3)",
        timeout=30,
        env={"EXTRA": "yes"},
    )
    assert result.returncode == 3
    cwd, extra, key = result.stdout.splitlines()
    assert os.path.samefile(cwd, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert (extra, key) == ("yes", "testing")


def test_run_python_timeout_is_assertion() -> None:
    code = "import sys, time; print('started', flush=True); print('err', file=sys.stderr, flush=True); time.sleep(30)"
    with pytest.raises(AssertionError, match=r"(?s)within 1.*started.*err"):
        run_python(code, timeout=1)


def test_aws_env_is_hermetic() -> None:
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        assert name not in os.environ
    assert not os.path.exists(os.environ["AWS_CONFIG_FILE"])
    assert not os.path.exists(os.environ["AWS_SHARED_CREDENTIALS_FILE"])
    session = boto3.session.Session()
    credentials = session.get_credentials()
    assert credentials is not None
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("testing", "testing", None)
    assert credentials.method == "env"
    assert session.region_name == "us-east-1"


# --------------------------------------------------------------------------- shared with bench/


def test_fake_aws_env_gives_a_child_only_the_fake_credentials_and_the_repo_on_its_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    env = fake_aws_env()
    assert sorted(name for name in env if name.startswith("AWS_")) == [
        "AWS_ACCESS_KEY_ID",
        "AWS_CONFIG_FILE",
        "AWS_DEFAULT_REGION",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SHARED_CREDENTIALS_FILE",
    ]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO_ROOT)
    code = (
        "import boto3, tests.support; session = boto3.session.Session(); credentials = session.get_credentials(); "
        "print(credentials.method, credentials.access_key, session.region_name)"
    )
    result = run_interpreter(["-c", code], timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["env", "testing", REGION]


def test_attaching_to_new_logs_clients_lasts_for_the_block_and_skips_other_services(endpoint: str) -> None:
    original = botocore.session.Session.create_client
    attached: list[Any] = []
    with attaching_to_new_logs_clients(attached.append):
        inside = make_logs_client(endpoint)
        other = boto3.session.Session().client("sts", region_name=REGION, endpoint_url=endpoint)
    after = make_logs_client(endpoint)
    try:
        assert attached == [inside]
        assert botocore.session.Session.create_client is original
    finally:
        for client in (inside, other, after):
            client.close()


# --------------------------------------------------------------------------- recorder + injector


def test_put_recorder_records_calls_and_attempts(
    endpoint: str, put_recorder: PutLogEventsRecorder, fault_injector: Any
) -> None:
    client = make_logs_client(endpoint, max_attempts=2)  # created after both fixtures
    try:
        create_group_and_stream(client, GROUP, STREAM)
        # A 500 is retried by botocore (short non-throttling backoff): one call, two attempts.
        fault_injector.set_schedule(["500"])
        first = _events(3, prefix="x")
        _put(client, first)
        second = _events(2, first[-1]["timestamp"] + 1, prefix="y\u00e9")
        _put(client, second)
    finally:
        client.close()

    assert put_recorder.event_counts == [3, 2]
    assert put_recorder.batches == [first, second]
    assert put_recorder.calls[0]["logGroupName"] == GROUP
    assert put_recorder.calls[0]["logStreamName"] == STREAM
    assert put_recorder.messages == ["x0", "x1", "x2", "y\u00e90", "y\u00e91"]
    assert len(put_recorder.attempts) == 3 and put_recorder.attempts[0] == put_recorder.attempts[1]
    assert fault_injector.actions == ["500", "ok", "ok"]
    # "yé0": 4 UTF-8 bytes + 26 overhead each.
    assert PutLogEventsRecorder.batch_size(second) == 2 * (4 + 26)
    assert len(read_events(client, GROUP, STREAM)) == 5


def test_put_recorder_attach_existing_client(logs_client: Any) -> None:
    recorder = PutLogEventsRecorder().attach(logs_client)
    recorder.attach(logs_client)  # idempotent
    create_group_and_stream(logs_client, GROUP, STREAM)
    _put(logs_client, _events(4))
    assert recorder.event_counts == [4]


INJECTED = [
    ("throttle", 400, "ThrottlingException"),
    ("500", 500, "InternalFailure"),
    ("503", 503, "ServiceUnavailableException"),
    ("invalid", 400, "InvalidParameterException"),
    ("notfound", 400, "ResourceNotFoundException"),
    ("denied", 400, "AccessDeniedException"),
    ("unrecognized", 400, "UnrecognizedClientException"),
    ("expired", 400, "ExpiredTokenException"),
    ("limit", 400, "LimitExceededException"),
    (("error", 418, "TeapotException", "short and stout"), 418, "TeapotException"),
]


@pytest.fixture
def single_attempt_client(endpoint: str, fault_injector: Any) -> Iterator[Any]:
    client = make_logs_client(endpoint, max_attempts=1)
    create_group_and_stream(client, GROUP, STREAM)
    yield client
    client.close()


@pytest.mark.parametrize(("action", "status", "code"), INJECTED, ids=[str(a[0]) for a in INJECTED])
def test_fault_injector_error_codes(
    single_attempt_client: Any, fault_injector: Any, action: Any, status: int, code: str
) -> None:
    client = single_attempt_client
    fault_injector.set_schedule([action, "ok"])
    events = _events(2)
    with pytest.raises(ClientError) as info:
        _put(client, events)
    assert _error_code(info.value) == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert info.value.response["Error"]["Message"]
    assert info.value.operation_name == "PutLogEvents"
    assert read_events(client, GROUP, STREAM) == []  # never reached moto
    _put(client, events)  # "ok": passes through
    assert read_events(client, GROUP, STREAM) == events
    assert fault_injector.actions == [action, "ok"]


@pytest.mark.parametrize(("action", "error"), [("reset", ConnectionClosedError), ("timeout", ReadTimeoutError)])
def test_fault_injector_connection_errors(
    single_attempt_client: Any, fault_injector: Any, action: str, error: type[Exception]
) -> None:
    fault_injector.set_schedule([action])
    with pytest.raises(error):
        _put(single_attempt_client, _events(1))
    assert read_events(single_attempt_client, GROUP, STREAM) == []


def test_fault_injector_only_touches_put_log_events(single_attempt_client: Any, fault_injector: Any) -> None:
    fault_injector.set_schedule(["throttle"] * 5)
    # Other operations are not scheduled: the throttles are all still pending.
    single_attempt_client.describe_log_streams(logGroupName=GROUP)
    assert fault_injector.calls == 0


def test_fault_injector_unknown_action(single_attempt_client: Any, fault_injector: Any) -> None:
    fault_injector.set_schedule(["bogus"])
    with pytest.raises(ValueError, match="bogus"):
        _put(single_attempt_client, _events(1))


# --------------------------------------------------------------------------- fault proxy


@pytest.fixture
def proxied(fault_proxy: FaultProxy, logs_client: Any) -> Iterator[Any]:
    """A fast-failing single-attempt client talking through the proxy."""
    create_group_and_stream(logs_client, GROUP, STREAM)
    client = make_logs_client(fault_proxy.url, max_attempts=1, connect_timeout=2, read_timeout=2)
    yield client
    client.close()


def test_proxy_forwards(fault_proxy: FaultProxy, proxied: Any, logs_client: Any) -> None:
    events = _events(3)
    _put(proxied, events)
    assert read_events(proxied, GROUP, STREAM) == events  # reads go through the proxy too
    assert fault_proxy.calls == [("ok", 3)]
    assert fault_proxy.requests[0]["logEvents"] == events


@pytest.mark.parametrize(
    ("action", "status", "code"),
    [
        ("throttle", 400, "ThrottlingException"),
        ("500", 500, "InternalFailure"),
        ("503", 503, "ServiceUnavailableException"),
        ("notfound", 400, "ResourceNotFoundException"),
    ],
)
def test_proxy_error_answers(
    fault_proxy: FaultProxy, proxied: Any, logs_client: Any, action: str, status: int, code: str
) -> None:
    fault_proxy.set_schedule([action])
    # Non-PutLogEvents calls are forwarded and do not consume the schedule.
    proxied.describe_log_streams(logGroupName=GROUP)
    with pytest.raises(ClientError) as info:
        _put(proxied, _events(3))
    assert _error_code(info.value) == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert read_events(logs_client, GROUP, STREAM) == []
    # Schedule exhausted: forwarded, on the same client.
    _put(proxied, _events(2))
    assert len(read_events(logs_client, GROUP, STREAM)) == 2
    assert fault_proxy.calls == [(action, 3), ("ok", 2)]


def test_proxy_reset(fault_proxy: FaultProxy, proxied: Any, logs_client: Any) -> None:
    fault_proxy.set_schedule(["reset"])
    with pytest.raises(ConnectionClosedError):
        _put(proxied, _events(1))
    assert read_events(logs_client, GROUP, STREAM) == []
    _put(proxied, _events(1))  # the pool recovers from the dead connection
    assert fault_proxy.calls == [("reset", 1), ("ok", 1)]


def test_proxy_drop_answer_stores_events(fault_proxy: FaultProxy, proxied: Any, logs_client: Any) -> None:
    fault_proxy.set_schedule(["drop_answer"])
    events = _events(3)
    with pytest.raises(HTTPClientError):
        _put(proxied, events)
    # The client saw a failure, yet moto has the batch: a resend would duplicate it.
    assert read_events(logs_client, GROUP, STREAM) == events


def test_proxy_delay(fault_proxy: FaultProxy, proxied: Any, logs_client: Any) -> None:
    fault_proxy.set_schedule([("delay", 0.3)])
    start = time.monotonic()
    _put(proxied, _events(2))
    assert time.monotonic() - start >= 0.3
    assert len(read_events(logs_client, GROUP, STREAM)) == 2
    assert fault_proxy.count("delay") == 1


def test_proxy_delay_answer_times_out_after_storing(fault_proxy: FaultProxy, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    client = make_logs_client(fault_proxy.url, max_attempts=1, connect_timeout=2, read_timeout=0.2)
    try:
        fault_proxy.set_schedule([("delay_answer", 1.0)])
        with pytest.raises(ReadTimeoutError):
            _put(client, _events(2))
        assert len(read_events(logs_client, GROUP, STREAM)) == 2
    finally:
        client.close()


def test_proxy_hang_released_by_close(endpoint: str, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    proxy = FaultProxy(endpoint, ["hang"])
    client = make_logs_client(proxy.url, max_attempts=1, connect_timeout=2, read_timeout=30)
    outcome: list[BaseException] = []

    def put() -> None:
        try:
            _put(client, _events(1))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=put)
    thread.start()
    try:
        wait_for(lambda: proxy.calls, timeout=5, message="hang call reached the proxy")
        time.sleep(0.1)
        assert thread.is_alive()  # still hanging, far from its 30 s read timeout
        start = time.monotonic()
        proxy.close()
        assert time.monotonic() - start < 2
        thread.join(5)
        assert not thread.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], HTTPClientError)
        assert read_events(logs_client, GROUP, STREAM) == []
    finally:
        proxy.close()  # idempotent
        thread.join(5)
        client.close()


def test_proxy_close_with_idle_keepalive_connections(endpoint: str) -> None:
    proxy = FaultProxy(endpoint)
    client = make_logs_client(proxy.url, max_attempts=1)
    try:
        client.describe_log_groups()  # leaves a pooled keep-alive connection open
        start = time.monotonic()
        proxy.close()
        assert time.monotonic() - start < 2
        assert proxy.errors == []
    finally:
        client.close()


def test_proxy_rate_limit_is_one_bucket_for_every_client(fault_proxy: FaultProxy, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    clients = [make_logs_client(fault_proxy.url, max_attempts=1) for _ in range(2)]
    try:
        bucket = fault_proxy.limit("PutLogEvents", per_second=0.5, burst=2)
        outcomes = []
        for index in range(6):  # alternating clients draw from the same bucket
            try:
                _put(clients[index % 2], _events(1, prefix=f"c{index}-"))
                outcomes.append("ok")
            except ClientError as exc:
                outcomes.append(_error_code(exc))
        assert outcomes == ["ok", "ok"] + ["ThrottlingException"] * 4
        assert (bucket.granted, bucket.refused) == (2, 4)
        assert [op.outcome for op in fault_proxy.ops] == ["accepted"] * 2 + ["limited"] * 4
        assert len(read_events(logs_client, GROUP, STREAM)) == 2  # refused calls never reached moto
        fault_proxy.unlimit("PutLogEvents")
        _put(clients[0], _events(1))
    finally:
        for client in clients:
            client.close()


def test_proxy_rate_limit_refills_and_can_start_closed(fault_proxy: FaultProxy, proxied: Any) -> None:
    fault_proxy.limit("CreateLogStream", per_second=1, burst=1, closed_for=0.3)
    with pytest.raises(ClientError, match="ThrottlingException"):
        proxied.create_log_stream(logGroupName=GROUP, logStreamName="closed")
    time.sleep(0.35)  # the bucket's own schedule: closed for 0.3 s, then one token a second
    proxied.create_log_stream(logGroupName=GROUP, logStreamName="open")
    with pytest.raises(ClientError, match="ThrottlingException"):
        proxied.create_log_stream(logGroupName=GROUP, logStreamName="too-soon")  # burst of 1: spent
    time.sleep(1.05)  # a token's worth of refill
    proxied.create_log_stream(logGroupName=GROUP, logStreamName="refilled")
    outcomes = [(op.operation, op.outcome, op.stream) for op in fault_proxy.ops]
    assert outcomes == [
        ("CreateLogStream", "limited", "closed"),
        ("CreateLogStream", "accepted", "open"),
        ("CreateLogStream", "limited", "too-soon"),
        ("CreateLogStream", "accepted", "refilled"),
    ]
    assert fault_proxy.op_count("CreateLogStream", "limited") == 2


def test_proxy_retry_after_action_sends_the_header(fault_proxy: FaultProxy, proxied: Any) -> None:
    fault_proxy.set_schedule([("retry_after", 1.5)])
    with pytest.raises(ClientError) as caught:
        _put(proxied, _events(1))
    assert _error_code(caught.value) == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-retry-after"] == "1500"


def test_proxy_rejects_unknown_actions(fault_proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="bogus"):
        fault_proxy.set_schedule(["bogus"])
    with pytest.raises(ValueError):
        fault_proxy.set_schedule([("delay",)])


def test_proxy_from_subprocess(fault_proxy: FaultProxy, logs_client: Any) -> None:
    """A child process (as the sink's atexit/fork tests will use) talks through the proxy."""
    create_group_and_stream(logs_client, GROUP, STREAM)
    # 503: retried with botocore's short non-throttling backoff.
    fault_proxy.set_schedule(["503"])
    code = f"""
import os, time, boto3
from botocore.config import Config
c = boto3.client("logs", endpoint_url=os.environ["PROXY_URL"],
                 config=Config(retries={{"mode": "standard", "total_max_attempts": 2}}))
c.put_log_events(logGroupName="{GROUP}", logStreamName="{STREAM}",
                 logEvents=[{{"timestamp": int(time.time() * 1000), "message": "from child"}}])
print("done")
"""
    result = run_python(code, timeout=30, env={"PROXY_URL": fault_proxy.url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert read_messages(logs_client, GROUP, STREAM) == ["from child"]
    assert fault_proxy.calls == [("503", 1), ("ok", 1)]
