"""SIGTERM (``_signals``): multiprocessing children drain by themselves, and the drain starts even when the
main thread cannot run Python code.

``with multiprocessing.Pool() as pool:`` ends with ``terminate()``: SIGTERM to every worker, then a join.
Every program runs in a subprocess with a timeout (a hang must fail the test, not the suite).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import create_group_and_stream, read_messages
from tests.support.programs import run_python

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

GROUP = "signals"

#: The tasks module of the pool programs: the sink is set up when it is imported (in the parent, which
#: fork children inherit; and again in each spawn child, which imports it afresh).
POOL_TASKS = """\
import os
from loguru import logger
from loguru_cloudwatch import CloudWatchSink

logger.remove()
logger.add(
    CloudWatchSink(os.environ["T_GROUP"], "pool-{pid}", endpoint_url=os.environ["T_URL"], serialize=False,
                   flush_interval=60, shutdown_timeout=5),
    format="{message}",
)


def task(number):
    logger.info(f"task {number}")  # still queued when the pool is terminated: flush_interval=60
    return os.getpid()
"""


def run_program(body: str, tmp_path: Path, url: str, timeout: float = 60, **env: str) -> dict[str, Any]:
    (tmp_path / "pool_tasks.py").write_text(POOL_TASKS)
    result = run_python(
        textwrap.dedent(body), timeout=timeout, env={"T_GROUP": GROUP, "T_URL": url, "PYTHONPATH": str(tmp_path), **env}
    )
    assert result.returncode == 0, f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert "could not be delivered" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def task_records(client: Any) -> collections.Counter[str]:
    names = [s["logStreamName"] for s in client.describe_log_streams(logGroupName=GROUP)["logStreams"]]
    return collections.Counter(message for name in names for message in read_messages(client, GROUP, name))


EVERY_TASK = collections.Counter(f"task {number}" for number in range(12))


@pytest.mark.parametrize("method", [pytest.param("fork", marks=needs_fork), "spawn"])
def test_with_pool_as_pool_delivers_every_workers_records(
    method: str, endpoint: str, logs_client: Any, tmp_path: Path
) -> None:
    body = """
        import json, multiprocessing, os, time
        import pool_tasks

        context = multiprocessing.get_context(os.environ["T_METHOD"])
        with context.Pool(2) as pool:  # __exit__ is terminate(): SIGTERM to the workers
            pids = pool.map(pool_tasks.task, range(12))
            ended = time.monotonic()
        print(json.dumps({"workers": sorted(set(pids)), "terminate": time.monotonic() - ended}))
    """
    info = run_program(body, tmp_path, endpoint, T_METHOD=method)
    assert task_records(logs_client) == EVERY_TASK  # 12 of 12, each once
    assert info["terminate"] < 5.0, info  # each worker drained (a fraction of a second) and died


@needs_fork
def test_process_terminate_drains_the_child_then_it_dies_of_sigterm(
    endpoint: str, logs_client: Any, tmp_path: Path
) -> None:
    body = """
        import json, multiprocessing, os
        import pool_tasks

        def child(ready):
            pool_tasks.task(1)
            pool_tasks.task(2)
            ready.set()
            multiprocessing.Event().wait()  # blocked for ever, in a lock without a timeout

        ready = multiprocessing.Event()
        process = multiprocessing.get_context("fork").Process(target=child, args=(ready,))
        process.start()
        assert ready.wait(30)
        process.terminate()
        process.join(30)
        print(json.dumps({"exitcode": process.exitcode}))
    """
    info = run_program(body, tmp_path, endpoint)
    assert info["exitcode"] == -signal.SIGTERM  # it still ends as killed by SIGTERM, after the drain
    assert task_records(logs_client) == collections.Counter(["task 1", "task 2"])


@needs_fork
def test_process_pool_executor_delivers_every_workers_records(endpoint: str, logs_client: Any, tmp_path: Path) -> None:
    body = """
        import json, multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        import pool_tasks

        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as executor:
            pids = list(executor.map(pool_tasks.task, range(12)))
        print(json.dumps({"workers": sorted(set(pids))}))
    """
    run_program(body, tmp_path, endpoint)
    assert task_records(logs_client) == EVERY_TASK


THREAD_MADE_SINK = """\
import os, threading


def child():
    from loguru_cloudwatch import CloudWatchSink

    made = threading.Thread(target=lambda: CloudWatchSink("signals", "{pid}", endpoint_url=os.environ["T_URL"]))
    made.start()
    made.join()
