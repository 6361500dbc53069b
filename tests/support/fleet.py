"""A fleet of child processes released at the same instant: what a deploy stops, or starts, together.

Each child runs a program that prints ``READY`` once it is set up, then blocks reading its stdin;
``Fleet.release()`` closes every stdin in one tight loop, and each child goes on. A child prints
``ENDING <time.monotonic()>`` as its program's last line (``time.monotonic()`` is the same clock in every
process here), so ``Ended.exit_seconds`` is the time its exit took: loguru's exit hook, the sink's drain,
the interpreter's teardown. Every wait has a deadline; a child still running at the end is killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.support import REPO_ROOT

#: What a child program runs once released, before its own ending (its last line).
WAIT_FOR_RELEASE = 'print("READY", flush=True)\nsys.stdin.read()\n'
ENDING = 'print("ENDING", time.monotonic(), flush=True)\n'


@dataclass
class Ended:
    """How one child ended."""

    returncode: int
    stdout: str
    stderr: str
    #: From the end of the child's program (its ENDING line) to the end of the process, in seconds.
    exit_seconds: float


class Fleet:
    """``count`` children running ``program`` (Python source), each with ``env(index)`` added to the
    environment."""

    def __init__(self, program: str, count: int, env: Any) -> None:
        self.children = [
            subprocess.Popen(
                [sys.executable, "-c", program],
                cwd=REPO_ROOT,
                env={**os.environ, **env(index)},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for index in range(count)
        ]
        self._ended: list[float] = [0.0] * count
        self._out: list[str] = [""] * count
        self._err: list[str] = [""] * count
        self._readers: list[threading.Thread] = []

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_: object) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
        for child in self.children:
            child.wait(10)
        for reader in self._readers:
            reader.join(10)
        for child in self.children:
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None and not stream.closed:
                    stream.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every child printed READY (interpreter start and imports: slow on a busy machine)."""
        deadline = time.monotonic() + timeout
        for index, child in enumerate(self.children):
            assert child.stdout is not None
            line = _readline(child.stdout, deadline - time.monotonic())
            if line.strip() != "READY":
                child.kill()
                _, err = child.communicate(timeout=10)
                raise AssertionError(f"child {index} did not get ready: {line!r}\n--- stderr ---\n{err}")

    def release(self) -> None:
        """Let every child go on, at the same instant."""
        for child in self.children:
            assert child.stdin is not None
            child.stdin.close()
        for index in range(len(self.children)):
            reader = threading.Thread(target=self._read, args=(index,), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _read(self, index: int) -> None:
        child = self.children[index]
        assert child.stdout is not None
        err_reader = threading.Thread(target=self._read_stderr, args=(index,), daemon=True)
        err_reader.start()
        self._out[index] = child.stdout.read()
        err_reader.join()
        child.wait()
        self._ended[index] = time.monotonic()

    def _read_stderr(self, index: int) -> None:
        stream = self.children[index].stderr
        assert stream is not None
        self._err[index] = stream.read()

    def reap(self, timeout: float) -> list[Ended]:
        """Wait (at most ``timeout`` seconds in all) for every child to end; how each ended."""
        deadline = time.monotonic() + timeout
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        stuck = [index for index, child in enumerate(self.children) if child.poll() is None]
        if stuck:
            raise AssertionError(f"children {stuck} did not end within {timeout}s")
        ended = []
        for index, child in enumerate(self.children):
            words = self._out[index].split()
            ending = float(words[words.index("ENDING") + 1]) if "ENDING" in words else float("nan")
            assert child.returncode is not None
            ended.append(Ended(child.returncode, self._out[index], self._err[index], self._ended[index] - ending))
        return ended


def _readline(stream: Any, timeout: float) -> str:
    """One line of ``stream``, or "" if none came within ``timeout`` seconds."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(max(0.0, timeout))
    return line[0] if line else ""
