"""Re-entrancy: the sink's own activity must never feed back into it, loop or deadlock.

The worker thread's records (botocore/urllib3 DEBUG routed into loguru by an InterceptHandler, or an
``on_error`` callback that logs through loguru) never enter the queue. Scenarios that change the global
``logging`` configuration run in a subprocess with a timeout.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from loguru import logger

from loguru_cloudwatch import CloudWatchSink, SinkProblem
from tests.support.aws import create_group_and_stream, read_json
from tests.support.programs import INTERCEPT_HANDLER_SOURCE, run_python
from tests.support.proxy import FaultProxy
from tests.support.spool_files import dead_file

GROUP = "reentrancy-group"
STREAM = "reentrancy-stream"

PREAMBLE = """\
import inspect, json, logging, logging.config, os, sys, threading, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink

logger.remove()
sink = CloudWatchSink(
    os.environ["T_GROUP"],
    os.environ["T_STREAM"],
    endpoint_url=os.environ["T_URL"],
    flush_interval=60,
    retry_delay=0.005,
    shutdown_timeout=5,
)
"""


#: botocore's DEBUG records routed into loguru; a second handler keeps the names of those logged on other
#: threads than the main one, showing that they really reached loguru from a worker.
ROUTED_FROM_LOGGING = """
        logging.basicConfig(handlers=[InterceptHandler()], level=logging.DEBUG, force=True)
        worker_records = []
        logger.add(
            lambda message: worker_records.append(message.record["name"]),
            level="DEBUG",
            filter=lambda record: record["thread"].id != threading.main_thread().ident,
        )
