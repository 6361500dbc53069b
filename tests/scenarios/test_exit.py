"""Scenario 11 of issue 4: every way a program ends, SIGTERM included, with and without enqueue=True.

Each program runs in a subprocess with a timeout. The endings first: the end of the script, ``sys.exit``
and an unhandled exception deliver everything, and an endpoint that never answers holds the exit for
``shutdown_timeout`` at most, with and without enqueue. SIGTERM is Python's weak spot: its default action
kills the process at once (no atexit, no ``stop()``), so the queued records are lost unless the program
opts in with ``loguru_cloudwatch.install_sigterm_handler()``; both behaviours are pinned down here.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from loguru_cloudwatch import install_sigterm_handler
from tests.support import REPO_ROOT
from tests.support.aws import create_group_and_stream, read_json, read_messages
from tests.support.programs import JSON_SINK_FROM_ENV, PROGRAM_ENDINGS, run_python
from tests.support.proxy import FaultProxy

#: Off POSIX, every test here is skipped but the three endings without enqueue (which need no signal).
posix_signals = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")

GROUP = "scenario-exit"
#: Interpreter start, imports and the client of a child process, on a slow shared machine.
PROCESS_SLACK = 5.0

PREAMBLE = """\
import os, signal, sys, threading, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink, install_sigterm_handler

logger.remove()
sink = CloudWatchSink(
    os.environ["T_GROUP"], os.environ["T_STREAM"], endpoint_url=os.environ["T_URL"], serialize=False,
    flush_interval=60, retry_delay=0.005, shutdown_timeout=float(os.environ.get("T_SHUTDOWN", "5")),
)
logger.add(sink, format="{message}", enqueue=os.environ.get("T_ENQUEUE") == "1")
"""


def child_env(url: str, stream: str, enqueue: bool = False, **extra: str) -> dict[str, str]:
    return {"T_GROUP": GROUP, "T_STREAM": stream, "T_URL": url, "T_ENQUEUE": "1" if enqueue else "0", **extra}


class Child:
    """A child program that prints lines the test waits for, and is sent signals from outside."""

    def __init__(self, body: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PREAMBLE + body],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def wait_for_line(self, expected: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line == expected:
                return
            if line is None:
                self.proc.kill()
                self._close()
                raise AssertionError(f"the child never printed {expected!r}\n--- stderr ---\n{self.stderr}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self._close()
            raise AssertionError(f"the child did not end within {timeout}s\n--- stderr ---\n{self.stderr}") from None
        self._close()
        return code

    def _close(self) -> None:
        self.proc.wait()
        for pump in self._pumps:
            pump.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def stored(client: Any, stream: str) -> list[str]:
    """The events of a ``PREAMBLE`` program's stream (text mode: exactly what was logged)."""
    return read_messages(client, GROUP, stream)


def run_child(body: str, url: str, stream: str, timeout: float = 30, **env: str) -> Any:
    """Run the sink of ``JSON_SINK_FROM_ENV`` (JSON documents) then ``body`` in a child process."""
    code = JSON_SINK_FROM_ENV + textwrap.dedent(body)
    return run_python(code, timeout=timeout, env={"T_GROUP": GROUP, "T_STREAM": stream, "T_URL": url, **env})


def stored_messages(client: Any, stream: str) -> list[str]:
    """The ``message`` of each JSON document of a ``run_child`` program's stream."""
    return [document["message"] for document in read_json(client, GROUP, stream)]


# --------------------------------------------------------------------------- endings


@pytest.mark.parametrize(("ending", "returncode"), PROGRAM_ENDINGS)
def test_program_that_simply_ends_delivers_everything(
    endpoint: str, logs_client: Any, ending: str, returncode: int
) -> None:
    stream = f"ends-{returncode}"
    body = f"""
        for i in range(40):
            logger.info(f"ending {{i}}")
        {ending}
    """
    result = run_child(body, endpoint, stream)
    assert result.returncode == returncode, result.stderr
    if returncode == 1:
        assert "RuntimeError: unhandled at the end" in result.stderr
    assert "could not be delivered" not in result.stderr, result.stderr
    assert stored_messages(logs_client, stream) == [f"ending {i}" for i in range(40)]


