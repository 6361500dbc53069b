"""examples/: every example runs for real (a subprocess, a gunicorn server, a Jupyter kernel) against moto.

Each example takes the endpoint from LOGURU_CLOUDWATCH_ENDPOINT_URL; the tests read back what arrived and
check it exactly: which records, in which stream, with which fields, and how many.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

from tests.support import REPO_ROOT
from tests.support.aws import read_json
from tests.support.programs import run_interpreter, run_python
from tests.support.waiting import wait_for

EXAMPLES = REPO_ROOT / "examples"


def example_env(endpoint: str, **extra: str) -> dict[str, str]:
    """The test's (hermetic) environment, no LOGURU_CLOUDWATCH_* but the endpoint, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOGURU_CLOUDWATCH_")}
    env["LOGURU_CLOUDWATCH_ENDPOINT_URL"] = endpoint
    env.update(extra)
    return env


def run_example(name: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python examples/<name>`` from the repository root, as the README says; must exit 0."""
    result = run_interpreter([f"examples/{name}"], timeout, env)
    assert result.returncode == 0, f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert "loguru-cloudwatch:" not in result.stderr, result.stderr  # the sink reported no problem
    return result


def group_streams(client: Any, group: str) -> dict[str, list[dict[str, Any]]]:
    """Every stream of ``group`` with its JSON documents, oldest first."""
    names = [s["logStreamName"] for s in client.describe_log_streams(logGroupName=group)["logStreams"]]
    return {name: read_json(client, group, name) for name in names}


# --------------------------------------------------------------------------- basic_script.py


def test_basic_script(endpoint: str, logs_client: Any) -> None:
    result = run_example("basic_script.py", example_env(endpoint))

    assert "sent=6 batches=1 dropped=0 rejected=0" in result.stdout, result.stdout
    assert "log group 'examples/basic-script', stream 'basic_script.py'" in result.stdout
    assert set(group_streams(logs_client, "examples/basic-script")) == {"basic_script.py"}
    documents = read_json(logs_client, "examples/basic-script", "basic_script.py")
    assert [(d["level"], d["message"]) for d in documents] == [
        ("INFO", "script started"),
        ("INFO", "processing order with 2 items"),
        ("WARNING", "stock low for pear"),
        ("INFO", "processing order with 1 items"),
        ("ERROR", "order failed"),
        ("INFO", "script finished"),
    ]  # the DEBUG record stayed local
    # contextualize() reaches records of called functions; bind() only its own logger's.
    assert [(d.get("request_id"), d.get("order_id")) for d in documents] == [
        (None, None),
        ("req-001", 42),
        ("req-001", None),
        (None, 43),
        (None, 43),
        (None, None),
    ]
    exception = documents[4]["exception"]
    assert (exception["type"], exception["value"]) == ("ValueError", "order 43: every quantity must be positive")
    assert exception["traceback"].startswith("Traceback (most recent call last):")
    assert "raise ValueError" in exception["traceback"]
    assert all("exception" not in d for d in documents[:4] + documents[5:])
    assert {d["logger"] for d in documents} == {"__main__"}
    # retention_days applies to a group the sink created.
    (group,) = logs_client.describe_log_groups(logGroupNamePrefix="examples/basic-script")["logGroups"]
    assert group["retentionInDays"] == 7


# --------------------------------------------------------------------------- env_only.py

ENV_ONLY_MESSAGES = [
    ("INFO", "job started", None),
    ("INFO", "batch 1 processed", 1),
    ("INFO", "batch 2 processed", 2),
    ("INFO", "batch 3 processed", 3),
    ("ERROR", "could not parse the input", None),
    ("SUCCESS", "job done", None),
]


def test_env_only_configured_by_environment_variables(endpoint: str, logs_client: Any) -> None:
    env = example_env(
        endpoint,
        LOGURU_CLOUDWATCH_LOG_GROUP="examples/env-only",
        LOGURU_CLOUDWATCH_LOG_STREAM="nightly-{pid}",
        LOGURU_CLOUDWATCH_LEVEL="INFO",
        LOGURU_CLOUDWATCH_REGION="us-east-1",
        LOGURU_CLOUDWATCH_FLUSH_INTERVAL="0.2",
    )
    run_example("env_only.py", env)

    streams = group_streams(logs_client, "examples/env-only")
    assert len(streams) == 1, streams
    ((stream, documents),) = streams.items()
    assert re.fullmatch(r"nightly-\d+", stream), stream
    assert {d["process"] for d in documents} == {int(stream.split("-")[1])}
    assert [(d["level"], d["message"], d.get("batch")) for d in documents] == ENV_ONLY_MESSAGES  # no DEBUG
    assert documents[4]["exception"]["type"] == "ValueError"


def test_env_only_without_the_group_variable_ships_nothing(endpoint: str, logs_client: Any) -> None:
    result = run_example("env_only.py", example_env(endpoint))

    assert "job done" in result.stderr  # loguru's own stderr handler still works
    assert logs_client.describe_log_groups()["logGroups"] == []


# --------------------------------------------------------------------------- lambda_handler.py

LAMBDA_GROUP = "examples/lambda-handler"
LAMBDA_STREAM = "2026/11/25/[$LATEST]0123456789abcdef"


def test_lambda_handler_simulated_invocations(endpoint: str, logs_client: Any) -> None:
    result = run_example("lambda_handler.py", example_env(endpoint, AWS_LAMBDA_LOG_STREAM_NAME=LAMBDA_STREAM))

    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4, result.stdout
    request_ids = [line.split(" ", 1)[0] for line in lines[:3]]
    assert [line.split(" ", 1)[1] for line in lines[:3]] == [
        "{'statusCode': 200, 'total': 16}",
        "{'statusCode': 200, 'total': 20}",
        "{'statusCode': 400}",
    ]
    assert lines[3] == "sent=6 queued=0 batches=3"  # one delivery per invocation, by force_flush
    assert result.stderr == ""  # logger.remove() took loguru's stderr handler away

    # The stream is the one Lambda named for this execution environment.
    assert set(group_streams(logs_client, LAMBDA_GROUP)) == {LAMBDA_STREAM}
    documents = read_json(logs_client, LAMBDA_GROUP, LAMBDA_STREAM)
    assert [(d["aws_request_id"], d["level"], d["message"], d.get("total")) for d in documents] == [
        (request_ids[0], "INFO", "order received with 2 items", None),
        (request_ids[0], "INFO", "order accepted", 16),
        (request_ids[1], "INFO", "order received with 1 items", None),
        (request_ids[1], "INFO", "order accepted", 20),
        (request_ids[2], "INFO", "order received with 1 items", None),
        (request_ids[2], "ERROR", "invalid order", None),
    ]
    assert documents[5]["exception"]["type"] == "KeyError"


LAMBDA_FROZEN_PROGRAM = """\
import json, os, runpy

module = runpy.run_path("examples/lambda_handler.py")  # imported, not run as __main__
handler, sink = module["handler"], module["sink"]

class Context:
    def __init__(self, request_id):
        self.aws_request_id = request_id
    def get_remaining_time_in_millis(self):
        return 30_000

after_each = []
for number, event in enumerate([{"items": [{"price": 1, "quantity": 1}]}, {"items": None}]):
    handler(event, Context(f"req-{number}"))
    stats = sink.stats
    after_each.append([stats.sent, stats.queued])
print(json.dumps(after_each), flush=True)
os._exit(0)  # a discarded execution environment: no atexit, no loguru remove(), no stop()
"""


def test_lambda_handler_delivers_before_returning(endpoint: str, logs_client: Any) -> None:
    result = run_python(LAMBDA_FROZEN_PROGRAM, timeout=30, env=example_env(endpoint))
    assert result.returncode == 0, result.stderr

    # Everything an invocation logged was delivered when the handler returned...
    assert json.loads(result.stdout) == [[2, 0], [3, 0]]
    # ...so it is all there although the process never exited normally.
    (stream,) = group_streams(logs_client, LAMBDA_GROUP)
    documents = read_json(logs_client, LAMBDA_GROUP, stream)
    assert [(d["aws_request_id"], d["message"]) for d in documents] == [
        ("req-0", "order received with 1 items"),
        ("req-0", "order accepted"),
        ("req-1", "invalid order"),
    ]
    assert documents[2]["exception"]["type"] == "TypeError"


# --------------------------------------------------------------------------- web_service.py

WEB_GROUP = "examples/web-service"
WORKERS = 3


class OutputReader:
    """Collects a subprocess's merged stdout/stderr lines on a thread (so its pipe never fills)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def join(self) -> None:
        self._thread.join(timeout=10)


def get(url: str, request_id: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"X-Request-Id": request_id})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return dict(json.loads(response.read()))


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn is POSIX-only")
def test_web_service_gunicorn_workers_each_ship_their_records_once(endpoint: str, logs_client: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, "examples/web_service.py", "--bind", "127.0.0.1:0", "--workers", str(WORKERS)],
        cwd=REPO_ROOT,
        env=example_env(endpoint),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the workers can be cleaned up with it
    )
    output = OutputReader(process)
    try:
        listening = wait_for(
            lambda: re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", output.text()),
            timeout=20,
            message="gunicorn listening",
        )
        base_url = listening.group(1)
        wait_for(lambda: output.text().count("Booting worker") == WORKERS, timeout=20, message="workers booted")

        served: dict[str, int] = {}  # request id -> pid of the worker that answered
        with concurrent.futures.ThreadPoolExecutor(max_workers=2 * WORKERS) as pool:

            def round_of_requests() -> bool:
                ids = [f"req-{len(served) + i}" for i in range(12)]
                answers = pool.map(lambda rid: get(f"{base_url}/orders/{rid}", rid), ids)
                for request_id, answer in zip(ids, answers, strict=True):
                    assert answer["request_id"] == request_id
                    served[request_id] = answer["worker_pid"]
                return len(set(served.values())) == WORKERS

            # Concurrent requests spread over the workers; keep going (bounded) until every worker served
            # some. Only then is each sure to have its own SIGTERM handler: gunicorn logs "Booting worker"
            # before the worker installs it, and a SIGTERM in between goes to the arbiter's handler the
            # child inherited, which swallows it (gunicorn's race, not the sink's): that worker would run on
            # until killed at graceful_timeout (2 runs in 65 under two CPU hogs).
            wait_for(round_of_requests, timeout=20, interval=0, message=f"requests served by all {WORKERS} workers")

        process.send_signal(signal.SIGTERM)  # graceful stop: every worker exits, delivering what it holds
        assert process.wait(timeout=30) == 0, output.text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        output.join()
        assert process.stdout is not None
        process.stdout.close()
    assert "loguru-cloudwatch:" not in output.text(), output.text()
    # Every worker left by itself (none was killed at gunicorn's graceful_timeout, e.g. hung in its sink).
    assert "SIGKILL" not in output.text(), output.text()
    assert output.text().count("Worker exiting") == WORKERS, output.text()

    streams = group_streams(logs_client, WEB_GROUP)
    worker_pids = set(served.values())
    # One stream per worker that served requests, named by the worker: none for the master.
    assert set(streams) == {f"{socket.gethostname()}/{pid}" for pid in worker_pids}, output.text()
    delivered: list[str] = []
    for name, documents in streams.items():
        pid = int(name.rsplit("/", 1)[1])
        for document in documents:
            # Each record is in the stream of the worker that served its request.
            assert document["process"] == pid == served[document["request_id"]]
            assert document["message"] == f"GET /orders/{document['request_id']}"
            delivered.append(document["request_id"])
    # Every request's record arrived, exactly once.
    assert sorted(delivered) == sorted(served)


