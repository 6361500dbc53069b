"""A moto server on a free loopback port: in this process (the tests' session fixture) or in its own
process (the benchmarks, so that its CPU is not the measured program's).

moto is imported only when a server is started: ``bench`` imports this module in every benchmark process.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MotoServerInfo:
    url: str
    host: str
    port: int


def free_port() -> int:
    """A loopback port nothing listened on a moment ago (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reset_moto(url: str, timeout: float) -> int:
    """Wipe every moto state (groups, streams, events); returns the HTTP status (200)."""
    request = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)


@contextlib.contextmanager
def threaded_moto_server() -> Iterator[MotoServerInfo]:
    """moto's ThreadedMotoServer in this process, on a free loopback port, until the block ends."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO to stderr; only problems are interesting.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # port=0 is supported: the bound port is read back from the werkzeug server.
    host, port = server.get_host_and_port()
    try:
        yield MotoServerInfo(url=f"http://{host}:{port}", host=host, port=port)
    finally:
        server.stop()
        # stop() only shuts the serve loop down; close the listening socket too.
        if server._server is not None:
            server._server.server_close()


class MotoProcess:
    """``python -m moto.server`` in its own process on a free port, for the ``with`` block; or, given
    ``url``, a server already running there (nothing started, nothing stopped)."""

    def __init__(self, url: str | None = None, env: dict[str, str] | None = None) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = url or ""
        self._env = env

    def __enter__(self) -> MotoProcess:
        if not self.url:
            port = free_port()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=self._env,
            )
            self.url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    self.reset()
                    break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the moto server did not start") from None
                    time.sleep(0.1)
        return self

    def __exit__(self, *_: Any) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def reset(self) -> None:
        """Wipe moto's state (keeps its memory small between rounds)."""
        status = reset_moto(self.url, timeout=30)
        if status != 200:
            raise RuntimeError(f"moto reset answered {status}")