def test_first_record_logged_right_before_exit_is_delivered(endpoint: str, logs_client: Any) -> None:
    # The only record, logged the moment the sink exists: the client must not be built at shutdown.
    result = run_child('logger.info("first and last")\n', endpoint, "first-and-last", T_FLUSH="2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert stored_messages(logs_client, "first-and-last") == ["first and last"]


def test_program_exits_within_shutdown_timeout_when_endpoint_never_answers(fault_proxy: FaultProxy) -> None:
    fault_proxy.set_schedule(["hang"] * 20)
    body = """
        for i in range(9):
            logger.info(f"lost {i}")
    """
    start = time.monotonic()
    result = run_child(body, fault_proxy.url, "hangs-at-exit", timeout=30, T_SHUTDOWN="1")
    elapsed = time.monotonic() - start

    assert result.returncode == 0, result.stderr
    assert fault_proxy.count("hang") >= 1
    assert elapsed < 1 + PROCESS_SLACK, f"the program took {elapsed:.1f}s to exit with shutdown_timeout=1"
    assert "loguru-cloudwatch: 9 records could not be delivered" in result.stderr, result.stderr


@posix_signals
@pytest.mark.parametrize(("ending", "returncode"), PROGRAM_ENDINGS)
def test_program_end_delivers_everything_with_enqueue(
    ending: str, returncode: int, endpoint: str, logs_client: Any
) -> None:
    stream = f"enqueue-end-{returncode}"
    body = f"for i in range(40):\n    logger.info(f'ending {{i}}')\n{ending}\n"
    result = run_python(PREAMBLE + body, timeout=30, env=child_env(endpoint, stream, enqueue=True))
    assert result.returncode == returncode, result.stderr
    assert "could not be delivered" not in result.stderr, result.stderr
    assert stored(logs_client, stream) == [f"ending {i}" for i in range(40)]


@posix_signals
def test_endpoint_that_never_answers_exit_is_bounded_with_enqueue(fault_proxy: FaultProxy) -> None:
    fault_proxy.set_schedule(["hang"] * 20)
    body = "for i in range(9):\n    logger.info(f'lost {i}')\n"
    start = time.monotonic()
    result = run_python(
        PREAMBLE + body, timeout=30, env=child_env(fault_proxy.url, "hangs", enqueue=True, T_SHUTDOWN="1")
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert fault_proxy.count("hang") >= 1
    assert elapsed < 1 + PROCESS_SLACK, elapsed
    assert "loguru-cloudwatch: 9 records could not be delivered" in result.stderr, result.stderr


# --------------------------------------------------------------------------- SIGTERM


QUEUED_THEN_WAIT = """
for i in range(30):
    logger.info(f"queued {i}")
if os.environ.get("T_OPT_IN") == "1":
    install_sigterm_handler()
print("READY", flush=True)
time.sleep(30)  # blocked in a system call when SIGTERM comes
print("still running", flush=True)
"""


@posix_signals
def test_sigterm_by_default_kills_at_once_and_the_queued_records_are_lost(endpoint: str, logs_client: Any) -> None:
    stream = "sigterm-default"
    create_group_and_stream(logs_client, GROUP, stream)
    child = Child(QUEUED_THEN_WAIT, child_env(endpoint, stream))
    child.wait_for_line("READY")
    child.signal()
    assert child.wait(10) == -signal.SIGTERM
    # Python's default for SIGTERM: no atexit, no stop(), no drain. This is what the opt-in is for.
    assert stored(logs_client, stream) == []
    assert child.stderr == ""


@posix_signals
@pytest.mark.parametrize("enqueue", [False, True], ids=["direct", "enqueue"])
def test_sigterm_with_the_opt_in_delivers_everything_then_dies_of_sigterm(
    enqueue: bool, endpoint: str, logs_client: Any
) -> None:
    stream = f"sigterm-opt-in-{enqueue}"
    child = Child(QUEUED_THEN_WAIT, child_env(endpoint, stream, enqueue=enqueue, T_OPT_IN="1"))
    child.wait_for_line("READY")
    signalled = time.monotonic()
    child.signal()
    # The process still ends as killed by SIGTERM (a shell shows 143), after the drain.
    assert child.wait(15) == -signal.SIGTERM
    assert time.monotonic() - signalled < 5.0
    assert stored(logs_client, stream) == [f"queued {i}" for i in range(30)]
    assert "could not be delivered" not in child.stderr, child.stderr


@posix_signals
def test_sigterm_with_the_opt_in_and_an_endpoint_that_never_answers_ends_within_shutdown_timeout(
    fault_proxy: FaultProxy,
) -> None:
    fault_proxy.set_schedule(["hang"] * 20)
    child = Child(QUEUED_THEN_WAIT, child_env(fault_proxy.url, "sigterm-hang", T_OPT_IN="1", T_SHUTDOWN="1"))
    child.wait_for_line("READY")
    signalled = time.monotonic()
    child.signal()
    assert child.wait(15) == -signal.SIGTERM
    elapsed = time.monotonic() - signalled
    assert fault_proxy.count("hang") >= 1
    assert 0.9 <= elapsed < 1 + 2.0, elapsed  # shutdown_timeout=1, plus the drain's bookkeeping
    assert "loguru-cloudwatch: 30 records could not be delivered" in child.stderr, child.stderr


@posix_signals
def test_second_sigterm_during_the_drain_kills_at_once(fault_proxy: FaultProxy) -> None:
    fault_proxy.set_schedule(["hang"] * 20)
    child = Child(QUEUED_THEN_WAIT, child_env(fault_proxy.url, "sigterm-twice", T_OPT_IN="1", T_SHUTDOWN="10"))
    child.wait_for_line("READY")
    child.signal()
    time.sleep(0.5)  # the drain is stuck on the endpoint
    assert child.proc.poll() is None
    signalled = time.monotonic()
    child.signal()
    assert child.wait(10) == -signal.SIGTERM
    assert time.monotonic() - signalled < 2.0


KEEPS_LOGGING = """
install_sigterm_handler()
i = 0
while True:  # the program does not know about the signal: it keeps logging during the drain
    logger.info(f"r{i:07d}")
    i += 1
    if i == 2000:
        print("READY", flush=True)
    if i % 100 == 0:
        # A real program does some I/O now and then. (A loop that never releases the GIL slows the
        # worker's HTTP calls down to one GIL switch interval per system call.)
        time.sleep(0.001)
"""


@posix_signals
@pytest.mark.parametrize("enqueue", [False, True], ids=["direct", "enqueue"])
def test_sigterm_while_the_main_thread_logs_nonstop_delivers_a_gapless_prefix(
    enqueue: bool, endpoint: str, logs_client: Any
) -> None:
    stream = f"sigterm-busy-{enqueue}"
    child = Child(KEEPS_LOGGING, child_env(endpoint, stream, enqueue=enqueue))
    child.wait_for_line("READY")
    child.signal()
    assert child.wait(20) == -signal.SIGTERM
    held = stored(logs_client, stream)
    # Everything logged until the sink stopped, once each and in order; nothing after it (ignored).
    assert len(held) >= 2000
    assert held == [f"r{i:07d}" for i in range(len(held))]


@posix_signals
def test_the_programs_own_sigterm_handler_keeps_control(endpoint: str, logs_client: Any) -> None:
    stream = "sigterm-own-handler"
    body = """
stop = threading.Event()
calls = []
signal.signal(signal.SIGTERM, lambda signum, frame: (calls.append(signum), stop.set()))
install_sigterm_handler()
install_sigterm_handler()  # twice: still one handler, chained once
for i in range(20):
    logger.info(f"work {i}")
print("READY", flush=True)
while not stop.wait(0.1):
    pass
logger.info(f"graceful shutdown after {len(calls)} signal")
sys.exit(0)  # its own decision: a normal exit, and loguru's exit hook delivers everything
"""
    child = Child(body, child_env(endpoint, stream))
    child.wait_for_line("READY")
    child.signal()
    assert child.wait(15) == 0
    assert stored(logs_client, stream) == [f"work {i}" for i in range(20)] + ["graceful shutdown after 1 signal"]


@posix_signals
def test_an_ignored_sigterm_stays_ignored(endpoint: str, logs_client: Any) -> None:
    stream = "sigterm-ignored"
    body = """
signal.signal(signal.SIGTERM, signal.SIG_IGN)
install_sigterm_handler()
logger.info("before")
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(0.2)
logger.info("after")
"""
    result = run_python(PREAMBLE + body, timeout=30, env=child_env(endpoint, stream))
    assert result.returncode == 0, result.stderr
    assert stored(logs_client, stream) == ["before", "after"]


@posix_signals
def test_install_outside_the_main_thread_raises() -> None:
    before = signal.getsignal(signal.SIGTERM)
    errors: list[BaseException] = []

    def install() -> None:
        try:
            install_sigterm_handler()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    [error] = errors
    assert isinstance(error, ValueError)  # signal.signal's own rule: only the main thread installs handlers
    assert signal.getsignal(signal.SIGTERM) is before


SIGTERM_DURING_EXIT = """
install_sigterm_handler()
for i in range(10):
    logger.info(f"exiting {i}")
print("READY", flush=True)
# The program ends: loguru's exit hook stops the sink, whose drain waits for the slow endpoint. SIGTERM
# arrives meanwhile (a supervisor stopping a program that is already on its way out).
"""


@posix_signals
def test_sigterm_during_the_exit_drain_waits_for_it(fault_proxy: FaultProxy, logs_client: Any) -> None:
    stream = "sigterm-during-exit"
    create_group_and_stream(logs_client, GROUP, stream)
    fault_proxy.set_schedule([("delay", 1.5)])
    child = Child(SIGTERM_DURING_EXIT, child_env(fault_proxy.url, stream))
    child.wait_for_line("READY")
    deadline = time.monotonic() + 10
    while fault_proxy.count("delay") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the exit drain is sending
    child.signal()
    # Ended by the signal, or normally if the exit drain finished first: either way, after that drain.
    assert child.wait(15) in (0, -signal.SIGTERM)
    # The signal's drain waited for the one in progress instead of cutting it short.
    assert stored(logs_client, stream) == [f"exiting {i}" for i in range(10)]


@posix_signals
def test_a_second_stop_waits_for_the_drain_in_progress(fault_proxy: FaultProxy, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, "two-stops")
    fault_proxy.set_schedule([("delay", 0.8)])
    from loguru_cloudwatch import CloudWatchSink

    sink = CloudWatchSink(
        GROUP, "two-stops", endpoint_url=fault_proxy.url, serialize=False, flush_interval=60, shutdown_timeout=5
    )
    for index in range(5):
        sink.write(_message(f"stop {index}"))
    first_done: list[float] = []
    first = threading.Thread(target=lambda: (sink.stop(), first_done.append(time.monotonic())))
    first.start()
    deadline = time.monotonic() + 10
    while fault_proxy.count("delay") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.stop()  # e.g. loguru's exit hook while another thread is stopping the sink
    returned = time.monotonic()
    first.join(10)
    assert first_done and first_done[0] <= returned  # it returned only once the drain was over
    assert read_messages(logs_client, GROUP, "two-stops") == [f"stop {index}" for index in range(5)]
    assert sink.stats.abandoned == 0


def _message(text: str) -> Any:
    """A loguru message as handlers pass it to a sink."""
    captured: list[Any] = []
    from loguru import logger

    handler = logger.add(captured.append, format="{message}")
    try:
        logger.info(text)
    finally:
        logger.remove(handler)
    return captured[0]


@posix_signals
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the signal mask from /proc (Linux)")
def test_the_sinks_thread_leaves_termination_signals_to_the_programs_threads(endpoint: str) -> None:
    from loguru_cloudwatch import CloudWatchSink

    sink = CloudWatchSink(GROUP, "mask", endpoint_url=endpoint, flush_interval=60, shutdown_timeout=1)
    try:
        native_id = sink._worker.native_id
        deadline = time.monotonic() + 5
        blocked = 0
        while time.monotonic() < deadline:
            status = Path(f"/proc/self/task/{native_id}/status").read_text()
            blocked = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
            if blocked:
                break
            time.sleep(0.01)
        # Otherwise the kernel may hand SIGTERM to this thread, and a main thread blocked in a wait would
        # never run the Python handler.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            assert blocked & (1 << (signum - 1)), hex(blocked)
        main_status = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
        assert "SigBlk:\t0000000000000000" in main_status  # the caller's own mask is untouched
    finally:
        sink.stop()