FORK_DURING_CLIENT_BUILD = """\
import json, os, threading, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink, _client

building = threading.Event()
real_build = _client.build_client

def slow_build(*args):
    building.set()
    time.sleep(0.5)  # stands for OpenSSL's SSL_CTX_new, which runs without the GIL
    return real_build(*args)

_client.build_client = slow_build
logger.remove()
sink = CloudWatchSink("fork-during-build", "{pid}", endpoint_url=os.environ["T_URL"], region_name="us-east-1")
logger.add(sink, format="{message}")
assert building.wait(10)
start = time.monotonic()
pid = os.fork()  # what gunicorn does right after importing an app that added a sink
if pid == 0:
    logger.info("from the child")
    os._exit(0 if sink.force_flush(10) else 3)
waited = time.monotonic() - start
_, status = os.waitpid(pid, 0)
print(json.dumps({"waited": waited, "child_exit": os.waitstatus_to_exitcode(status), "child": pid}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_fork_waits_for_a_client_build_in_progress(endpoint: str, logs_client: Any) -> None:
    """Why the web service is safe to fork: a fork never copies a half-built client's OpenSSL state.

    Under load, gunicorn could fork while the master's sink thread was inside SSL_CTX_new (no GIL held);
    the worker then hung for ever in its own first SSLContext() and none of its records arrived.
    """
    result = run_python(FORK_DURING_CLIENT_BUILD, timeout=30, env={"T_URL": endpoint})
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["waited"] >= 0.25, outcome  # the fork waited for the build to finish
    assert outcome["child_exit"] == 0, outcome  # the child built its own client and delivered
    assert [d["message"] for d in read_json(logs_client, "fork-during-build", str(outcome["child"]))] == [
        "from the child"
    ]


# --------------------------------------------------------------------------- notebook.ipynb


def test_notebook_runs_in_a_real_kernel(
    endpoint: str, logs_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The kernel inherits this process's environment: the endpoint, the fake credentials, and Jupyter
    # paths inside tmp_path (nothing written to the home directory).
    for name in list(os.environ):
        if name.startswith("LOGURU_CLOUDWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOGURU_CLOUDWATCH_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # no DeprecationWarning from jupyter_core
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))

    notebook = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    nbformat.validate(notebook)
    client = nbclient.NotebookClient(
        notebook,
        timeout=60,
        startup_timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError if a cell fails; shuts the kernel down gracefully

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]

    def stdout_of(cell: Any) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")

    shipping = re.fullmatch(r"shipping to examples/notebook/(\S+)\n", stdout_of(code_cells[0]))
    assert shipping, stdout_of(code_cells[0])
    stream = shipping.group(1)
    assert stream == f"{socket.gethostname()}/{stream.rsplit('/', 1)[1]}"
    kernel_pid = int(stream.rsplit("/", 1)[1])
    # The records also show in the cell outputs (loguru's stderr handler).
    assert "epoch 3 done, loss=0.333" in "".join(o.get("text", "") for o in code_cells[1].outputs)
    assert stdout_of(code_cells[3]) == "delivered: True, sent: 4\n"
    # Read back with boto3 inside the kernel, while it lived.
    assert stdout_of(code_cells[4]) == (
        f"4 events in examples/notebook/{stream}:\n"
        "  INFO     epoch 1 done, loss=1.000  {'epoch': 1}\n"
        "  INFO     epoch 2 done, loss=0.500  {'epoch': 2}\n"
        "  INFO     epoch 3 done, loss=0.333  {'epoch': 3}\n"
        "  ERROR    lookup failed  {'exception': \"KeyError: 'b'\"}\n"
    )

    # The kernel is gone; the record of the last cell, never flushed, was delivered at its shutdown.
    with pytest.raises(ProcessLookupError):
        os.kill(kernel_pid, 0)
    documents = read_json(logs_client, "examples/notebook", stream)
    assert [d["message"] for d in documents] == [
        "epoch 1 done, loss=1.000",
        "epoch 2 done, loss=0.500",
        "epoch 3 done, loss=0.333",
        "lookup failed",
        "notebook finished",
    ]
    assert set(group_streams(logs_client, "examples/notebook")) == {stream}
