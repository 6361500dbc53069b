"""The sink's lifecycle (``_sink``): stop(), force_flush() (the sink's and the module's), complete(),
enqueue=True, and no flush() method.

What loguru does with a stream sink (see ../shared/reference/loguru-sinks.md): ``stop()`` on ``remove()``
and at exit (``atexit(logger.remove)``), ``complete()`` awaited by ``await logger.complete()``, ``flush()``
after every write if it exists. Hang checks are bounded by the sink's own timeouts; the warning check of
a synchronous ``complete()`` also runs in a fresh interpreter, a subprocess with a timeout. How a whole
program ends (its end, ``sys.exit``, an exception, SIGTERM) is in ``tests/scenarios/test_exit.py``.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import os
import sys
import textwrap
import time
import warnings
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink, SinkProblem
from tests.support.aws import create_group_and_stream, read_json
from tests.support.moto_server import free_port
from tests.support.programs import JSON_SINK_FROM_ENV, run_interpreter, run_python
from tests.support.proxy import FaultProxy
from tests.support.recorders import PutLogEventsRecorder
from tests.support.waiting import wait_for

GROUP = "sink-group"
STREAM = "sink-stream"


def make_sink(url: str, **options: Any) -> CloudWatchSink:
    """A sink on ``url`` that sends nothing unless asked to (long flush_interval): tests decide when."""
    options.setdefault("flush_interval", 60.0)
    options.setdefault("retry_delay", 0.005)
    options.setdefault("shutdown_timeout", 3.0)
    return CloudWatchSink(GROUP, STREAM, endpoint_url=url, **options)


def stored_messages(client: Any, stream: str = STREAM) -> list[str]:
    return [document["message"] for document in read_json(client, GROUP, stream)]


def run_child(body: str, url: str, stream: str, timeout: float = 30, **env: str) -> Any:
    """Run the sink of ``JSON_SINK_FROM_ENV`` then ``body`` in a child process."""
    code = JSON_SINK_FROM_ENV + textwrap.dedent(body)
    return run_python(code, timeout=timeout, env={"T_GROUP": GROUP, "T_STREAM": stream, "T_URL": url, **env})


# --------------------------------------------------------------------------- stop()


def test_stop_delivers_what_is_left_and_is_idempotent(
    endpoint: str, logs_client: Any, put_recorder: PutLogEventsRecorder
) -> None:
    sink = make_sink(endpoint)
    handler = logger.add(sink)
    for i in range(25):
        logger.info("left {}", i)
    assert put_recorder.calls == []  # the long flush_interval kept them queued
    assert sink.stats.queued == 25

    logger.remove(handler)  # -> stop(): the final drain, before remove() returns

    assert stored_messages(logs_client) == [f"left {i}" for i in range(25)]
    stats = sink.stats
    assert (stats.sent, stats.queued, stats.abandoned) == (25, 0, 0)

    calls = len(put_recorder.calls)
    start = time.monotonic()
    sink.stop()  # second call (e.g. the sink's own hook after loguru's): returns at once, sends nothing
    assert time.monotonic() - start < 0.2
    assert len(put_recorder.calls) == calls
    assert sink.stats == stats


def test_records_written_after_stop_are_ignored_and_counted(
    endpoint: str, logs_client: Any, put_recorder: PutLogEventsRecorder
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)  # no ResourceNotFound round trip in the counts
    sink = make_sink(endpoint)
    logger.add(sink)
    logger.info("before stop")
    sink.stop()  # stopped while loguru still has the handler
    for i in range(3):
        logger.info("after stop {}", i)

    assert sink.stats.ignored == 3
    assert sink.stats.queued == 0
    logger.remove()
    assert stored_messages(logs_client) == ["before stop"]
    assert put_recorder.event_counts == [1]
    assert sink.stats.ignored == 3


def test_stop_is_bounded_when_the_endpoint_never_answers(
    fault_proxy: FaultProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    fault_proxy.set_schedule(["hang"] * 20)
    sink = make_sink(fault_proxy.url, shutdown_timeout=1.0)
    handler = logger.add(sink)
    for i in range(17):
        logger.info("never answered {}", i)
    # The call is under way (and hangs) before stop(): on a loaded machine, building the client could
    # otherwise take the whole shutdown_timeout, and the drain would never reach the endpoint.
    assert sink.force_flush(0.2) is False
    wait_for(lambda: fault_proxy.count("hang") >= 1, timeout=10, message="a call hangs")

    start = time.monotonic()
    logger.remove(handler)
    elapsed = time.monotonic() - start

    assert fault_proxy.count("hang") >= 1  # the final drain really was stuck on the endpoint
    assert elapsed < 1.6, f"stop() took {elapsed:.2f}s with shutdown_timeout=1"
    assert sink.stats.abandoned == 17
    err = capsys.readouterr().err
    assert "loguru-cloudwatch: 17 records could not be delivered" in err, err
    assert "shutdown_timeout=1s" in err


# --------------------------------------------------------------------------- force_flush()


def test_force_flush_returns_true_once_everything_is_stored(endpoint: str, logs_client: Any) -> None:
    sink = make_sink(endpoint)
    logger.add(sink)
    for i in range(30):
        logger.info("flushed {}", i)
    assert sink.force_flush(5) is True
    # No polling: force_flush returned after CloudWatch stored them.
    assert stored_messages(logs_client) == [f"flushed {i}" for i in range(30)]
    assert sink.stats.queued == 0

    logger.info("flushed again")
    assert sink.force_flush(5) is True
    assert stored_messages(logs_client)[-1] == "flushed again"
    assert sink.stats.sent == 31


def test_force_flush_with_nothing_pending_returns_true_quickly(
    endpoint: str, put_recorder: PutLogEventsRecorder
) -> None:
    sink = make_sink(endpoint)
    logger.add(sink)
    start = time.monotonic()
    assert sink.force_flush(5) is True
    assert time.monotonic() - start < 0.5
    assert put_recorder.calls == []


def test_force_flush_times_out_against_an_endpoint_that_never_answers(fault_proxy: FaultProxy) -> None:
    fault_proxy.set_schedule(["hang"] * 20)
    problems: list[SinkProblem] = []
    sink = make_sink(fault_proxy.url, shutdown_timeout=0.8, on_error=problems.append)
    handler = logger.add(sink)
    logger.info("stuck")

    start = time.monotonic()
    assert sink.force_flush(0.3) is False
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 0.8, elapsed
    # The call is stuck in the proxy (on a loaded machine building the client may outlast the 0.3 s).
    wait_for(lambda: fault_proxy.count("hang") == 1, timeout=10, message="PutLogEvents reached the proxy")

    start = time.monotonic()
    assert sink.force_flush() is False  # timeout=None: shutdown_timeout (0.8 s)
    elapsed = time.monotonic() - start
    assert 0.75 <= elapsed < 1.4, elapsed

    assert sink.stats.queued == 1
    logger.remove(handler)
    assert sink.stats.abandoned == 1
    assert [p.kind for p in problems][-1:] == ["undelivered_at_stop"]


def test_module_force_flush_delivers_every_sink_of_the_process(endpoint: str, logs_client: Any) -> None:
    import loguru_cloudwatch

    first = make_sink(endpoint)
    second = CloudWatchSink(GROUP, "other-stream", endpoint_url=endpoint, flush_interval=60.0)
    logger.add(first)
    logger.add(second)
    logger.info("to both")

    assert loguru_cloudwatch.force_flush(5) is True
    # Delivered when it returns, with no timed flush (60 s) in between.
    assert stored_messages(logs_client) == ["to both"]
    assert stored_messages(logs_client, "other-stream") == ["to both"]


def test_module_force_flush_leaves_out_sinks_already_stopped(fault_proxy: FaultProxy, endpoint: str) -> None:
    import loguru_cloudwatch

    fault_proxy.set_schedule(["hang"] * 5)
    stopped = make_sink(fault_proxy.url, shutdown_timeout=0.3)
    handler = logger.add(stopped)
    logger.info("abandoned")
    logger.remove(handler)
    assert stopped.stats.abandoned == 1  # its record stays in its queue, undeliverable: stop() said so
    healthy = make_sink(endpoint)
    logger.add(healthy)
    logger.info("delivered")

    assert loguru_cloudwatch.force_flush(5) is True  # the stopped sink is no longer one of the process's
    assert healthy.stats.sent == 1


def test_module_force_flush_reports_a_sink_that_could_not_deliver(fault_proxy: FaultProxy, endpoint: str) -> None:
    import loguru_cloudwatch

    fault_proxy.set_schedule(["hang"] * 5)
    healthy = make_sink(endpoint)
    logger.add(healthy)
    logger.info("warm-up")
    # Its client built and its stream created (on a busy machine these alone can outlast 0.5 s).
    assert healthy.force_flush(10)
    stuck = make_sink(fault_proxy.url, shutdown_timeout=0.5)
    logger.add(stuck)
    logger.info("one")

    start = time.monotonic()
    assert loguru_cloudwatch.force_flush(0.5) is False
    assert time.monotonic() - start < 2.0  # one overall timeout, not one per sink
    wait_for(lambda: healthy.stats.sent == 2, message="the healthy sink delivered")
    assert stuck.stats.sent == 0


# --------------------------------------------------------------------------- complete()


def test_await_logger_complete_delivers_everything(endpoint: str, logs_client: Any) -> None:
    sink = make_sink(endpoint)
    logger.add(sink)
    assert inspect.iscoroutinefunction(sink.complete)  # what loguru checks before awaiting it

    async def main() -> None:
        for i in range(20):
            logger.info("async {}", i)
        await logger.complete()
        assert stored_messages(logs_client) == [f"async {i}" for i in range(20)]
        logger.info("direct")
        await sink.complete()

    asyncio.run(main())
    assert stored_messages(logs_client)[-1] == "direct"
    assert sink.stats.queued == 0


def test_awaiting_sink_complete_gives_force_flush_s_answer(endpoint: str, logs_client: Any) -> None:
    sink = make_sink(endpoint)
    logger.add(sink)
    # Nothing listens on this port: every attempt fails at once, until the 0.3 s timeout.
    unreachable = make_sink(f"http://127.0.0.1:{free_port()}", shutdown_timeout=0.3, on_error=lambda problem: None)

    async def main() -> tuple[Any, Any]:
        logger.info("answered")
        delivered = await sink.complete()
        logger.remove()
        logger.add(unreachable)
        logger.info("never delivered")
        return delivered, await unreachable.complete()

    started = time.monotonic()
    assert asyncio.run(main()) == (True, False)
    assert time.monotonic() - started < 5
    assert stored_messages(logs_client) == ["answered"]
    unreachable.stop()


def test_synchronous_logger_complete_gives_no_warning(endpoint: str) -> None:
    sink = make_sink(endpoint)
    logger.add(sink)
    logger.info("completed synchronously")
    unraisable: list[Any] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            logger.complete()  # result dropped, as synchronous code does
            gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    assert [str(w.message) for w in caught] == []
    assert unraisable == []


def test_synchronous_logger_complete_gives_no_warning_in_a_fresh_interpreter(endpoint: str, logs_client: Any) -> None:
    # -W error: a "coroutine ... was never awaited" RuntimeWarning would surface as "Exception ignored".
    body = """
        logger.info("sync complete")
        logger.complete()
        gc.collect()
        print("done")
    """
    result = run_child(body, endpoint, "sync-complete", PYTHONWARNINGS="error")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert result.stderr == ""  # no "never awaited", no "Exception ignored"
    assert stored_messages(logs_client, "sync-complete") == ["sync complete"]


# --------------------------------------------------------------------------- enqueue=True and flush


def test_enqueue_true_delivers_with_exception_text(endpoint: str, logs_client: Any) -> None:
    sink = make_sink(endpoint)
    handler = logger.add(sink, enqueue=True)
    logger.info("through loguru's queue")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("division failed")
    logger.remove(handler)  # loguru drains its queue, then stop() drains the sink

    documents = read_json(logs_client, GROUP, STREAM)
    assert [d["message"] for d in documents] == ["through loguru's queue", "division failed"]
    assert "exception" not in documents[0]
    exception = documents[1]["exception"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["value"] == "division by zero"
    assert "Traceback (most recent call last)" in exception["traceback"]
    assert "ZeroDivisionError: division by zero" in exception["traceback"]
    assert sink.stats.sent == 2


def test_no_flush_method_and_no_network_per_write(
    endpoint: str, logs_client: Any, put_recorder: PutLogEventsRecorder
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)  # no ResourceNotFound round trip in the counts
    sink = make_sink(endpoint)
    # loguru calls a callable ``flush`` after every single write: the sink must not have one.
    assert not hasattr(sink, "flush")
    logger.add(sink)
    for i in range(200):
        logger.info("batched {}", i)
    assert put_recorder.calls == []
    assert sink.stats.queued == 200
    assert sink.force_flush(5) is True
    assert put_recorder.event_counts == [200]
    assert json.loads(put_recorder.batches[0][199]["message"])["message"] == "batched 199"


# --------------------------------------------------------------------------- import cost


def test_boto3_is_imported_when_a_sink_starts_not_with_the_package(endpoint: str, logs_client: Any) -> None:
    # A program that imports the package without a sink (a library importing it, no variables set) does not
    # pay boto3's import (~200 ms); the first sink imports it before any drain could need it at shutdown.
    code = f"""
import sys
import loguru_cloudwatch
assert "boto3" not in sys.modules and "botocore" not in sys.modules, "imported with the package"
from loguru import logger
logger.remove()
sink = loguru_cloudwatch.CloudWatchSink("lazy-group", "lazy-stream", endpoint_url={endpoint!r})
assert "boto3" in sys.modules, "not imported when the sink started"
logger.add(sink)
logger.info("shipped at exit")
"""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOGURU_CLOUDWATCH_")}
    result = run_interpreter(["-c", code], timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (document,) = read_json(logs_client, "lazy-group", "lazy-stream")
    assert document["message"] == "shipped at exit"
