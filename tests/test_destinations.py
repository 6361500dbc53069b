"""A second sink shipping to the same group and stream is said once (``_destinations``): the registry
itself, then real sinks on moto, ``configure_from_env``'s replacement and a forked child."""

from __future__ import annotations

import gc
import os
import uuid
from typing import Any

import boto3
import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink, SinkProblem, configure_from_env
from loguru_cloudwatch._destinations import Destination, claim, release
from loguru_cloudwatch._report import DUPLICATE_SINK
from tests.support.aws import REGION
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
    assert claim(destination._replace(log_stream="another-stream"), Owner()) is False


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
    assert claim(destination, Owner()) is False  # a sink garbage-collected without stop() ships nothing


def test_the_same_group_and_stream_elsewhere_is_another_destination() -> None:
    destination = fresh_destination()
    claim(destination, Owner())
    assert claim(destination._replace(region_name="us-east-1"), Owner()) is False
    assert claim(destination._replace(endpoint_url="http://127.0.0.1:1"), Owner()) is False


# --------------------------------------------------------------------------- real sinks


def add_sink(group: str, endpoint: str, **options: Any) -> tuple[CloudWatchSink, int]:
    options.setdefault("endpoint_url", endpoint)
    sink = CloudWatchSink(group, "same-stream", flush_interval=60.0, **options)
    return sink, logger.add(sink, format="{message}")


def ship_one_record(*sinks: CloudWatchSink) -> None:
    """One record through every handler; each sink sends it (its first records: the check runs then)."""
    logger.info("one record")
    for sink in sinks:
        assert sink.force_flush(10), sink.stats


def test_two_sinks_shipping_to_the_same_stream_are_said_once_on_stderr(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    group = f"dup-{uuid.uuid4().hex[:12]}"
    added = [add_sink(group, endpoint) for _ in range(3)]
    try:
        ship_one_record(*(sink for sink, _ in added))
        lines = [line for line in capsys.readouterr().err.splitlines() if "a second sink" in line]
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"loguru-cloudwatch: a second sink ships to log group {group!r} stream")
        assert "logger.remove(handler_id)" in lines[0]
    finally:
        for _, handler in added:
            logger.remove(handler)


def test_on_error_gets_the_duplicate_sink_problem(endpoint: str) -> None:
    group = f"dup-{uuid.uuid4().hex[:12]}"
    problems: list[SinkProblem] = []
    added = [add_sink(group, endpoint, on_error=problems.append) for _ in range(2)]
    try:
        ship_one_record(*(sink for sink, _ in added))
    finally:
        for _, handler in added:
            logger.remove(handler)
    assert [problem.kind for problem in problems] == [DUPLICATE_SINK]
    assert problems[0].count == 0


def test_a_sink_after_the_first_was_removed_is_no_duplicate(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    group = f"dup-{uuid.uuid4().hex[:12]}"
    for _ in range(2):  # what a notebook cell should do before adding its sink again: remove the first
        sink, handler = add_sink(group, endpoint)
        ship_one_record(sink)
        logger.remove(handler)
    assert "a second sink" not in capsys.readouterr().err


def test_a_sink_that_never_shipped_a_record_is_no_duplicate(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    # logger.add() refused the first sink (a bad format), which stays alive while a notebook keeps the error.
    group = f"dup-{uuid.uuid4().hex[:12]}"
    unused = CloudWatchSink(group, "same-stream", endpoint_url=endpoint, flush_interval=60.0)
    with pytest.raises(ValueError):
        logger.add(unused, format="{bad")
    sink, handler = add_sink(group, endpoint)
    try:
        ship_one_record(sink)
    finally:
        logger.remove(handler)
        unused.stop()
    assert "a second sink" not in capsys.readouterr().err


def test_sinks_with_clients_of_two_regions_are_no_duplicates(endpoint: str) -> None:
    group = f"dup-{uuid.uuid4().hex[:12]}"
    problems: list[SinkProblem] = []
    added = [
        add_sink(
            group,
            endpoint,
            client=boto3.client("logs", region_name=region, endpoint_url=endpoint),
            on_error=problems.append,
        )
        for region in (REGION, "eu-west-1")
    ]
    try:
        ship_one_record(*(sink for sink, _ in added))
    finally:
        for _, handler in added:
            logger.remove(handler)
    assert DUPLICATE_SINK not in [problem.kind for problem in problems]


def test_configure_from_env_replacing_its_sink_is_no_duplicate(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {
        "LOGURU_CLOUDWATCH_LOG_GROUP": f"dup-{uuid.uuid4().hex[:12]}",
        "LOGURU_CLOUDWATCH_LOG_STREAM": "same-stream",
        "LOGURU_CLOUDWATCH_ENDPOINT_URL": endpoint,
    }
    first = configure_from_env(environ)
    logger.info("to the first sink")
    second = configure_from_env({**environ, "LOGURU_CLOUDWATCH_LEVEL": "WARNING"})  # replaces the first
    assert first is not None and second is not None and first != second
    logger.warning("to the second sink")
    logger.remove(second)
    assert "a second sink" not in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_s_sinks_are_no_duplicates_of_the_parent_s(endpoint: str) -> None:
    # The parent ships to its stream; in the child the inherited sink starts over and ships to the same
    # static stream: another process, no duplicate. A second sink in the child is one, said in the child.
    code = f"""
import os
from loguru import logger
from loguru_cloudwatch import CloudWatchSink
logger.remove()
def sink():
    return CloudWatchSink("dup-fork", "static-stream", endpoint_url={endpoint!r}, flush_interval=60.0)
first = sink()
logger.add(first, format="{{message}}")
logger.info("parent")
assert first.force_flush(10)
pid = os.fork()
if pid == 0:
    logger.info("child, one sink")
    assert first.force_flush(10)
    print("child: one sink done", flush=True)
    second = sink()
    logger.add(second, format="{{message}}")
    logger.info("child, two sinks")
    assert first.force_flush(10) and second.force_flush(10)
    logger.remove()
    os._exit(0)
os.waitpid(pid, 0)
logger.remove()
"""
    result = run_python(code, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "child: one sink done" in result.stdout
    duplicate_lines = [line for line in result.stderr.splitlines() if "a second sink" in line]
    assert len(duplicate_lines) == 1, result.stderr  # the child's own second sink, nothing about the first
