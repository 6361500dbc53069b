"""Scenarios 7-10 of issue 4: threads, processes, logging re-entrancy and dictConfig, enqueue=True.

Threads run in-process; anything that forks, spawns, reconfigures ``logging`` or could deadlock runs in a
subprocess with a timeout. Child programs write to the stream ``proc-{pid}`` so that the parent reads
back exactly who sent what.

Covered elsewhere with exact counts and not repeated here: a bare ``os.fork()`` with both exits and
``multiprocessing.Process`` with fork and spawn (test_fork.py, next to this file), fork while another thread logs
(test_fork.py::test_fork_while_another_thread_logs_heavily_does_not_deadlock), the InterceptHandler alone
(test_reentrancy.py::test_worker_thread_records_routed_from_logging_do_not_loop) and dictConfig at INFO
(test_reentrancy.py::test_dictconfig_while_records_are_queued_does_not_close_or_stall_the_sink).
"""

from __future__ import annotations

import collections
import json
import os
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from tests.support.aws import create_group_and_stream, read_json, read_messages
from tests.support.faults import FaultInjector
from tests.support.programs import INTERCEPT_HANDLER_SOURCE, run_python
from tests.support.proxy import FaultProxy

GROUP = "scenario-concurrency"
STREAM = "threads"

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


def run_program(code: str, timeout: float = 60, **env: str) -> dict[str, Any]:
    """Run a child program that prints one JSON line last; check it exited cleanly and return that line."""
    result = run_python(textwrap.dedent(code), timeout=timeout, env={"T_GROUP": GROUP, **env})
    assert result.returncode == 0, f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert "could not be delivered" not in result.stderr, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def streams(client: Any) -> dict[str, list[str]]:
    """Every stream of the group with its messages, oldest first."""
    names = [s["logStreamName"] for s in client.describe_log_streams(logGroupName=GROUP)["logStreams"]]
    return {name: read_messages(client, GROUP, name) for name in names}


# --------------------------------------------------------------------------- 7. sixteen threads


THREADS = 16
PER_THREAD = 500


