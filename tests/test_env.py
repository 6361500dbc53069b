"""Configuration from the environment: LOGURU_CLOUDWATCH_* variables, configure_from_env(), auto-configuration.

In-process tests call ``configure_from_env()`` with variables set by monkeypatch and inspect the sink and
handler it added; what happens at ``import`` (no side effect, shipping from an unchanged script, reload,
fork and spawn children, a bad value) runs in subprocesses with a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from loguru import logger

import loguru_cloudwatch
from loguru_cloudwatch import _env
from loguru_cloudwatch._env import VARIABLES, configure_from_env, read_env
from loguru_cloudwatch._sink import CloudWatchSink
from tests.support import REPO_ROOT
from tests.support.aws import create_group_and_stream, read_json, read_messages
from tests.support.programs import run_python

P = "LOGURU_CLOUDWATCH_"

#: The variables the issue lists, in the option table's order, and those added with the option table (MAX_QUEUE_BYTES,
#: CREATE_LOG_STREAM, LOG_GROUP_CLASS, KMS_KEY_ID).
ISSUE_VARIABLES = [
    P + suffix
    for suffix in [
        "LOG_GROUP",
        "LOG_STREAM",
        "LEVEL",
        "FORMAT",
        "SERIALIZE",
        "EXTRA_KEYS",
        "TRACEBACK_VALUES",
        "FLUSH_INTERVAL",
        "MAX_BATCH_SIZE",
        "MAX_QUEUE_SIZE",
        "MAX_QUEUE_BYTES",
        "SPOOL_DIR",  # issue 12
        "MAX_SPOOL_BYTES",
        "MAX_RETRIES",
        "RETRY_DELAY",
        "CREATE_LOG_GROUP",
        "CREATE_LOG_STREAM",
        "RETENTION_DAYS",
        "LOG_GROUP_CLASS",
        "KMS_KEY_ID",
        "REGION",
        "ENDPOINT_URL",
        "SHUTDOWN_TIMEOUT",
    ]
]


@pytest.fixture(autouse=True)
def clean_env_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LOGURU_CLOUDWATCH_* variable from the outside, and no sink remembered from another test."""
    for name in list(os.environ):
        if name.startswith(P):
            monkeypatch.delenv(name)
    _env.discard_for_cli()
    yield
    _env.discard_for_cli()


def handlers() -> dict[int, Any]:
    return dict(logger._core.handlers)  # type: ignore[attr-defined]


def env_sink() -> CloudWatchSink:
    sink = _env._STATE.sink
    assert isinstance(sink, CloudWatchSink)
    return sink


