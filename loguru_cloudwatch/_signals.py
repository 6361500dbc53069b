"""Opt-in SIGTERM handling: deliver what is queued before the process dies (``install_sigterm_handler``).

Python's default action for SIGTERM kills the process at once: no ``atexit``, no loguru ``remove()``, no
``stop()``, so every queued record is lost. ``docker stop``, Kubernetes, systemd and most process
supervisors stop a program with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType
from typing import Any

#: Extra seconds the drain may take beyond the largest ``shutdown_timeout`` before the signal is re-raised
#: (a sink another thread is already stopping is waited for: see ``CloudWatchSink.stop``).
_SLACK = 1.5


class _SigtermHandler:
    """The installed handler: the previous Python handler keeps control; otherwise drain, then die."""

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        previous = self.previous
        if callable(previous):
            # The program handles SIGTERM itself (e.g. a graceful shutdown): it decides. When it ends
            # normally, loguru's atexit hook stops the sink, which delivers what is left.
            previous(signum, frame)
            return
        if previous == signal.SIG_IGN:
            return
        # A second SIGTERM while the drain runs kills at once, as it would have without this handler.
        signal.signal(signum, signal.SIG_DFL)
        # The drain runs on its own thread: this handler interrupts the main thread anywhere, possibly
        # inside a logging call holding a lock the drain needs. Non-daemon, so that a program ending
        # meanwhile waits for it. It re-raises the signal when done.
        threading.Thread(
            target=_drain_then_reraise, args=(signum,), name="loguru-cloudwatch-sigterm", daemon=False
        ).start()


def _run_bounded(function: Any, timeout: float) -> None:
    thread = threading.Thread(target=function, name="loguru-cloudwatch-drain", daemon=True)
    thread.start()
    thread.join(timeout)


def _drain_then_reraise(signum: int) -> None:
    try:
        from loguru import logger

        from ._sink import _live_sinks

        # Every sink, also those another thread is stopping (a multiprocessing finalizer, loguru's exit
        # hook): their stop() waits for that drain instead of letting the signal cut it short.
        sinks = list(_live_sinks)
        timeout = max((sink._config.shutdown_timeout for sink in sinks), default=0.0)
        # Records loguru still holds for enqueue=True handlers reach the sinks first.
        _run_bounded(logger.complete, timeout)
        threads = [threading.Thread(target=sink.stop, daemon=True) for sink in sinks]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout + _SLACK
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    finally:
        # The default action again: the process ends as killed by the signal (exit status 128 + 15).
        os.kill(os.getpid(), signum)
        # Only reached if something re-installed a handler meanwhile: end anyway.
        time.sleep(1.0)
        os._exit(128 + signum)


def install_sigterm_handler() -> None:
    """Make SIGTERM deliver the queued records before the process dies.

    Without it, SIGTERM (``docker stop``, Kubernetes, systemd, ``kill``) kills a Python program at once and
    the records still queued in every ``CloudWatchSink`` are lost. With it, SIGTERM first stops every sink
    of the process (each delivers what is left within its ``shutdown_timeout``, after loguru has handed
    over what it holds for ``enqueue=True`` handlers), then the signal is raised again with its default
    action, so the process still ends as killed by SIGTERM (exit status 143 in a shell). The program keeps
    running during the drain; records logged after it started are ignored (``stats.ignored``). A second
    SIGTERM during the drain kills at once.

    If SIGTERM already has a Python handler (your own graceful shutdown, a framework's), that handler is
    called instead and keeps control: when the program then ends normally, loguru's exit hook delivers
    what is left as usual. If SIGTERM is ignored (``SIG_IGN``), it stays ignored. Forked children inherit
    the handler; ``spawn`` children must call this function themselves.

    Like every Python signal handler, it runs in the main thread, between two bytecodes or when a blocking
    call of the main thread is interrupted. CPython can miss that interruption when the signal arrives
    just as the main thread enters a blocking call without a timeout (a ``multiprocessing`` queue or
    lock, for instance: ``Pool.terminate()`` meets this), or when another thread of the program takes
    the signal: the drain then starts only when the main thread next runs Python code. The sink's own
    thread blocks these signals so that it never takes them. Main loops that wait with a timeout are
    safe; prefer ``Pool.close()`` and ``join()`` to ``terminate()``.

    Call it from the main thread (``signal.signal`` requires it). Calling it again does nothing.
    """
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, _SigtermHandler):
        return
    signal.signal(signal.SIGTERM, _SigtermHandler(current))