@pytest.mark.parametrize("enqueue", [False, True], ids=["direct", "enqueue"])
def test_sixteen_threads_lose_nothing_duplicate_nothing_and_keep_each_threads_order(
    enqueue: bool, endpoint: str, logs_client: Any, fault_injector: FaultInjector
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    # A few failures while the threads write: failed batches go back to the front of the queue as new
    # records keep arriving behind them. ("reset" here fails before anything is stored.)
    fault_injector.set_schedule(["ok", "throttle", "ok", "503", "ok", "reset", "ok", "ok", "throttle", "500"])
    sink = CloudWatchSink(
        GROUP, STREAM, endpoint_url=endpoint, flush_interval=0.02, max_batch_size=200, retry_delay=0.002
    )
    logger.add(sink, enqueue=enqueue)
    barrier = threading.Barrier(THREADS)
    idents: dict[int, int] = {}

    def write(number: int) -> None:
        idents[number] = threading.get_ident()
        bound = logger.bind(t=number)
        barrier.wait()  # all at once
        for index in range(PER_THREAD):
            bound.bind(i=index).info("thread {} record {}", number, index)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a logging thread is stuck"
    logger.complete()
    assert sink.force_flush(20), sink.stats

    documents = read_json(logs_client, GROUP, STREAM)
    pairs = collections.Counter((document["t"], document["i"]) for document in documents)
    assert len(documents) == THREADS * PER_THREAD
    assert pairs == collections.Counter((t, i) for t in range(THREADS) for i in range(PER_THREAD))
    for number in range(THREADS):
        mine = [document for document in documents if document["t"] == number]
        assert [document["i"] for document in mine] == list(range(PER_THREAD)), f"thread {number} out of order"
        assert {document["thread"] for document in mine} == {idents[number]}
        assert mine[7]["message"] == f"thread {number} record 7"
    stats = sink.stats
    assert (stats.sent, stats.queued, stats.dropped, stats.rejected) == (THREADS * PER_THREAD, 0, 0, 0)
    assert stats.failed == 5
    assert fault_injector.calls == stats.batches + stats.failed


# --------------------------------------------------------------------------- 8. processes


PREFORK_SERVER = """
import json, os, signal, sys, threading, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink, install_sigterm_handler

logger.remove()
sink = CloudWatchSink(
    os.environ["T_GROUP"], "proc-{pid}", endpoint_url=os.environ["T_URL"], serialize=False,
    flush_interval=60, retry_delay=0.005, shutdown_timeout=5,
)
logger.add(sink, format="{message}")
install_sigterm_handler()  # inherited by the workers
for i in range(10):
    logger.info(f"master boot {i}")  # still queued when the workers fork


def serve(worker, ready):
    stop = threading.Event()
    if worker % 2 == 0:
        # A graceful worker (gunicorn's way): its own SIGTERM handler ends the serving loop.
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def handle(thread):
        for request in range(20):
            logger.info(f"worker {worker} thread {thread} request {request}")

    threads = [threading.Thread(target=handle, args=(t,)) for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    os.write(ready, b"x")
    # The other workers are stopped here by SIGTERM and the sink's opt-in handler. The loop wakes the main
    # thread now and then, as servers' loops do: CPython runs a Python signal handler only when the main
    # thread runs (see install_sigterm_handler).
    while not stop.wait(0.5):
        pass
    logger.info(f"worker {worker} graceful exit")
    sys.exit(0)


ready_r, ready_w = os.pipe()
workers = {}
for worker in range(4):
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        serve(worker, ready_w)
    workers[worker] = pid
os.close(ready_w)
seen = b""
while len(seen) < 4:
    chunk = os.read(ready_r, 4)
    if not chunk:
        break
    seen += chunk
logger.info("master stops the workers")
for pid in workers.values():
    os.kill(pid, signal.SIGTERM)
codes, deadline = {}, time.monotonic() + 20
while len(codes) < len(workers) and time.monotonic() < deadline:
    for worker, pid in workers.items():
        if worker not in codes:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                codes[worker] = os.waitstatus_to_exitcode(status)
    time.sleep(0.01)
hung = [worker for worker in workers if worker not in codes]
for worker in hung:
    os.kill(workers[worker], signal.SIGKILL)
logger.info("master down")
print(json.dumps({"master": os.getpid(), "workers": workers, "codes": codes, "hung": hung}))
"""


@needs_fork
def test_prefork_server_every_process_records_arrive_once(endpoint: str, logs_client: Any) -> None:
    info = run_program(PREFORK_SERVER, T_URL=endpoint)
    assert info["hung"] == [], info
    # Graceful workers end through sys.exit; the others die of the SIGTERM, after the opt-in drain.
    assert info["codes"] == {"0": 0, "1": -15, "2": 0, "3": -15}
    stored = streams(logs_client)
    workers = {int(worker): pid for worker, pid in info["workers"].items()}
    assert set(stored) == {f"proc-{info['master']}", *(f"proc-{pid}" for pid in workers.values())}
    master = [f"master boot {i}" for i in range(10)] + ["master stops the workers", "master down"]
    assert stored[f"proc-{info['master']}"] == master  # once: no worker sent the master's queue again
    for worker, pid in workers.items():
        records = stored[f"proc-{pid}"]
        expected = [f"worker {worker} thread {t} request {r}" for t in range(3) for r in range(20)]
        if worker % 2 == 0:
            expected.append(f"worker {worker} graceful exit")
        assert collections.Counter(records) == collections.Counter(expected), worker
        for thread in range(3):
            prefix = f"worker {worker} thread {thread} "
            assert [m for m in records if m.startswith(prefix)] == [f"{prefix}request {r}" for r in range(20)]


POOL_TASKS = """\
import os
from loguru import logger


def init(url, group, configure):
    if configure:  # spawn: a fresh interpreter sets up its own sink
        from loguru_cloudwatch import CloudWatchSink

        logger.remove()
        sink = CloudWatchSink(
            group, "proc-{pid}", endpoint_url=url, serialize=False, flush_interval=60, retry_delay=0.005
        )
        logger.add(sink, format="{message}")


def task(number):
    for i in range(5):
        logger.info(f"task {number} record {i}")
    return os.getpid()
"""

POOL_PROGRAM = """
import json, multiprocessing, os
from loguru import logger
from loguru_cloudwatch import CloudWatchSink
import pool_tasks

method = os.environ["T_METHOD"]
logger.remove()
sink = CloudWatchSink(
    os.environ["T_GROUP"], "proc-{pid}", endpoint_url=os.environ["T_URL"], serialize=False,
    flush_interval=60, retry_delay=0.005, shutdown_timeout=5,
)
logger.add(sink, format="{message}")
for i in range(5):
    logger.info(f"parent {i}")  # still queued when the fork workers start
context = multiprocessing.get_context(method)
arguments = (os.environ["T_URL"], os.environ["T_GROUP"], method != "fork")
with context.Pool(3, initializer=pool_tasks.init, initargs=arguments, maxtasksperchild=10) as pool:
    pids = pool.map(pool_tasks.task, range(24), chunksize=1)
    pool.close()  # workers leave through os._exit after multiprocessing's finalizers
    pool.join()
print(json.dumps({"parent": os.getpid(), "workers": sorted(set(pids))}))
"""


@pytest.mark.parametrize(
    "method", [pytest.param("fork", marks=needs_fork), pytest.param("spawn", marks=pytest.mark.slow)]
)
def test_multiprocessing_pool_every_task_record_arrives_once(
    method: str, endpoint: str, logs_client: Any, tmp_path: Path
) -> None:
    # maxtasksperchild: workers are replaced while the pool runs (forked from the pool's handler thread).
    (tmp_path / "pool_tasks.py").write_text(POOL_TASKS)
    info = run_program(POOL_PROGRAM, T_URL=endpoint, T_METHOD=method, PYTHONPATH=str(tmp_path), timeout=90)
    stored = streams(logs_client)
    assert stored.pop(f"proc-{info['parent']}") == [f"parent {i}" for i in range(5)]
    assert set(stored) <= {f"proc-{pid}" for pid in info["workers"]}
    records = [message for messages in stored.values() for message in messages]
    expected = [f"task {n} record {i}" for n in range(24) for i in range(5)]
    assert collections.Counter(records) == collections.Counter(expected)  # each once, whichever worker ran it
    for messages in stored.values():
        for number in range(24):
            mine = [m for m in messages if m.startswith(f"task {number} ")]
            assert mine in ([], [f"task {number} record {i}" for i in range(5)])


# --------------------------------------------------------------------------- 9. logging into loguru


INTERCEPT_PROGRAM = (
    """
import collections, inspect, json, logging, logging.config, os, threading, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink


"""
    + INTERCEPT_HANDLER_SOURCE
    + """

logger.remove()
sink = CloudWatchSink(
    os.environ["T_GROUP"], os.environ["T_STREAM"], endpoint_url=os.environ["T_URL"], serialize=False,
    flush_interval=60, max_retries=5, retry_delay=0.005, shutdown_timeout=5,
)
logging.basicConfig(handlers=[InterceptHandler()], level=logging.DEBUG, force=True)
phase = "start"
routed = collections.Counter()
main = threading.main_thread().ident
# Another handler sees what the sink's worker thread logs (botocore, urllib3): proof that it reached loguru.
logger.add(lambda m: routed.update([phase]), level="DEBUG", filter=lambda r: r["thread"].id != main)
logger.add(sink, level="DEBUG", format="{message}", enqueue=os.environ["T_ENQUEUE"] == "1")

phase = "before"
for i in range(10):
    logger.debug(f"before {i}")
logging.getLogger("app").debug("before via logging")
logger.complete()
assert sink.force_flush(10), sink.stats  # throttled, 503, then stored: botocore talks a lot meanwhile

for i in range(10):
    logger.debug(f"queued {i}")
logging.getLogger("app").debug("queued via logging")
logger.complete()
queued = sink.stats.queued
phase = "dictconfig"
start = time.monotonic()
logging.config.dictConfig({  # what uvicorn, gunicorn and Django do at start-up
    "version": 1,
    "disable_existing_loggers": True,
    "handlers": {"intercept": {"()": InterceptHandler}},
    "root": {"level": "DEBUG", "handlers": ["intercept"]},
    "loggers": {"botocore": {"level": "DEBUG"}, "urllib3": {"level": "DEBUG"}},
})
took = time.monotonic() - start
phase = "after"
for i in range(10):
    logger.debug(f"after {i}")
logging.getLogger("app.new").debug("after via logging")
logger.complete()
flushed = sink.force_flush(10)  # reset, throttled, then stored
stats = sink.stats
print(json.dumps({
    "queued": queued, "took": took, "flushed": flushed, "alive": sink._worker.is_alive(), "routed": routed,
    "sent": stats.sent, "batches": stats.batches, "failed": stats.failed, "left": stats.queued,
}))
"""
)


@pytest.mark.parametrize("enqueue", [False, True], ids=["direct", "enqueue"])
def test_botocore_debug_through_intercept_and_dictconfig_while_queued_no_loop_no_hang(
    enqueue: bool, fault_proxy: FaultProxy, logs_client: Any
) -> None:
    stream = "intercept-dictconfig"
    create_group_and_stream(logs_client, GROUP, stream)
    fault_proxy.set_schedule(["throttle", "503", "ok", "reset", "throttle", "ok"])
    info = run_program(
        INTERCEPT_PROGRAM, T_URL=fault_proxy.url, T_STREAM=stream, T_ENQUEUE="1" if enqueue else "0", timeout=60
    )
    # botocore's and urllib3's DEBUG records from the worker thread reached loguru before and after dictConfig...
    assert info["routed"].get("before", 0) > 0 and info["routed"].get("after", 0) > 0, info["routed"]
    # ...and none of them reached the sink: exactly the application's records, in order, once.
    expected = [f"before {i}" for i in range(10)] + ["before via logging"]
    expected += [f"queued {i}" for i in range(10)] + ["queued via logging"]
    expected += [f"after {i}" for i in range(10)] + ["after via logging"]
    assert read_messages(logs_client, GROUP, stream) == expected
    assert info["queued"] == 11  # dictConfig ran while these waited in the sink's queue
    assert info["took"] < 1.0  # no stall
    assert info["flushed"] is True and info["alive"] is True  # not closed, still delivering
    assert (info["sent"], info["batches"], info["failed"], info["left"]) == (33, 2, 4, 0)
    # No feedback loop: exactly two successful calls (one per flush) and the four scheduled failures.
    assert [action for action, _ in fault_proxy.calls] == ["throttle", "503", "ok", "reset", "throttle", "ok"]
    assert [n for _, n in fault_proxy.calls] == [11, 11, 11, 22, 22, 22]
