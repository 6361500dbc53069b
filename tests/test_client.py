"""Reaching CloudWatch (``_client``): the credential guard, the region and client used, no secret shown,
and slow credential sources.

The guard: no API call without credentials and a region, records kept, resumption by itself. Which region
and client the sink uses (``AWS_REGION``, ``region_name``, a session's, an injected client); the credential
lookup never runs on the caller's thread; credentials never leak into anything the sink shows (stats,
repr, reports, stderr). What one sink waits for holds back neither another sink nor a fork: the slow
credential source is a real one, a profile whose ``credential_process`` takes seconds (as an SSO helper,
a vault agent or an unreachable instance metadata service can), run by botocore itself.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._retry import Timings
from tests.support.aws import create_group_and_stream, make_logs_client, read_messages
from tests.support.faults import FaultInjector
from tests.support.foreign_endpoint import ForeignEndpoint
from tests.support.problems import ProblemLog, Problems
from tests.support.programs import run_python
from tests.support.recorders import ApiCallRecorder, PutLogEventsRecorder
from tests.support.sinks import add_text_sink, log_many
from tests.support.waiting import wait_for

GROUP = "client-group"
STREAM = "client-stream"
KEY_ID = "AKIADISTINCTIVE7777"
SECRET = "wJalrXUtnFEMI/K7MDENG/Distinctive+Secret+42"


# --------------------------------------------------------------------------- helpers


class LookupSpy:
    """Wraps botocore's credential lookup: counts calls, notes the calling threads, can make it slow."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._lock = threading.Lock()
        self.threads: list[int] = []
        self.delay = 0.0
        original = botocore.session.Session.get_credentials
        spy = self

        def get_credentials(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            with spy._lock:
                spy.threads.append(threading.get_ident())
            if spy.delay:
                time.sleep(spy.delay)
            return original(session, *args, **kwargs)

        monkeypatch.setattr(botocore.session.Session, "get_credentials", get_credentials)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.threads)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> LookupSpy:
    return LookupSpy(monkeypatch)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, logs_client: Any) -> ApiCallRecorder:
    """Every logs API call and HTTP attempt of clients created after the test's own ``logs_client``."""
    return ApiCallRecorder().install(monkeypatch)


@pytest.fixture
def fast_recheck(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(credential_recheck=0.2))
    return 0.2


SINK_DEFAULTS: dict[str, Any] = {"flush_interval": 0.05, "retry_delay": 0.005, "shutdown_timeout": 1.0}


def add_sink(endpoint_url: str | None, stream: str = STREAM, **options: Any) -> CloudWatchSink:
    return add_text_sink(GROUP, stream, endpoint_url, SINK_DEFAULTS, **options)


def wait_stored(client: Any, count: int, stream: str = STREAM, timeout: float = 10.0) -> list[str]:
    wait_for(
        lambda: len(read_messages(client, GROUP, stream)) >= count,
        timeout=timeout,
        interval=0.05,
        message=f"{count} events stored",
    )
    return read_messages(client, GROUP, stream)


def regional_client(endpoint: str, region: str) -> Any:
    return boto3.session.Session().client("logs", region_name=region, endpoint_url=endpoint)


# --------------------------------------------------------------------------- the guard