def setenv(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for suffix, value in values.items():
        monkeypatch.setenv(P + suffix, value)


# --------------------------------------------------------------------------- mapping


def test_the_variables_are_exactly_the_issues_list() -> None:
    assert [variable.name for variable in VARIABLES] == ISSUE_VARIABLES


def test_every_variable_sets_its_option(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    # moto keeps one state per region: the group (CREATE_LOG_GROUP=false below) is made in REGION's.
    client = boto3.session.Session().client("logs", region_name="eu-west-3", endpoint_url=endpoint)
    create_group_and_stream(client, "env-all", "env-stream-x")
    setenv(
        monkeypatch,
        LOG_GROUP="env-all",
        LOG_STREAM="env-stream-{program}",
        LEVEL="warning",
        FORMAT="{level}|{message}|{extra[a]}",
        SERIALIZE="off",
        EXTRA_KEYS=" a, b ,,",
        TRACEBACK_VALUES="yes",
        FLUSH_INTERVAL="0.05",
        MAX_BATCH_SIZE="500",
        MAX_QUEUE_SIZE="2000",
        MAX_QUEUE_BYTES="4194304",
        MAX_RETRIES="5",
        RETRY_DELAY="0.002",
        CREATE_LOG_GROUP="no",
        CREATE_LOG_STREAM="yes",
        RETENTION_DAYS="7",
        LOG_GROUP_CLASS="INFREQUENT_ACCESS",
        KMS_KEY_ID="arn:aws:kms:eu-west-3:111122223333:key/env-test",
        ENDPOINT_URL=endpoint,
        REGION="eu-west-3",
        SHUTDOWN_TIMEOUT="2.5",
    )
    monkeypatch.setattr(sys, "argv", ["x"])  # {program} renders to "x"
    handler_id = configure_from_env()
    assert handler_id is not None and list(handlers()) == [handler_id]
    config = env_sink()._config
    assert (config.log_group, config.log_stream_template, env_sink().log_stream) == (
        "env-all",
        "env-stream-{program}",
        "env-stream-x",
    )
    assert config.serialize is False
    assert config.extra_keys == ("a", "b")
    assert config.traceback_values is True
    assert (config.flush_interval, config.max_batch_size, config.max_queue_size) == (0.05, 500, 2000)
    assert (config.max_retries, config.retry_delay, config.shutdown_timeout) == (5, 0.002, 2.5)
    assert (config.create_log_group, config.retention_days) == (False, 7)
    assert (config.max_queue_bytes, config.create_log_stream) == (4194304, True)
    assert (config.log_group_class, config.kms_key_id) == (
        "INFREQUENT_ACCESS",
        "arn:aws:kms:eu-west-3:111122223333:key/env-test",
    )
    assert (config.endpoint_url, config.region_name) == (endpoint, "eu-west-3")
    assert handlers()[handler_id].levelno == 30  # WARNING
    # The level filters, the format shapes the text that is sent, in the region and at the endpoint set.
    logger.bind(a=1).info("not shipped")
    logger.bind(a=1).warning("shipped")
    assert env_sink().force_flush(timeout=10)
    assert read_messages(client, "env-all", "env-stream-x") == ["WARNING|shipped|1"]


def test_only_the_group_gives_the_sinks_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, LOG_GROUP="env-defaults")
    configure_from_env()
    reference = _env.validate(read_env({P + "LOG_GROUP": "other"}))  # CloudWatchSink("other")'s config
    config = env_sink()._config
    for name in config.__dataclass_fields__:
        if name != "log_group":
            assert getattr(config, name) == getattr(reference, name), name
    assert config.log_stream_template == "{hostname}/{pid}" and config.flush_interval == 2.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *[("1", True), ("true", True), ("TRUE", True), ("Yes", True), (" on ", True)],
        *[("0", False), ("false", False), ("False", False), ("NO", False), ("off", False)],
    ],
)
def test_booleans_accept_the_usual_spellings(text: str, value: bool) -> None:
    config = read_env({P + "LOG_GROUP": "g", P + "SERIALIZE": text, P + "CREATE_LOG_GROUP": text})
    assert config is not None
    assert config.sink_options == {"serialize": value, "create_log_group": value}


def test_small_parsing_rules() -> None:
    def options(**values: str) -> dict[str, Any]:
        config = read_env({P + "LOG_GROUP": "g", **{P + k: v for k, v in values.items()}})
        assert config is not None
        return {**config.sink_options, **config.handler_options}

    assert options(EXTRA_KEYS="request_id, user ,") == {"extra_keys": ("request_id", "user")}
    assert options(EXTRA_KEYS=",") == {"extra_keys": ()}  # no key at all: no extra field is sent
    assert options(LEVEL="error") == {"level": "ERROR"}
    assert options(LEVEL="25") == {"level": 25}
    assert options(MAX_BATCH_SIZE=" 1_000 ") == {"max_batch_size": 1000}
    assert options(FLUSH_INTERVAL="", REGION="  ") == {}  # empty counts as unset
    assert options(FORMAT=" {time:HH:mm} {level.name} {extra[k]} {message} ") == {
        "format": " {time:HH:mm} {level.name} {extra[k]} {message} "
    }
    assert read_env({}) is None
    assert read_env({P + "LOG_GROUP": "  ", P + "LEVEL": "nonsense"}) is None  # unset group: nothing is read


@pytest.mark.parametrize(
    ("suffix", "value", "accepted"),
    [
        ("LOG_GROUP", "aws/reserved", "not start with 'aws/'"),
        ("LOG_GROUP", "has space", "[.-_/#A-Za-z0-9]"),
        ("LOG_STREAM", "{host}", "only the fields"),
        ("LEVEL", "LOUD", "a level name"),
        ("LEVEL", "-5", "an integer >= 0"),
        ("FORMAT", "{nope} {message}", "the record's fields"),
        ("FORMAT", "<red>{message}</blue>", "color markups"),
        ("SERIALIZE", "maybe", "1, true, yes, on"),
        ("FLUSH_INTERVAL", "soon", "a number of seconds"),
        ("FLUSH_INTERVAL", "0", "> 0"),
        ("MAX_BATCH_SIZE", "20000", "from 1 to 10,000"),
        ("MAX_BATCH_SIZE", "1.5", "an integer"),
        ("MAX_QUEUE_SIZE", "0", "from 1 to"),
        ("MAX_RETRIES", "-1", "from 0 to 100"),
        ("RETRY_DELAY", "1s", "a number of seconds"),
        ("CREATE_LOG_GROUP", "2", "0, false, no, off"),
        ("RETENTION_DAYS", "8", "1, 3, 5, 7"),
        ("ENDPOINT_URL", "localhost:4566", "http:// or https://"),
        ("REGION", "us east 1", "region name"),
        ("SHUTDOWN_TIMEOUT", "-3", ">= 0"),
        ("SPOOL_DIR", "/dev/null/spool", "a directory this process can create and write to, but it cannot be created"),
        ("MAX_SPOOL_BYTES", "1000", "from 4,194,304"),
    ],
)
def test_a_bad_value_raises_naming_variable_value_and_accepted(
    monkeypatch: pytest.MonkeyPatch, suffix: str, value: str, accepted: str
) -> None:
    setenv(monkeypatch, **{"LOG_GROUP": "g", suffix: value})
    with pytest.raises(ValueError) as error:
        configure_from_env()
    message = str(error.value)
    assert message.startswith(f"{P}{suffix}={value!r} is invalid: expected "), message
    assert accepted in message, message
    assert "\n" not in message
    assert handlers() == {} and _env._STATE.sink is None  # nothing was added


