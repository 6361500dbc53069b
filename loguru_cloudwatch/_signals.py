"""SIGTERM: deliver what is queued before the process dies.

Python's default action for SIGTERM kills the process at once: no ``atexit``, no loguru ``remove()``, no
``stop()``, so every queued record is lost. ``docker stop``, Kubernetes, systemd, most process supervisors
and ``multiprocessing`` (``Pool.terminate()``, which ``with Pool() as pool:`` calls on exit, and
``Process.terminate()``) stop a process with SIGTERM. A program opts in with ``install_sigterm_handler``;
in a ``multiprocessing`` child the sink does it by itself (``drain_on_sigterm_in_child``).

A Python signal handler runs in the main thread, between two bytecodes. A main thread blocked in a call
that CPython does not interrupt at that moment (the signal arrives just as it enters a lock or a queue
wait without a timeout, which is where an idle pool worker sits) would run it late or never, and the
parent waiting for that worker would wait for ever. So the handler also gets the signal through
``signal.set_wakeup_fd``: CPython's C-level handler writes each signal's number to that pipe the instant
it arrives, and a watcher thread reading it starts the drain whatever the main thread is doing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from ._report import write_stderr

#: Asynchronous signals the worker thread blocks, so that the kernel delivers them to another thread.
SIGNALS_FOR_THE_PROGRAM = {
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
}


def leave_signals_to_the_program() -> None:
    """Block the program's asynchronous signals in the calling (helper) thread.

    A Python signal handler runs only when the main thread wakes up: a signal the kernel delivered to a
    helper thread would leave a main thread blocked in a wait (a lock, a queue) asleep, and the handler
    (SIGTERM, SIGINT...) never run.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS_FOR_THE_PROGRAM)


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
        _DRAIN.begin(signum)


class _Drain:
    """The one drain of this process: started once, by the handler or by the watcher."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.started = False

    def begin(self, signum: int) -> None:
        with self.lock:
            if self.started:
                return
            self.started = True
        # On its own thread: the handler interrupts the main thread anywhere, possibly inside a logging
        # call holding a lock the drain needs. Non-daemon, so that a program ending meanwhile waits for it.
        drain = threading.Thread(
            target=_drain_then_reraise, args=(signum,), name="loguru-cloudwatch-sigterm", daemon=False
        )
        # "can't create new thread at interpreter shutdown" (Python 3.12.0 and 3.12.1, even in atexit hooks):
        # the program is already ending, and loguru's exit hook is stopping every sink. That drain goes on;
        # raising here would abort it from inside its own wait.
        with contextlib.suppress(RuntimeError):
            drain.start()


_DRAIN = _Drain()


class _Watcher:
    """Reads the wakeup fd and starts the drain on SIGTERM, even while the main thread cannot run Python."""

    def __init__(self) -> None:
        self.read_fd = -1
        self.write_fd = -1

    def start(self) -> bool:
        """Take the wakeup fd (main thread only); False when the program already uses it (asyncio does)."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except (ValueError, OSError):
            os.close(read_fd)
            os.close(write_fd)
            return False
        if previous != -1:
            signal.set_wakeup_fd(previous)  # someone else's: keep it, rely on the handler alone
            os.close(read_fd)
            os.close(write_fd)
            return False
        self.read_fd, self.write_fd = read_fd, write_fd
        threading.Thread(target=self._watch, args=(read_fd,), name="loguru-cloudwatch-signals", daemon=True).start()
        return True

    @property
    def active(self) -> bool:
        return self.read_fd != -1

    def _watch(self, read_fd: int) -> None:
        leave_signals_to_the_program()
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            if signal.SIGTERM in data and _ours_to_drain():
                # A second SIGTERM during the drain is left to the handler, which restores the default
                # action when it runs: counting deliveries here could take another process's write to
                # this pipe (between a fork and its exec) for a second signal.
                _DRAIN.begin(signal.SIGTERM)

    def after_fork_in_child(self) -> None:
        # The pipe is the parent's: the parent's watcher would read this process's signals. Start again.
        if not self.active:
            return
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.read_fd = self.write_fd = -1
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError):
            return
        if isinstance(signal.getsignal(signal.SIGTERM), _SigtermHandler):
            self.start()


_WATCHER = _Watcher()


def _ours_to_drain() -> bool:
    """SIGTERM's handler is this module's, with no handler of the program's behind it."""
    handler = signal.getsignal(signal.SIGTERM)
    return isinstance(handler, _SigtermHandler) and handler.previous == signal.SIG_DFL


