"""Keeping ``fork()`` out of the moments a CloudWatch client is being built (see ``ForkGuard``)."""

from __future__ import annotations

import os
import threading


class ForkGuard:
    """Keeps ``fork()`` out of client construction.

    Building a client creates SSL contexts, and CPython runs OpenSSL's ``SSL_CTX_new`` without the GIL: a
    fork from another thread at that moment (gunicorn forking workers right after importing an app that
    added a sink) can copy OpenSSL's internal locks while held, and the child then hangs for ever in its
    first ``SSLContext()``: its sink never delivers. So ``_client.connect`` holds ``lock`` while it makes the
    session and its credential resolver and while it builds the client (a few milliseconds each, a few
    tenths of a second for the first client of a process), and a fork waits for it, at most
    ``FORK_WAIT`` seconds. Looking for credentials, which may take seconds (a credential process, an
    unreachable instance metadata service), happens in between, without the lock: neither a fork nor
    another sink waits for it. What the guard cannot cover: credential providers that call AWS
    themselves (assume role, SSO, web identity) build their own client when first used; an HTTPS proxy's
    SSL context is made at the first request; urllib3 loads the CA bundle at every new connection.
    """

    FORK_WAIT = 5.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._held_for_fork = False

    def before_fork(self) -> None:
        self._held_for_fork = self.lock.acquire(timeout=self.FORK_WAIT)

    def after_fork_in_parent(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self.lock.release()

    def after_fork_in_child(self) -> None:
        # Registered before the sink's own after-fork hook (this module is imported first), so this runs
        # before a child's worker starts. Held by another (now absent) thread if the wait timed out.
        if self._held_for_fork:
            self._held_for_fork = False
            self.lock.release()
        else:
            self.lock = threading.Lock()


FORK_GUARD = ForkGuard()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=FORK_GUARD.before_fork,
        after_in_parent=FORK_GUARD.after_fork_in_parent,
        after_in_child=FORK_GUARD.after_fork_in_child,
    )