# --------------------------------------------------------------------------- idempotency


def test_configure_again_returns_the_same_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, LOG_GROUP="g", SHUTDOWN_TIMEOUT="1")
    first = configure_from_env()
    sink = env_sink()
    assert configure_from_env() == first and loguru_cloudwatch.configure_from_env() == first
    assert list(handlers()) == [first] and env_sink() is sink


def test_a_removed_handler_is_added_again(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, LOG_GROUP="g", SHUTDOWN_TIMEOUT="1")
    first = configure_from_env()
    logger.remove()  # e.g. a notebook resetting loguru's handlers
    second = configure_from_env()
    assert second is not None and second != first and list(handlers()) == [second]


def test_a_changed_environment_replaces_the_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, LOG_GROUP="g", SHUTDOWN_TIMEOUT="1")
    first = configure_from_env()
    old_sink = env_sink()
    setenv(monkeypatch, LEVEL="ERROR")
    second = configure_from_env()
    assert second != first and list(handlers()) == [second]
    assert handlers()[second].levelno == 40
    assert old_sink._stopped and not env_sink()._stopped
    # A bad value then changes nothing: the error is raised and the working sink stays.
    setenv(monkeypatch, FLUSH_INTERVAL="never")
    with pytest.raises(ValueError, match="FLUSH_INTERVAL='never'"):
        configure_from_env()
    assert list(handlers()) == [second]
    # The group variable unset: None, and the installed sink is left alone.
    monkeypatch.delenv(P + "LOG_GROUP")
    assert configure_from_env() is None
    assert list(handlers()) == [second]


def test_a_bad_value_on_reimport_keeps_the_sink_and_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setenv(monkeypatch, LOG_GROUP="g", SHUTDOWN_TIMEOUT="1")
    first = configure_from_env()
    setenv(monkeypatch, MAX_RETRIES="lots")
    _env.configure_on_import()  # what a reload of the package runs
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"loguru-cloudwatch: {P}MAX_RETRIES='lots' is invalid: expected an integer from 0 to 100; "
        "the sink configured earlier is kept"
    ]
    assert list(handlers()) == [first]


def test_an_unknown_variable_is_named_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setenv(monkeypatch, LOG_GROUP="g", LEVL="INFO", SHUTDOWN_TIMEOUT="1")
    assert configure_from_env() is not None
    err = capsys.readouterr().err
    assert f"{P}LEVL is not a variable of this package" in err and f"did you mean {P}LEVEL?" in err
    configure_from_env()
    assert capsys.readouterr().err == ""  # said once, not on every call


@pytest.mark.parametrize(
    ("orig_argv", "expected"),
    [
        (["python", "-m", "loguru_cloudwatch", "demo"], True),
        (["python", "-Im", "loguru_cloudwatch", "check"], True),
        (["python", "-mloguru_cloudwatch"], True),
        (["python", "-X", "dev", "-m", "loguru_cloudwatch.__main__"], True),
        (["python", "-m", "myapp"], False),
    ],
)
def test_the_command_lines_own_import_is_recognized(
    monkeypatch: pytest.MonkeyPatch, orig_argv: list[str], expected: bool
) -> None:
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    monkeypatch.setattr(sys, "argv", ["-m"])  # what it is while -m locates the module
    assert _env.launched_as_own_cli() is expected
    monkeypatch.setattr(sys, "argv", ["/path/to/script.py"])
    assert _env.launched_as_own_cli() is False


# --------------------------------------------------------------------------- on import (subprocesses)


