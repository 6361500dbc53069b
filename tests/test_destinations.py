"""A second live sink for the same group and stream is said once (``_destinations``): the registry itself,
then real sinks, ``configure_from_env``'s replacement and a forked child."""

from __future__ import annotations

import gc
import os
import uuid
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink, SinkProblem, configure_from_env
from loguru_cloudwatch._destinations import Destination, claim, release
from loguru_cloudwatch._report import DUPLICATE_SINK
from tests.support.programs import run_python


def fresh_destination() -> Destination:
    """A destination no other test uses: the registry is the process's, and says each one once."""
    return Destination(f"group-{uuid.uuid4().hex}", "stream", "eu-west-1", None)


class Owner:
    """Something weakly referable that stands for a sink."""


# --------------------------------------------------------------------------- the registry


def test_the_second_owner_of_a_destination_is_told_once() -> None:
    destination = fresh_destination()
    first, second, third = Owner(), Owner(), Owner()
    assert claim(destination, first) is False
    assert claim(destination, first) is False  # the same owner again is no duplicate
    assert claim(destination, second) is True
    assert claim(destination, third) is False  # said once per destination
    other = destination._replace(log_stream="another-stream")
    assert claim(other, Owner()) is False


def test_a_released_or_collected_owner_is_no_longer_there() -> None:
    destination = fresh_destination()
    first = Owner()
    claim(destination, first)
    release(destination, first)
    assert claim(destination, Owner()) is False  # the first one stopped

    destination = fresh_destination()
    gone = Owner()
    claim(destination, gone)
    del gone
    gc.collect()
    kept = Owner()
    assert claim(destination, kept) is False  # a sink garbage-collected without stop() ships nothing


def test_the_owner_being_replaced_is_no_duplicate() -> None:
    destination = fresh_destination()
    old, new = Owner(), Owner()
    claim(destination, old)
    assert claim(destination, new, replacing=old) is False


def test_the_same_group_and_stream_elsewhere_is_another_destination() -> None:
    destination = fresh_destination()
    claim(destination, Owner())
    assert claim(destination._replace(region_name="us-east-1"), Owner()) is False
    assert claim(destination._replace(endpoint_url="http://127.0.0.1:1"), Owner()) is False


# --------------------------------------------------------------------------- real sinks


def sink_on(group: str, endpoint: str, **options: Any) -> CloudWatchSink:
    return CloudWatchSink(group, "same-stream", endpoint_url=endpoint, flush_interval=60.0, **options)


def test_a_second_sink_on_the_same_stream_is_said_once_on_stderr(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    group = f"dup-{uuid.uuid4().hex[:12]}"
    sinks = [sink_on(group, endpoint)]
    assert capsys.readouterr().err == ""
    sinks += [sink_on(group, endpoint), sink_on(group, endpoint)]
    lines = capsys.readouterr().err.splitlines()
    try:
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"loguru-cloudwatch: a second sink ships to log group {group!r} stream")
        assert "logger.remove(handler_id)" in lines[0]
        sinks.append(CloudWatchSink(group, "another-stream", endpoint_url=endpoint, flush_interval=60.0))
        assert capsys.readouterr().err == ""
    finally:
        for sink in sinks:
            sink.stop()


def test_on_error_gets_the_duplicate_sink_problem(endpoint: str) -> None:
    group = f"dup-{uuid.uuid4().hex[:12]}"
    problems: list[SinkProblem] = []
    first = sink_on(group, endpoint, on_error=problems.append)
    second = sink_on(group, endpoint, on_error=problems.append)
    first.stop()
    second.stop()
    assert [problem.kind for problem in problems] == [DUPLICATE_SINK]
    assert problems[0].count == 0


def test_a_sink_after_the_first_was_removed_is_no_duplicate(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    group = f"dup-{uuid.uuid4().hex[:12]}"
    handler = logger.add(sink_on(group, endpoint))
    logger.remove(handler)  # what a notebook cell should do before adding its sink again
    handler = logger.add(sink_on(group, endpoint))
    logger.remove(handler)
    assert "a second sink" not in capsys.readouterr().err


def test_configure_from_env_replacing_its_sink_is_no_duplicate(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {
        "LOGURU_CLOUDWATCH_LOG_GROUP": f"dup-{uuid.uuid4().hex[:12]}",
        "LOGURU_CLOUDWATCH_LOG_STREAM": "same-stream",
        "LOGURU_CLOUDWATCH_ENDPOINT_URL": endpoint,
    }
    first = configure_from_env(environ)
    second = configure_from_env({**environ, "LOGURU_CLOUDWATCH_LEVEL": "WARNING"})  # replaces the first
    assert first is not None and second is not None and first != second
    logger.remove(second)
    assert "a second sink" not in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_s_sinks_are_no_duplicates_of_the_parent_s(endpoint: str) -> None:
    # In the child the inherited sink starts over on its own stream ({pid}); nothing is said, and a second
    # sink there on the same stream is said in the child.
    code = f"""
import os, sys
from loguru_cloudwatch import CloudWatchSink
sink = CloudWatchSink("dup-fork", "{{pid}}", endpoint_url={endpoint!r}, flush_interval=60.0)
pid = os.fork()
if pid == 0:
    print("child", flush=True)
    second = CloudWatchSink("dup-fork", "{{pid}}", endpoint_url={endpoint!r}, flush_interval=60.0)
    second.stop(); sink.stop()
    os._exit(0)
os.waitpid(pid, 0)
sink.stop()
"""
    result = run_python(code, timeout=30)
    assert result.returncode == 0, result.stderr
    duplicate_lines = [line for line in result.stderr.splitlines() if "a second sink" in line]
    assert len(duplicate_lines) == 1, result.stderr  # the child's own second sink, nothing about the first