def test_without_credentials_no_call_is_made_and_delivery_resumes_by_itself(
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    put_recorder: PutLogEventsRecorder,
    api: ApiCallRecorder,
    problems: Problems,
    lookups: LookupSpy,
    fast_recheck: float,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    sink = add_sink(endpoint, on_error=problems)
    start = time.monotonic()

    messages = log_many("waiting", 8)
    # Several flush intervals (50 ms) and credential re-checks (200 ms) go by.
    wait_for(lambda: lookups.count >= 4, timeout=10, message="credentials looked for again")
    assert not sink.force_flush(0.2)
    elapsed = time.monotonic() - start

    assert problems.kinds() == ["no_credentials"]
    [problem] = problems.of("no_credentials")
    assert "no AWS credentials found" in problem.message
    stats = sink.stats
    assert (stats.queued, stats.sent, stats.dropped, stats.failed) == (8, 0, 0, 0)
    # No client, no HTTP request of any kind.
    assert api.clients == [] and api.attempts == []
    assert put_recorder.attempts == []
    # Re-checked now and then, not at every flush.
    assert lookups.count <= elapsed / fast_recheck + 2, (lookups.count, elapsed)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert wait_stored(logs_client, 8) == messages
    wait_for(lambda: sink.stats.sent == 8, message="sent counted")
    assert problems.kinds() == ["no_credentials", "recovered"]
    assert {attempt.operation for attempt in api.attempts} == {"PutLogEvents"}


@pytest.mark.parametrize("variable", ["AWS_DEFAULT_REGION", "AWS_REGION"])
def test_without_region_no_call_is_made_and_delivery_resumes_when_one_appears(
    variable: str,
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    api: ApiCallRecorder,
    problems: Problems,
    lookups: LookupSpy,
    fast_recheck: float,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    sink = add_sink(endpoint, on_error=problems)

    messages = log_many("no-region", 6)
    wait_for(lambda: problems.count("no_credentials") == 1, message="no_credentials reported")
    # Several flush intervals and re-checks later, still one report and no request.
    deadline = time.monotonic() + 3 * fast_recheck
    while time.monotonic() < deadline:
        assert not sink.force_flush(0.1)
    [problem] = problems.of("no_credentials")
    assert "no AWS region" in problem.message
    assert problems.kinds() == ["no_credentials"]
    assert api.clients == [] and api.attempts == []
    assert (sink.stats.queued, sink.stats.sent) == (6, 0)

    monkeypatch.setenv(variable, "us-east-1")
    assert wait_stored(logs_client, 6) == messages
    wait_for(lambda: problems.count("recovered") == 1, message="recovered reported")
    assert problems.kinds() == ["no_credentials", "recovered"]
    assert {attempt.region for attempt in api.attempts} == {"us-east-1"}


# --------------------------------------------------------------------------- which region, which client


def test_aws_region_alone_is_honoured(
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    api: ApiCallRecorder,
    problems: Problems,
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    sink = add_sink(endpoint, on_error=problems)
    messages = log_many("aws-region", 4)
    assert sink.force_flush(5)

    assert sink._worker.shipper.client.meta.region_name == "eu-west-1"
    assert {attempt.region for attempt in api.attempts} == {"eu-west-1"}  # signed for eu-west-1
    assert wait_stored(regional_client(endpoint, "eu-west-1"), 4) == messages
    assert logs_client.describe_log_groups()["logGroups"] == []  # nothing in us-east-1
    assert problems.kinds() == []


@pytest.mark.parametrize(
    ("environment", "option", "expected"),
    [
        ({"AWS_REGION": "eu-west-1"}, "ap-southeast-2", "ap-southeast-2"),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}, "eu-central-1", "eu-central-1"),
        ({"AWS_DEFAULT_REGION": "us-west-2"}, None, "us-west-2"),
    ],
)
def test_region_name_option_beats_the_environment(
    environment: dict[str, str],
    option: str | None,
    expected: str,
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    api: ApiCallRecorder,
    problems: Problems,
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    sink = add_sink(endpoint, on_error=problems, region_name=option)
    messages = log_many("region-option", 3)
    assert sink.force_flush(5)

    assert sink._worker.shipper.client.meta.region_name == expected
    assert {attempt.region for attempt in api.attempts} == {expected}
    assert wait_stored(regional_client(endpoint, expected), 3) == messages


def test_a_given_sessions_region_beats_aws_region(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, api: ApiCallRecorder, problems: Problems
) -> None:
    # AWS_REGION is honoured only as a default: a session the user configured says where to send.
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    sink = add_sink(endpoint, on_error=problems, session=boto3.session.Session(region_name="ap-northeast-1"))
    messages = log_many("session-region", 3)
    assert sink.force_flush(5)

    assert {attempt.region for attempt in api.attempts} == {"ap-northeast-1"}
    assert wait_stored(regional_client(endpoint, "ap-northeast-1"), 3) == messages


def test_injected_client_wins_over_session_region_and_endpoint(
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    api: ApiCallRecorder,
    problems: Problems,
    lookups: LookupSpy,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    client = make_logs_client(endpoint, max_attempts=1)  # us-east-1, credentials resolved now
    # Nothing else would work: no credentials in the environment, other regions, a dead endpoint.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    lookups_before = lookups.count
    sink = add_sink(
        "http://127.0.0.1:9",
        client=client,
        session=boto3.session.Session(region_name="ap-northeast-1"),
        region_name="eu-central-1",
        on_error=problems,
    )
    messages = log_many("injected", 5)
    assert sink.force_flush(5)

    assert wait_stored(logs_client, 5) == messages
    assert sink._worker.shipper.client is client
    assert api.clients == [client]  # the sink built no client of its own
    assert {attempt.region for attempt in api.attempts} == {"us-east-1"}
    assert lookups.count == lookups_before  # and looked for no credentials
    assert problems.kinds() == []


# --------------------------------------------------------------------------- never on the caller's thread


def test_construction_and_logging_never_wait_for_the_credential_lookup(
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    problems: Problems,
    lookups: LookupSpy,
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    lookups.delay = 1.0  # e.g. an unreachable instance metadata service

    started = time.perf_counter()
    sink = add_sink(endpoint, on_error=problems, shutdown_timeout=0.2)
    constructed = time.perf_counter() - started
    started = time.perf_counter()
    slowest = 0.0
    for index in range(1000):
        before = time.perf_counter()
        logger.info("fast-{}", index)
        slowest = max(slowest, time.perf_counter() - before)
    logged = time.perf_counter() - started

    # A lookup made on the caller's thread would take a second here.
    assert constructed < 0.5, constructed
    assert slowest < 0.5, slowest
    assert logged < 1.0, logged
    wait_for(lambda: lookups.count >= 1, message="credential lookup started")
    assert threading.get_ident() not in lookups.threads
    wait_for(lambda: problems.count("no_credentials") == 1, timeout=5, message="no_credentials reported")
    assert sink.stats.queued == 1000


# --------------------------------------------------------------------------- no leak


def test_credentials_never_appear_in_stats_repr_reports_or_output(
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    fault_injector: FaultInjector,
    api: ApiCallRecorder,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(auth_retry=0.2))
    create_group_and_stream(logs_client, GROUP, "reported")
    create_group_and_stream(logs_client, GROUP, "printed")
    problems = Problems()
    seen_by_loguru: list[str] = []
    logger.add(lambda message: seen_by_loguru.append(str(message)), level=0, format="{message} {extra}")
    schedule = ["throttle", "500", "timeout", "unrecognized", "expired"]
    texts: list[str] = []

    # Refused and failing calls, reported to on_error and (without on_error) on stderr.
    fault_injector.set_schedule(schedule)
    reported = add_sink(endpoint, "reported", on_error=problems, max_retries=5)
    log_many("reported", 3)
    wait_stored(logs_client, 3, "reported")
    fault_injector.set_schedule(schedule)
    printed = add_sink(endpoint, "printed", max_retries=5)
    log_many("printed", 3)
    wait_stored(logs_client, 3, "printed")
    wait_stored(logs_client, 6, "reported")  # both sinks are loguru handlers: "reported" got these too
    assert {"throttled", "send_failed", "access_denied", "recovered"} <= set(problems.kinds())
    # The distinctive credentials were the ones in use.
    assert {attempt.access_key for attempt in api.attempts} == {KEY_ID}

    # Half of the credentials: reported as a problem, on_error and stderr.
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    partial = add_sink(endpoint, "partial", on_error=problems, shutdown_timeout=0.2)
    partial_printed = add_sink(endpoint, "partial-printed", shutdown_timeout=0.2)
    log_many("partial", 2)
    wait_for(lambda: problems.count("no_credentials") == 1, message="no_credentials reported")
    assert "could not be loaded" in problems.of("no_credentials")[0].message

    sinks = [reported, printed, partial, partial_printed]
    for sink in sinks:
        texts += [repr(sink), repr(sink.stats), str(sink.stats.last_error)]
    logger.remove()  # stop(): the partial sinks state on stderr what they could not deliver
    for sink in sinks:
        texts += [repr(sink), repr(sink.stats)]
    for problem in problems.all():
        texts += [problem.message, repr(problem), str(problem), repr(problem.exception), str(problem.exception)]
    out, err = capfd.readouterr()
    texts += [out, err, *seen_by_loguru]
    assert "loguru-cloudwatch: " in err and "could not be delivered" in err  # stderr was really captured

    for text in texts:
        assert SECRET not in text, text
        assert KEY_ID not in text, text
        assert "Distinctive" not in text, text


# --------------------------------------------------------------------------- slow credential sources


SLOW_SECONDS = 4.0

#: A credential_process: says it started (a marker file), then takes its time.
SLOW_CREDENTIALS = """\
import json, pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
time.sleep(float(sys.argv[2]))
print(json.dumps({"Version": 1, "AccessKeyId": "slow", "SecretAccessKey": "slow-secret"}))
"""


@pytest.fixture
def slow_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile ``slow`` whose credentials take SLOW_SECONDS to come; returns the marker of its start."""
    script = tmp_path / "slow_credentials.py"
    script.write_text(SLOW_CREDENTIALS)
    marker = tmp_path / "lookup-started"
    config = tmp_path / "aws-config"
    config.write_text(
        f"[profile slow]\nregion = us-east-1\ncredential_process = {sys.executable} {script} {marker} {SLOW_SECONDS}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return marker


def test_a_sink_waiting_for_slow_credentials_does_not_delay_another_sink(
    endpoint: str, logs_client: Any, slow_profile: Path
) -> None:
    create_group_and_stream(logs_client, GROUP, "slow")
    create_group_and_stream(logs_client, GROUP, "fast")
    slow = CloudWatchSink(
        GROUP, "slow", serialize=False, endpoint_url=endpoint, flush_interval=60,
        session=boto3.Session(profile_name="slow"),
    )  # fmt: skip
    wait_for(slow_profile.exists, timeout=10, message="the slow credential lookup started")
    fast = CloudWatchSink(GROUP, "fast", serialize=False, endpoint_url=endpoint, flush_interval=60)
    logger.add(slow, format="{message}")
    logger.add(fast, format="{message}")
    logger.info("to both")

    started = time.monotonic()
    assert fast.force_flush(5) is True
    assert time.monotonic() - started < 2.0  # it did not wait for the other sink's lookup
    assert read_messages(logs_client, GROUP, "fast") == ["to both"]
    assert slow.stats.sent == 0  # still looking
    assert slow.force_flush(SLOW_SECONDS + 5) is True  # and it delivers once its credentials come
    assert read_messages(logs_client, GROUP, "slow") == ["to both"]


FORK_DURING_SLOW_LOOKUP = """\
import json, os, pathlib, time
import boto3
from loguru_cloudwatch import CloudWatchSink

sink = CloudWatchSink("client-group", "{pid}", endpoint_url=os.environ["T_URL"],
                      session=boto3.Session(profile_name="slow"), shutdown_timeout=0.5)
marker = pathlib.Path(os.environ["T_MARKER"])
deadline = time.monotonic() + 20
while not marker.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
assert marker.exists()
started = time.monotonic()
pid = os.fork()  # what a pre-fork server does while the sink looks for credentials
if pid == 0:
    os._exit(0)
took = time.monotonic() - started
os.waitpid(pid, 0)
print(json.dumps({"fork": took}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_fork_does_not_wait_for_a_slow_credential_lookup(endpoint: str, slow_profile: Path) -> None:
    result = run_python(
        textwrap.dedent(FORK_DURING_SLOW_LOOKUP),
        timeout=SLOW_SECONDS + 30,
        env={"T_URL": endpoint, "T_MARKER": str(slow_profile)},
    )
    assert result.returncode == 0, result.stderr
    took = json.loads(result.stdout.strip().splitlines()[-1])["fork"]
    assert took < 1.0, took  # it waited 5 s (the fork guard's limit) when the lookup held the guard


# --------------------------------------------------------------------------- an endpoint that is not CloudWatch


@pytest.mark.parametrize("page", ["html", "xml-other"])
def test_a_sink_says_what_answered_instead_of_quoting_the_page(page: str) -> None:
    problems = ProblemLog()
    with ForeignEndpoint(page) as url:
        sink = CloudWatchSink(
            "foreign",
            "stream",
            endpoint_url=url,
            flush_interval=0.05,
            retry_delay=0.001,
            on_error=problems,
            shutdown_timeout=0.5,
        )
        logger_id = logger.add(sink)
        try:
            logger.info("to nowhere")
            messages = wait_for(lambda: [m for *_, m in problems.items if "PutLogEvents" in m], timeout=10)
        finally:
            logger.remove(logger_id)
    assert "not CloudWatch Logs' JSON: check the endpoint URL" in messages[0], messages[0]
    assert "<" not in messages[0] and "\n" not in messages[0]