def sink_env(endpoint: str, group: str, **values: str) -> dict[str, str]:
    return {
        P + "LOG_GROUP": group,
        P + "ENDPOINT_URL": endpoint,
        P + "FLUSH_INTERVAL": "0.05",
        P + "RETRY_DELAY": "0.005",
        P + "SHUTDOWN_TIMEOUT": "5",
        **{P + k: v for k, v in values.items()},
    }


def run_script(script: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``python script`` from the repo root, as a user would run an unchanged program."""
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def all_messages(client: Any, group: str) -> dict[str, list[Any]]:
    """Every stream of the group with its JSON documents' messages."""
    names = [s["logStreamName"] for s in client.describe_log_streams(logGroupName=group)["logStreams"]]
    return {name: [document["message"] for document in read_json(client, group, name)] for name in names}


def test_import_without_the_group_has_no_side_effect() -> None:
    code = """
        import sys, threading
        before = threading.active_count()
        import loguru_cloudwatch
        from loguru import logger
        from loguru_cloudwatch import _sink
        print(threading.active_count() - before, list(logger._core.handlers), len(_sink._live_sinks))
    """
    env = {P + "LEVEL": "INFO", P + "ENDPOINT_URL": "http://127.0.0.1:9"}  # set, but not the group
    result = run_python(textwrap.dedent(code), timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0 [0] 0\n"  # no thread, only loguru's own default handler, no sink
    assert result.stderr == ""


def test_import_with_the_group_ships_records_from_an_unchanged_script(
    endpoint: str, logs_client: Any, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            import loguru_cloudwatch  # the only line about CloudWatch
            from loguru import logger

            logger.bind(request_id="r-1").info("hello {}", "world")
            try:
                1 / 0
            except ZeroDivisionError:
                logger.exception("failed")
            print("done")
            """
        )
    )
    result = run_script(script, sink_env(endpoint, "env-import", LOG_STREAM="{program}"), timeout=40)
    assert result.returncode == 0 and result.stdout == "done\n", result.stderr
    assert "loguru-cloudwatch" not in result.stderr, result.stderr
    documents = read_json(logs_client, "env-import", "app.py")
    assert [d["message"] for d in documents] == ["hello world", "failed"]
    assert documents[0]["request_id"] == "r-1"
    assert documents[1]["exception"]["type"] == "ZeroDivisionError"


def test_reload_reimport_and_configure_again_keep_one_sink(endpoint: str, logs_client: Any) -> None:
    code = """
        import importlib, json
        import loguru_cloudwatch
        from loguru import logger
        from loguru_cloudwatch import _env, _sink
        first = _env._STATE.handler_id
        import loguru_cloudwatch as again
        importlib.reload(loguru_cloudwatch)
        importlib.reload(_env)
        importlib.reload(loguru_cloudwatch)
        ids = [loguru_cloudwatch.configure_from_env(), again.configure_from_env(), first]
        live = [s for s in _sink._live_sinks if not s._stopped]
        logger.info("once")
        print(json.dumps({"ids": ids, "handlers": list(logger._core.handlers), "live": len(live)}))
    """
    result = run_python(textwrap.dedent(code), timeout=40, env=sink_env(endpoint, "env-reload", LOG_STREAM="one"))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    first = info["ids"][2]
    assert info["ids"] == [first, first, first]
    assert info["handlers"] == [0, first] and info["live"] == 1
    assert [d["message"] for d in read_json(logs_client, "env-reload", "one")] == ["once"]


def test_a_bad_value_on_import_prints_one_line_and_the_program_continues() -> None:
    code = """
        import loguru_cloudwatch
        from loguru import logger
        from loguru_cloudwatch import _sink
        print("continued", list(logger._core.handlers), len(_sink._live_sinks))
    """
    env = {P + "LOG_GROUP": "g", P + "FLUSH_INTERVAL": "every second"}
    result = run_python(textwrap.dedent(code), timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "continued [0] 0\n"
    assert result.stderr.splitlines() == [
        f"loguru-cloudwatch: {P}FLUSH_INTERVAL='every second' is invalid: expected a number of seconds, e.g. 2.0; "
        "no CloudWatch sink was added"
    ]


def test_a_spool_dir_that_cannot_be_created_is_one_line_at_import_and_nothing_is_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = """
        import loguru_cloudwatch
        from loguru import logger
        print("continued", list(logger._core.handlers))
    """
    env = {P + "LOG_GROUP": "g", P + "SPOOL_DIR": str(blocker / "spool")}
    result = run_python(textwrap.dedent(code), timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "continued [0]\n"
    [line] = result.stderr.splitlines()
    assert line.startswith(f"loguru-cloudwatch: {P}SPOOL_DIR={str(blocker / 'spool')!r} is invalid: expected a "), line
    assert line.endswith("it cannot be created: Not a directory; no CloudWatch sink was added"), line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")
def test_a_forked_child_keeps_the_inherited_sink(endpoint: str, logs_client: Any) -> None:
    code = """
        import json, multiprocessing, os
        import loguru_cloudwatch
        from loguru import logger

        def child(queue):
            queue.put([loguru_cloudwatch.configure_from_env(), list(logger._core.handlers)])
            logger.info("from the child")  # delivered at the child's exit by the sink's own finalizer

        parent_id = loguru_cloudwatch.configure_from_env()
        logger.info("from the parent")
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,))
        process.start()
        seen = queue.get(timeout=20)
        process.join(20)
        print(json.dumps({"parent": parent_id, "child": seen, "code": process.exitcode}))
    """
    env = sink_env(endpoint, "env-fork", LOG_STREAM="p{pid}")
    result = run_python(textwrap.dedent(code), timeout=40, env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["code"] == 0
    assert info["child"] == [info["parent"], [0, info["parent"]]]  # the same, single sink
    streams = all_messages(logs_client, "env-fork")
    assert sorted(streams.values()) == [["from the child"], ["from the parent"]], streams


def test_a_spawned_child_configures_its_own_sink_once(endpoint: str, logs_client: Any, tmp_path: Path) -> None:
    script = tmp_path / "spawner.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, multiprocessing
            import loguru_cloudwatch
            from loguru import logger
            from loguru_cloudwatch import _sink

            def child(queue):
                live = [s for s in _sink._live_sinks if not s._stopped]
                queue.put([len(live), list(logger._core.handlers), loguru_cloudwatch.configure_from_env()])
                logger.info("from the spawned child")

            if __name__ == "__main__":
                logger.info("from the parent")
                context = multiprocessing.get_context("spawn")
                queue = context.Queue()
                process = context.Process(target=child, args=(queue,))
                process.start()
                seen = queue.get(timeout=30)
                process.join(30)
                print(json.dumps({"child": seen, "code": process.exitcode}))
            """
        )
    )
    result = run_script(script, sink_env(endpoint, "env-spawn", LOG_STREAM="p{pid}"), timeout=50)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["code"] == 0
    live, child_handlers, child_id = info["child"]
    assert live == 1 and child_handlers == [0, child_id]
    streams = all_messages(logs_client, "env-spawn")
    assert sorted(streams.values()) == [["from the parent"], ["from the spawned child"]], streams