"""


def run_program(body: str, url: str, stream: str, timeout: float = 40) -> dict[str, Any]:
    code = PREAMBLE + INTERCEPT_HANDLER_SOURCE + textwrap.dedent(body)
    result = run_python(code, timeout=timeout, env={"T_GROUP": GROUP, "T_STREAM": stream, "T_URL": url})
    assert result.returncode == 0, f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def stored_messages(client: Any, stream: str) -> list[str]:
    return [document["message"] for document in read_json(client, GROUP, stream)]


def test_worker_thread_records_routed_from_logging_do_not_loop(fault_proxy: FaultProxy, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, "intercept")  # every PutLogEvents call is a real send
    body = (
        ROUTED_FROM_LOGGING
        + """
        logger.add(sink, level="DEBUG")
        for round in range(3):
            for i in range(4):
                logger.debug(f"app {round}-{i}")
            flushed = sink.force_flush(10)
            assert flushed, sink.stats
        logger.remove()  # stop(): nothing is left, so no further call
        stats = sink.stats
        botocore_records = sum(1 for name in worker_records if name.startswith(("botocore", "urllib3")))
        print(json.dumps({"sent": stats.sent, "batches": stats.batches, "queued": stats.queued,
                          "botocore_records": botocore_records}))
    """
    )
    info = run_program(body, fault_proxy.url, "intercept")
    assert info["botocore_records"] > 0, "botocore DEBUG records did not reach loguru: the test proves nothing"
    assert (info["sent"], info["batches"], info["queued"]) == (12, 3, 0)
    # Exactly the application's three flushes went out, carrying exactly its 12 records.
    assert [n_events for _, n_events in fault_proxy.calls] == [4, 4, 4]
    expected = [f"app {r}-{i}" for r in range(3) for i in range(4)]
    assert stored_messages(logs_client, "intercept") == expected


def test_records_of_the_worker_delivering_an_adopted_spool_file_do_not_loop(
    fault_proxy: FaultProxy, logs_client: Any, tmp_path: Path
) -> None:
    # A dead process's spool file is delivered by a second worker thread of the sink: its botocore records
    # must not enter the queue either.
    create_group_and_stream(logs_client, GROUP, "adopter")
    dead_file(tmp_path, "dead", chunks=2, per_chunk=10, group=GROUP, start_ms=int(time.time() * 1000) - 60_000)
    body = (
        ROUTED_FROM_LOGGING
        + """
        spooled = CloudWatchSink(os.environ["T_GROUP"], os.environ["T_STREAM"], endpoint_url=os.environ["T_URL"],
                                 spool_dir=os.environ["T_SPOOL"], flush_interval=60, shutdown_timeout=5)
        logger.add(spooled, level="DEBUG")
        deadline = time.monotonic() + 20
        while any(os.scandir(os.environ["T_SPOOL"])) and spooled.stats.sent < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        for i in range(4):
            logger.debug(f"app {i}")
        flushed = spooled.force_flush(10)
        logger.remove()
        stats = spooled.stats
        botocore_records = sum(1 for name in worker_records if name.startswith(("botocore", "urllib3")))
        print(json.dumps({"sent": stats.sent, "queued": stats.queued, "spooled": stats.spooled,
                          "flushed": flushed, "botocore_records": botocore_records}))
    """
    )
    code = PREAMBLE + INTERCEPT_HANDLER_SOURCE + textwrap.dedent(body)
    env = {"T_GROUP": GROUP, "T_STREAM": "adopter", "T_URL": fault_proxy.url, "T_SPOOL": str(tmp_path)}
    result = run_python(code, timeout=60, env=env)
    assert result.returncode == 0, f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["botocore_records"] > 0, "botocore DEBUG records did not reach loguru: the test proves nothing"
    assert info == {**info, "sent": 24, "queued": 0, "spooled": 0, "flushed": True}
    assert stored_messages(logs_client, "adopter") == [f"app {i}" for i in range(4)]
    # The adopted file's 20 records in one batch (sent twice: the dead process's stream did not exist yet,
    # and is created on the answer), then the application's 4; no third batch of botocore's records.
    assert sorted(n_events for _, n_events in fault_proxy.calls) == [4, 20, 20]


def test_on_error_callback_that_logs_does_not_loop_or_deadlock(fault_proxy: FaultProxy, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    fault_proxy.set_schedule(["throttle", "503", "500"])  # three failures, then through
    seen: list[str] = []
    lock = threading.Lock()

    def collect(message: Any) -> None:
        with lock:
            seen.append(message.record["message"])

    def on_error(problem: SinkProblem) -> None:
        logger.warning(f"sink problem: {problem.kind}")  # back into loguru, from the worker thread

    sink = CloudWatchSink(
        GROUP, STREAM, endpoint_url=fault_proxy.url, flush_interval=60, retry_delay=0.005, on_error=on_error
    )
    logger.add(collect, level="DEBUG")
    logger.add(sink, level="DEBUG")
    for i in range(5):
        logger.info("app {}", i)

    assert sink.force_flush(10) is True  # a deadlock would make this time out instead
    stats = sink.stats
    assert (stats.sent, stats.batches, stats.retries, stats.queued) == (5, 1, 3, 0)
    assert len(fault_proxy.calls) == 4
    assert stored_messages(logs_client, STREAM) == [f"app {i}" for i in range(5)]
    with lock:
        problems = [m for m in seen if m.startswith("sink problem")]
    # The callback's records went to the other handler, not into the CloudWatch queue.
    assert problems == ["sink problem: throttled", "sink problem: send_failed", "sink problem: send_failed"]
    logger.remove()
    assert len(fault_proxy.calls) == 4


def test_dictconfig_while_records_are_queued_does_not_close_or_stall_the_sink(endpoint: str, logs_client: Any) -> None:
    body = """
        logging.basicConfig(handlers=[InterceptHandler()], level=logging.INFO, force=True)
        logger.add(sink, format="{message}")
        for i in range(10):
            logger.info(f"before {i}")
        logging.getLogger("app").info("before via logging")
        queued_before = sink.stats.queued
        start = time.monotonic()
        logging.config.dictConfig({
            "version": 1,
            "disable_existing_loggers": True,  # disables botocore's loggers too
            "handlers": {"intercept": {"()": InterceptHandler}},
            "root": {"level": "INFO", "handlers": ["intercept"]},
        })
        took = time.monotonic() - start
        for i in range(10):
            logger.info(f"after {i}")
        logging.getLogger("app.new").info("after via logging")
        flushed = sink.force_flush(10)
        print(json.dumps({"queued_before": queued_before, "took": took, "flushed": flushed,
                          "alive": sink._worker.is_alive()}))
        # exit normally: the final drain has nothing left
    """
    info = run_program(body, endpoint, "dictconfig")
    assert info["queued_before"] == 11
    assert info["took"] < 1.0
    assert info["flushed"] is True
    assert info["alive"] is True
    expected = [f"before {i}" for i in range(10)] + ["before via logging"]
    expected += [f"after {i}" for i in range(10)] + ["after via logging"]
    assert stored_messages(logs_client, "dictconfig") == expected
