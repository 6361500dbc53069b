"""``python -m loguru_cloudwatch``: demo, check and --help.

The demo and one check run as real ``python -m`` subprocesses with a timeout; the other checks call
``loguru_cloudwatch.__main__.main([...])`` in-process against moto, with refusals injected per operation
through botocore's ``before-send`` hook.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from loguru_cloudwatch import __main__ as cli
from loguru_cloudwatch import _check
from tests.support import REPO_ROOT
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.faults import fabricated_error_response
from tests.support.foreign_endpoint import PAGES, ForeignEndpoint
from tests.support.proxy import FAULTS
from tests.support.recorders import attach_to_new_logs_clients

P = "LOGURU_CLOUDWATCH_"
# Credentials shaped like real ones (moto accepts any): none of the secret parts may ever be printed.
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENVALUE"


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(P):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)


def python_m(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loguru_cloudwatch", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and TOKEN not in text
        assert ACCESS_KEY_ID[:-4] not in text  # at most the last 4 characters of the key id


def refuse(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    """Answer the operations in ``answers`` (operation -> FAULTS key) with that error, on every logs client."""

    def attach(client: Any) -> None:
        for operation, fault in answers.items():

            def answer(request: Any, fault: str = fault, **_: Any) -> Any:
                return fabricated_error_response(request.url, *FAULTS[fault])

            client.meta.events.register(f"before-send.cloudwatch-logs.{operation}", answer)

    attach_to_new_logs_clients(monkeypatch, attach)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- demo


def test_demo_ships_records_and_prints_them_back() -> None:
    # An environment configured for the sink must not leak into the command line's own process: were
    # the demo's records shipped there too, that sink would complain at exit about this dead endpoint.
    env = {P + "LOG_GROUP": "not-for-the-demo", P + "ENDPOINT_URL": "http://127.0.0.1:9", P + "SHUTDOWN_TIMEOUT": "1"}
    result = python_m("demo", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # No traceback, no sink complaint (boto3 itself warns on a Python it is about to stop supporting).
    assert [line for line in result.stderr.splitlines() if "PythonDeprecationWarning" not in line] == []
    out = result.stdout
    assert "Read back with GetLogEvents from demo-group/demo-stream: 4 events" in out
    read_back = out.split("Read back", 1)[1]
    for text in (
        "INFO     order 42 placed by user alice",
        'request_id="r-1001"',
        "ERROR    could not load the cart",
        "exception=KeyError: 'missing'",
        'user={"id": 7, "roles": ["admin"]}',
    ):
        assert text in read_back, text
    assert "not shipped" not in read_back  # the DEBUG record stayed below the handler's level
    assert_no_secret(out)


# --------------------------------------------------------------------------- check: success


def test_check_round_trips_a_test_event(capsys: pytest.CaptureFixture[str], endpoint: str, logs_client: Any) -> None:
    code, out, err = run_main(capsys, "check", "--group", "chk", "--stream", "chk-stream", "--endpoint-url", endpoint)
    assert (code, err) == (0, ""), out + err
    assert "credentials  env: environment variables" in out
    assert "access key id ending in MPLE, temporary (with a session token)" in out
    assert "region       us-east-1 (from AWS_DEFAULT_REGION)" in out
    assert f"endpoint     {endpoint} (from --endpoint-url)" in out
    assert "log group    chk: created by this check" in out
    assert "log stream   chk-stream: created by this check" in out
    assert (
        "(it stays; remove it with: aws logs delete-log-stream --log-group-name chk --log-stream-name chk-stream)"
        in out
    )
    assert "read back    the test event came back" in out
    assert "OK: this setup can ship records to log group 'chk'." in out
    assert "logs:CreateLogGroup, logs:CreateLogStream, logs:PutLogEvents" in out
    [message] = read_messages(logs_client, "chk", "chk-stream")
    assert "loguru-cloudwatch check: test event" in message
    assert_no_secret(out, err)
    # Again: both exist now.
    code, out, _ = run_main(capsys, "check", "--group", "chk", "--stream", "chk-stream", "--endpoint-url", endpoint)
    assert code == 0
    assert "log group    chk: exists" in out and "log stream   chk-stream: exists" in out
    assert len(read_messages(logs_client, "chk", "chk-stream")) == 2


def test_check_takes_its_defaults_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str, logs_client: Any
) -> None:
    monkeypatch.setenv(P + "LOG_GROUP", "env-chk")
    monkeypatch.setenv(P + "LOG_STREAM", "from-env-{program}")
    monkeypatch.setenv(P + "ENDPOINT_URL", endpoint)
    monkeypatch.setenv(P + "RETENTION_DAYS", "14")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setattr(sys, "argv", ["prog"])
    code, out, err = run_main(capsys, "check")
    assert (code, err) == (0, ""), out + err
    assert "4 LOGURU_CLOUDWATCH_* variable(s) set, valid" in out
    assert "region       us-east-1 (from AWS_REGION)" in out
    assert f"(from {P}ENDPOINT_URL)" in out
    assert "created by this check (the sink would have created it), retention 14 days" in out
    assert "logs:PutRetentionPolicy" in out
    [group] = logs_client.describe_log_groups(logGroupNamePrefix="env-chk")["logGroups"]
    assert group["retentionInDays"] == 14
    assert len(read_messages(logs_client, "env-chk", "from-env-prog")) == 1


def test_check_reads_back_with_filter_log_events_when_get_log_events_is_denied(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    refuse(monkeypatch, {"GetLogEvents": "denied"})
    code, out, err = run_main(capsys, "check", "--group", "chk", "--endpoint-url", endpoint)
    assert (code, err) == (0, ""), out + err
    assert "the test event came back" in out


def test_check_subprocess_against_moto(endpoint: str) -> None:
    env = {P + "LOG_GROUP": "sub-chk", P + "ENDPOINT_URL": endpoint}
    result = python_m("check", env=env, timeout=40)
    assert (result.returncode, result.stderr) == (0, ""), result.stdout + result.stderr
    assert "OK: this setup can ship records to log group 'sub-chk'." in result.stdout
    assert_no_secret(result.stdout)


# --------------------------------------------------------------------------- check: failures


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_check_without_credentials(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    code, out, err = run_main(capsys, "check", "--group", "g")
    assert code == 1
    assert "credentials  none found" in out
    assert_one_error_line(err, "no AWS credentials found", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")


def test_check_with_a_missing_profile(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    code, _, err = run_main(capsys, "check", "--group", "g")
    assert code == 1
    assert_one_error_line(err, "AWS credentials could not be loaded", "no-such-profile")


def test_check_without_region(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    code, out, err = run_main(capsys, "check", "--group", "g")
    assert code == 1
    assert "region       none found" in out
    assert_one_error_line(err, "no AWS region configured", "--region", "AWS_REGION", "AWS_DEFAULT_REGION")
    assert_no_secret(out, err)


@pytest.mark.parametrize(
    ("answers", "permission"),
    [
        ({"CreateLogStream": "notfound", "CreateLogGroup": "denied"}, "logs:CreateLogGroup"),
        ({"CreateLogStream": "denied"}, "logs:CreateLogStream"),
        ({"PutLogEvents": "denied"}, "logs:PutLogEvents"),
        ({"GetLogEvents": "denied", "FilterLogEvents": "denied"}, "logs:GetLogEvents"),
    ],
    ids=["CreateLogGroup", "CreateLogStream", "PutLogEvents", "GetLogEvents"],
)
def test_check_names_the_missing_permission(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    answers: dict[str, str],
    permission: str,
) -> None:
    refuse(monkeypatch, answers)
    code, out, err = run_main(capsys, "check", "--group", "chk", "--endpoint-url", endpoint)
    assert code == 1, out + err
    assert_one_error_line(err, f"add the IAM permission {permission}")
    assert "OK:" not in out
    assert_no_secret(out, err)


def test_check_without_read_permission_passes_with_no_read_back(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    refuse(monkeypatch, {"GetLogEvents": "denied", "FilterLogEvents": "denied"})
    code, out, err = run_main(capsys, "check", "--group", "chk", "--endpoint-url", endpoint, "--no-read-back")
    assert (code, err) == (0, ""), out + err
    assert "read back    skipped (--no-read-back)" in out


@pytest.mark.parametrize(
    ("fault", "explanation"),
    [
        ("unrecognized", "AWS does not recognize the credentials (env, access key id ending in MPLE)"),
        ("expired", "have expired (ExpiredTokenException): refresh them"),
    ],
)
def test_check_explains_refused_credentials(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str, fault: str, explanation: str
) -> None:
    refuse(monkeypatch, {"CreateLogStream": fault})
    code, out, err = run_main(capsys, "check", "--group", "chk", "--endpoint-url", endpoint)
    assert code == 1
    assert_one_error_line(err, explanation)
    assert_no_secret(out, err)


def test_check_unreachable_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, _, err = run_main(capsys, "check", "--group", "chk", "--endpoint-url", url)
    assert code == 1
    assert_one_error_line(err, f"cannot reach the CloudWatch Logs endpoint {url}")


@pytest.mark.parametrize(
    ("page", "explanation"),
    [
        ("html", "CreateLogStream failed: HTTP 404 with an HTML page ('404 Not Found'), not CloudWatch Logs' JSON"),
        (
            "xml-unknown-key",
            "the endpoint refused the credentials (env, access key id ending in MPLE) as "
            "InvalidAccessKeyId: HTTP 403 with an XML error, not CloudWatch Logs' JSON",
        ),
        ("xml-bad-signature", "as SignatureDoesNotMatch: HTTP 403 with an XML error"),
        (
            "xml-other",
            "CreateLogStream failed: NoSuchBucket: The specified bucket does not exist (HTTP 404 with an "
            "XML error, not CloudWatch Logs' JSON",
        ),
    ],
)
def test_check_explains_an_endpoint_that_is_not_cloudwatch_in_one_line(
    capsys: pytest.CaptureFixture[str], page: str, explanation: str
) -> None:
    with ForeignEndpoint(page) as url:
        code, _, err = run_main(capsys, "check", "--group", "chk", "--endpoint-url", url)
    assert code == 1
    assert_one_error_line(err, explanation, "check the endpoint URL")
    assert "<" not in err and "DOCTYPE" not in err  # the body is explained, not quoted
    assert PAGES[page][2].split("\n")[-1] not in err


def test_check_missing_group_with_creation_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setenv(P + "CREATE_LOG_GROUP", "false")
    code, _, err = run_main(capsys, "check", "--group", "absent", "--endpoint-url", endpoint)
    assert code == 1
    assert_one_error_line(err, "log group 'absent' does not exist", f"{P}CREATE_LOG_GROUP is false")


def test_check_with_the_group_already_there_does_not_need_to_create_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str, logs_client: Any
) -> None:
    create_group_and_stream(logs_client, "there", "s")
    refuse(monkeypatch, {"CreateLogGroup": "denied"})
    code, out, err = run_main(capsys, "check", "--group", "there", "--stream", "s", "--endpoint-url", endpoint)
    assert (code, err) == (0, ""), out + err
    assert "log group    there: exists" in out


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        ((), {}, ["no log group to check: pass --group NAME or set LOGURU_CLOUDWATCH_LOG_GROUP"]),
        (("--group", "aws/x"), {}, ["--group 'aws/x' is invalid: expected", "aws/"]),
        (("--group", "g", "--endpoint-url", "localhost"), {}, ["--endpoint-url 'localhost' is invalid"]),
        (("--group", "g"), {"MAX_RETRIES": "many"}, [f"{P}MAX_RETRIES='many' is invalid: expected an integer"]),
    ],
)
def test_check_bad_settings_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    fragments: list[str],
) -> None:
    for suffix, value in env.items():
        monkeypatch.setenv(P + suffix, value)
    code, _, err = run_main(capsys, "check", *args)
    assert code == 2
    assert_one_error_line(err, *fragments)


# --------------------------------------------------------------------------- --help


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--help"], ["demo", "check", "COMMAND --help"]),
        (["check", "--help"], ["--group", "--stream", "--region", "--endpoint-url", "--no-read-back", P + "REGION"]),
        (["demo", "--help"], ["no AWS account", "loguru-cloudwatch[demo]"]),
    ],
)
def test_help(capsys: pytest.CaptureFixture[str], args: list[str], fragments: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 0
    for fragment in fragments:
        assert fragment in out


def test_help_through_python_m_and_a_missing_command() -> None:
    result = python_m("check", "--help", timeout=30)
    assert result.returncode == 0 and "usage: python -m loguru_cloudwatch check" in result.stdout
    result = python_m(timeout=30)
    assert result.returncode == 2 and "the following arguments are required: COMMAND" in result.stderr


@pytest.fixture(autouse=True)
def no_leftover_read_back_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_check, "READ_BACK_TIMEOUT", 5.0)  # moto is immediate: a wait this long is a failure
    yield