# --------------------------------------------------------------------------- every bad variable at once


def test_every_bad_variable_is_named_in_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, LOG_GROUP="env-bad", FLUSH_INTERVAL="2s", MAX_RETRIES="1000", RETENTION_DAYS="2", SERIALIZE="x")
    with pytest.raises(ValueError) as raised:
        configure_from_env()
    text = str(raised.value)
    for fragment in (
        f"{P}FLUSH_INTERVAL='2s' is invalid: expected a number of seconds",  # cannot be parsed
        f"{P}SERIALIZE='x' is invalid: expected one of 1, true",  # cannot be parsed
        f"{P}MAX_RETRIES='1000' is invalid: expected an integer from 0 to 100",  # refused by the sink
        f"{P}RETENTION_DAYS='2' is invalid: expected one of 1, 3, 5",  # refused, without "None or"
    ):
        assert fragment in text, text
    assert "None" not in text
    assert handlers() == {}  # nothing was added


def test_every_refused_variable_is_named_when_all_of_them_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, LOG_GROUP="env-bad", MAX_BATCH_SIZE="0", SHUTDOWN_TIMEOUT="-1")
    with pytest.raises(ValueError) as raised:
        configure_from_env()
    assert f"{P}MAX_BATCH_SIZE='0' is invalid" in str(raised.value)
    assert f"{P}SHUTDOWN_TIMEOUT='-1' is invalid" in str(raised.value)


def test_every_bad_variable_is_on_the_one_stderr_line_at_import() -> None:
    result = run_python(
        "import loguru_cloudwatch",
        timeout=60,
        env={P + "LOG_GROUP": "env-bad", P + "MAX_QUEUE_SIZE": "many", P + "RETRY_DELAY": "-5"},
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("loguru-cloudwatch:")]
    assert len(lines) == 1, result.stderr
    assert f"{P}MAX_QUEUE_SIZE='many' is invalid" in lines[0] and f"{P}RETRY_DELAY='-5' is invalid" in lines[0]
    assert lines[0].endswith("no CloudWatch sink was added")