def _after_fork_in_child() -> None:
    _DRAIN.reset()  # the parent's drain, if any, is not this process's
    _WATCHER.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _drain_then_reraise(signum: int) -> None:
    try:
        from loguru import logger

        from ._sink import stop_every_sink

        # Records loguru still holds for enqueue=True handlers reach the sinks first, then every sink
        # stops at once (also those another thread is stopping: their stop() waits for that drain).
        stop_every_sink(before=logger.complete, slack=_SLACK)
    finally:
        _die_of(signum)


def _die_of(signum: int) -> None:
    """End the process with the signal's default action (as killed by it: exit status 128 + signum)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signum, signal.SIG_DFL)
    elif signal.getsignal(signum) != signal.SIG_DFL:
        _reset_to_default(signum)  # the main thread never ran the handler, which would have done it
    os.kill(os.getpid(), signum)
    # Only reached if the signal is blocked everywhere or a handler came back meanwhile: end anyway.
    time.sleep(1.0)
    os._exit(128 + signum)


def _reset_to_default(signum: int) -> None:
    """``signal(signum, SIG_DFL)`` from any thread (Python's ``signal.signal`` is for the main thread only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.signal(signum, None)  # NULL is SIG_DFL
    except Exception:
        pass  # _die_of falls back to os._exit


def install_sigterm_handler() -> None:
    """Make SIGTERM deliver the queued records before the process dies.

    Without it, SIGTERM (``docker stop``, Kubernetes, systemd, ``kill``) kills a Python program at once and
    the records still queued in every ``CloudWatchSink`` are lost. With it, SIGTERM first stops every sink
    of the process (each delivers what is left within its ``shutdown_timeout``, after loguru has handed
    over what it holds for ``enqueue=True`` handlers), then the signal is raised again with its default
    action, so the process still ends as killed by SIGTERM (exit status 143 in a shell). The program keeps
    running during the drain; records logged after it started are ignored (``stats.ignored``). A second
    SIGTERM during the drain kills at once (once the main thread has run the handler). In a
    ``multiprocessing`` child the sink installs it by itself.

    If SIGTERM already has a Python handler (your own graceful shutdown, a framework's), that handler is
    called instead and keeps control: when the program then ends normally, loguru's exit hook delivers
    what is left as usual. If SIGTERM is ignored (``SIG_IGN``), it stays ignored. Forked children inherit
    the handler; ``spawn`` children must call this function themselves (unless they are ``multiprocessing``
    children).

    The drain starts the moment the signal arrives, whatever the main thread is doing: besides the Python
    handler (which runs in the main thread, between two bytecodes), the signal is read from
    ``signal.set_wakeup_fd`` by a small thread. If the program already uses the wakeup fd (an ``asyncio``
    loop with signal handlers does), the handler alone starts the drain, when the main thread next runs
    Python code. The sink's own threads block these signals so that they never take them.

    Call it from the main thread (``signal.signal`` requires it). Calling it again does nothing.
    """
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, _SigtermHandler):
        return
    signal.signal(signal.SIGTERM, _SigtermHandler(current))
    if current == signal.SIG_DFL and not _WATCHER.active:
        _WATCHER.start()


_SAID_OFF_MAIN_THREAD = False


def drain_on_sigterm_in_child() -> None:
    """In a ``multiprocessing`` child: make SIGTERM deliver the queued records, unless SIGTERM is taken.

    Called by the sink in every ``multiprocessing`` child (fork, spawn, forkserver). A child whose SIGTERM
    already has a handler, or is ignored, keeps it. A child whose sink was created outside its main thread
    cannot install a handler: that is said once on stderr, since its records would be lost to SIGTERM.
    """
    global _SAID_OFF_MAIN_THREAD
    current = signal.getsignal(signal.SIGTERM)
    if isinstance(current, _SigtermHandler) or current != signal.SIG_DFL:
        return
    if threading.current_thread() is not threading.main_thread():
        if _SAID_OFF_MAIN_THREAD:
            return
        _SAID_OFF_MAIN_THREAD = True
        write_stderr(
            "this multiprocessing child's sink was created outside the main thread, so it cannot drain on "
            "SIGTERM: Pool.terminate() (what `with Pool() as pool:` does on exit) or Process.terminate() "
            "would lose its queued records. Create the sink in the main thread, or call "
            "install_sigterm_handler() there, or end pools with close() and join()"
        )
        return
    try:
        install_sigterm_handler()
    except ValueError as error:  # pragma: no cover - signal.signal refused (an embedded interpreter)
        write_stderr(f"could not install the SIGTERM drain in this multiprocessing child: {error}")


__all__ = ["drain_on_sigterm_in_child", "install_sigterm_handler"]
