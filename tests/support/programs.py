"""Child Python programs: running one from the repo root with a timeout, and program texts they share."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

import pytest

from tests.support import REPO_ROOT


def run_python(code: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` from the repo root with the current env plus ``env`` (see ``run_interpreter``)."""
    return run_interpreter(["-c", code], timeout, {**os.environ, **(env or {})})


def run_interpreter(args: list[str], timeout: float, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` from the repo root with exactly ``env``, capturing its output as text.

    A timeout is a test failure carrying whatever the child printed.
    """
    try:
        return subprocess.run(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"python {args[0]} did not finish within {timeout}s\n"
            f"--- stdout ---\n{_as_text(exc.stdout)}\n--- stderr ---\n{_as_text(exc.stderr)}"
        ) from None


def _as_text(data: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even with text=True on some paths.
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


#: loguru's README recipe for routing the standard ``logging`` module into loguru, as program text for
#: tests that run it in a subprocess (needs ``inspect``, ``logging`` and loguru's ``logger`` imported).
INTERCEPT_HANDLER_SOURCE = """\
class InterceptHandler(logging.Handler):
    def emit(self, record):
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())
"""

#: A child program's first lines: loguru's handlers removed, and a sink with the default JSON documents
#: added with ``format="{message}"``, configured from the environment: ``T_GROUP``, ``T_STREAM``, ``T_URL``,
#: ``T_FLUSH`` (the flush interval, 60 s by default) and ``T_SHUTDOWN`` (the shutdown timeout, 5 s). The
#: test's own lines follow (``gc``, ``os``, ``sys`` and loguru's ``logger`` are imported).
JSON_SINK_FROM_ENV = """\
import gc, os, sys
from loguru import logger
from loguru_cloudwatch import CloudWatchSink

logger.remove()
sink = CloudWatchSink(
    os.environ["T_GROUP"],
    os.environ["T_STREAM"],
    endpoint_url=os.environ["T_URL"],
    flush_interval=float(os.environ.get("T_FLUSH", "60")),
    retry_delay=0.005,
    shutdown_timeout=float(os.environ.get("T_SHUTDOWN", "5")),
)
logger.add(sink, format="{message}")
"""

#: Ways a child program's main code can end, as (code appended to the program, expected exit status).
PROGRAM_ENDINGS = [
    pytest.param("", 0, id="end-of-script"),
    pytest.param("sys.exit(3)", 3, id="sys-exit"),
    pytest.param("raise RuntimeError('unhandled at the end')", 1, id="unhandled-exception"),
]


class Child:
    """A child Python program whose stdout lines are read with a deadline (a reader thread queues them)."""

    def __init__(self, code: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put("")  # end of output

    def line(self, timeout: float = 20.0) -> str:
        """The next line; a failure naming what the child wrote on stderr if it ended or went silent."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line:
            self.kill()
            raise AssertionError(f"the child printed nothing more: {self.stderr()}")
        return line

    def printed_before_the_end(self) -> list[str]:
        """After ``close``: every line not read yet (the child printed them before it died)."""
        lines = []
        while not self._lines.empty():
            lines.append(self._lines.get())
        return [line for line in lines if line]

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._reader.join(10)

    def stderr(self) -> str:
        self.kill()
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def close(self) -> None:
        self.kill()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
