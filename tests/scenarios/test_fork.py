"""Fork: a child starts with an empty queue, a new client and worker, and ships its own records once.

Every scenario runs in a subprocess with a timeout (a deadlock must fail the test, not hang the suite).
The child programs use the stream template ``{pid}``: each process writes to its own stream, so the
parent reads back who sent what.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import read_json
from tests.support.programs import run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

GROUP = "fork-group"

PREAMBLE = """\
import json, os, sys, threading, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink

logger.remove()
sink = CloudWatchSink(
    os.environ["T_GROUP"],
    "proc-{pid}",
    endpoint_url=os.environ["T_URL"],
    flush_interval=60,  # the parent's records are still queued when it forks
    retry_delay=0.005,
    shutdown_timeout=5,
    max_queue_size=int(os.environ.get("T_QUEUE", "100000")),
)
logger.add(sink, format="{message}")
"""


def run_program(body: str, url: str, timeout: float = 40, **env: str) -> dict[str, Any]:
    """Run PREAMBLE + body; the program prints one JSON line last. Returns it, after checking the exit."""
    result = run_python(PREAMBLE + textwrap.dedent(body), timeout=timeout, env={"T_GROUP": GROUP, "T_URL": url, **env})
    assert result.returncode == 0, f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert "could not be delivered" not in result.stderr, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def streams(client: Any) -> dict[str, list[str]]:
    """Every stream of the group, with its messages in order."""
    names = [s["logStreamName"] for s in client.describe_log_streams(logGroupName=GROUP)["logStreams"]]
    return {name: [document["message"] for document in read_json(client, GROUP, name)] for name in names}


def test_os_fork_child_ships_its_own_records_once(endpoint: str, logs_client: Any) -> None:
    body = """
        for i in range(20):
            logger.info(f"parent {i}")
        logger.info("x" * 1_100_000)  # cut to fit: counted in the parent's stats.truncated
        children = {}
        for ending in ("exit", "os_exit"):
            pid = os.fork()
            if pid == 0:
                assert sink.log_stream == f"proc-{os.getpid()}", sink.log_stream
                # The parent's records and counts stay the parent's.
                assert (sink.stats.queued, sink.stats.truncated) == (0, 0), sink.stats
                for i in range(7):
                    logger.info(f"{ending} child {i}")
                if ending == "exit":
                    sys.exit(0)  # normal exit: atexit -> loguru's remove() -> stop()
                logger.remove()
                os._exit(0)
            children[ending] = pid
        logger.info("parent after fork")
        codes = {ending: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for ending, pid in children.items()}
        truncated = sink.stats.truncated
        print(json.dumps({"parent": os.getpid(), "children": children, "codes": codes, "truncated": truncated}))
    """
    info = run_program(body, endpoint)
    assert info["codes"] == {"exit": 0, "os_exit": 0}
    assert info["truncated"] == 1
    parent, children = info["parent"], info["children"]
    stored = streams(logs_client)
    # Exactly three streams: no child resent the parent's queue anywhere.
    assert set(stored) == {f"proc-{parent}", f"proc-{children['exit']}", f"proc-{children['os_exit']}"}
    parent_messages = stored[f"proc-{parent}"]
    assert parent_messages[:20] == [f"parent {i}" for i in range(20)]
    assert parent_messages[20].startswith("x" * 1000) and "truncated by loguru-cloudwatch" in parent_messages[20]
    assert parent_messages[21:] == ["parent after fork"]
    for ending in ("exit", "os_exit"):
        assert stored[f"proc-{children[ending]}"] == [f"{ending} child {i}" for i in range(7)]


CHILD_MODULE = """\
import os
from loguru import logger


def child(tag, url, group, configure):
    if configure:  # spawn: a fresh interpreter configures its own sink
        from loguru_cloudwatch import CloudWatchSink

        logger.remove()
        sink = CloudWatchSink(group, "proc-{pid}", endpoint_url=url, flush_interval=60, retry_delay=0.005)
        logger.add(sink, format="{message}")
    for i in range(5):
        logger.info(f"{tag} {i}")
    # return: multiprocessing leaves through os._exit (no atexit, no loguru remove())
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_records_arrive_once(
    endpoint: str, logs_client: Any, tmp_path: Path, method: str
) -> None:
    (tmp_path / "mp_children.py").write_text(CHILD_MODULE)
    body = """
        import multiprocessing
        import mp_children

        method = os.environ["T_METHOD"]
        context = multiprocessing.get_context(method)
        for i in range(10):
            logger.info(f"parent {i}")
        processes = {}
        for tag in ("first", "second"):
            process = context.Process(
                target=mp_children.child, args=(tag, os.environ["T_URL"], os.environ["T_GROUP"], method != "fork")
            )
            process.start()
            processes[tag] = process
        codes = {}
        for tag, process in processes.items():
            process.join(20)
            codes[tag] = process.exitcode
        children = {tag: process.pid for tag, process in processes.items()}
        print(json.dumps({"parent": os.getpid(), "children": children, "codes": codes}))
    """
    info = run_program(body, endpoint, T_METHOD=method, PYTHONPATH=str(tmp_path))
    assert info["codes"] == {"first": 0, "second": 0}
    parent, children = info["parent"], info["children"]
    stored = streams(logs_client)
    assert set(stored) == {f"proc-{parent}", f"proc-{children['first']}", f"proc-{children['second']}"}
    assert stored[f"proc-{parent}"] == [f"parent {i}" for i in range(10)]
    for tag in ("first", "second"):
        assert stored[f"proc-{children[tag]}"] == [f"{tag} {i}" for i in range(5)]


def test_fork_while_another_thread_logs_heavily_does_not_deadlock(endpoint: str, logs_client: Any) -> None:
    body = """
        done = threading.Event()
        written = 0

        def chatter():
            global written
            while not done.is_set():
                logger.info("noise")
                written += 1

        thread = threading.Thread(target=chatter)
        thread.start()
        while written < 2000:  # the chatter thread is in full swing
            time.sleep(0.001)
        children = []
        for k in range(6):
            pid = os.fork()
            if pid == 0:
                logger.info(f"child {k}")
                if k % 2:
                    logger.remove()
                    os._exit(0)
                sys.exit(0)
            children.append(pid)
        codes = {}
        deadline = time.monotonic() + 20
        while len(codes) < len(children) and time.monotonic() < deadline:
            for pid in children:
                if pid not in codes:
                    finished, status = os.waitpid(pid, os.WNOHANG)
                    if finished:
                        codes[pid] = os.waitstatus_to_exitcode(status)
            time.sleep(0.01)
        hung = [pid for pid in children if pid not in codes]
        for pid in hung:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        done.set()
        thread.join()
        logger.remove()
        print(json.dumps({"children": children, "codes": [codes.get(pid) for pid in children], "hung": hung}))
    """
    # A small queue bound keeps the parent's final drain cheap: the chatter only has to hold the locks.
    info = run_program(body, endpoint, timeout=60, T_QUEUE="2000")
    assert info["hung"] == [], f"children deadlocked after fork: {info}"
    assert info["codes"] == [0] * 6
    stored = streams(logs_client)
    for k, pid in enumerate(info["children"]):
        assert stored.get(f"proc-{pid}") == [f"child {k}"], k