"""


def test_a_sink_made_outside_the_main_thread_of_a_multiprocessing_child_says_it_cannot_drain(
    endpoint: str, tmp_path: Path
) -> None:
    (tmp_path / "thread_made_sink.py").write_text(THREAD_MADE_SINK)
    body = """
        import json, multiprocessing
        import thread_made_sink

        process = multiprocessing.get_context("spawn").Process(target=thread_made_sink.child)
        process.start()
        process.join(30)
        print(json.dumps({"exitcode": process.exitcode}))
    """
    result = run_python(textwrap.dedent(body), timeout=60, env={"T_URL": endpoint, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["exitcode"] == 0
    lines = [line for line in result.stderr.splitlines() if "outside the main thread" in line]
    assert len(lines) == 1, result.stderr
    assert "cannot drain on SIGTERM" in lines[0] and "Pool.terminate()" in lines[0]


# --------------------------------------------------------------------------- the drain does not need the main thread

PREAMBLE = """\
import os, signal, sys, threading, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink, install_sigterm_handler

logger.remove()
logger.add(
    CloudWatchSink(os.environ["T_GROUP"], os.environ["T_STREAM"], endpoint_url=os.environ["T_URL"],
                   serialize=False, flush_interval=60, shutdown_timeout=5),
    format="{message}",
)
install_sigterm_handler()
"""


def test_sigterm_drains_even_while_the_main_thread_can_never_run_the_handler(endpoint: str, logs_client: Any) -> None:
    # The worst case of a main thread stuck in a blocking call: SIGTERM blocked there, so the kernel hands
    # it to another thread, and the Python handler (main thread only) never runs. The wakeup fd still
    # carries it to the sink's watcher thread.
    stream = "main-thread-stuck"
    create_group_and_stream(logs_client, GROUP, stream)
    body = """
        bystander = threading.Thread(target=time.sleep, args=(60,), daemon=True)  # takes the signal
        bystander.start()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        for i in range(20):
            logger.info(f"queued {i}")
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait()  # blocked for ever: never runs Python code again
    """
    result = run_python(
        PREAMBLE + textwrap.dedent(body), timeout=30, env={"T_GROUP": GROUP, "T_STREAM": stream, "T_URL": endpoint}
    )
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert read_messages(logs_client, GROUP, stream) == [f"queued {i}" for i in range(20)]


@needs_fork
def test_a_forked_childs_sigterm_drains_the_child_and_leaves_the_parent_alone(endpoint: str, logs_client: Any) -> None:
    # The wakeup fd's pipe is inherited: unless the child takes a pipe of its own, the parent's watcher
    # would read the child's SIGTERM and stop the parent.
    stream = "{pid}"
    body = """
        import json
        child = os.fork()
        if child == 0:
            logger.info("from the child")
            time.sleep(60)
            os._exit(0)
        time.sleep(0.5)  # the child is in its sleep
        os.kill(child, signal.SIGTERM)
        _, status = os.waitpid(child, 0)
        time.sleep(0.5)  # long enough for a wrongly woken parent drain to begin
        logger.info("the parent lives on")
        print(json.dumps({"child": child, "parent": os.getpid(), "status": os.waitstatus_to_exitcode(status)}))
    """
    result = run_python(
        PREAMBLE + textwrap.dedent(body), timeout=30, env={"T_GROUP": GROUP, "T_STREAM": stream, "T_URL": endpoint}
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["status"] == -signal.SIGTERM
    assert read_messages(logs_client, GROUP, str(info["child"])) == ["from the child"]
    assert read_messages(logs_client, GROUP, str(info["parent"])) == ["the parent lives on"]


def test_sigterm_stays_ignored_after_the_program_ignores_it_once_the_watcher_runs(
    endpoint: str, logs_client: Any
) -> None:
    # The watcher started with the first install; SIG_IGN taken over by the second must win over it.
    stream = "ignored-later"
    create_group_and_stream(logs_client, GROUP, stream)
    body = """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        install_sigterm_handler()  # chains the program's SIG_IGN: SIGTERM stays ignored
        logger.info("before")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)  # a wrongly started drain would stop the sink and kill the process meanwhile
        logger.info("after")
        print("alive")
    """
    result = run_python(
        PREAMBLE + textwrap.dedent(body), timeout=30, env={"T_GROUP": GROUP, "T_STREAM": stream, "T_URL": endpoint}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alive"
    assert read_messages(logs_client, GROUP, stream) == ["before", "after"]
