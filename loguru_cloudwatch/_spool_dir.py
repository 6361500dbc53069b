"""A spool directory shared by processes: each process writes its own files; a dead one's are adopted once.

Each live sink owns one database (``_spool_file``) named ``<host>-<pid>-<random>.spool`` and holds an
exclusive ``flock`` on its companion ``.lock`` file for as long as it lives. The kernel releases that lock
when the process dies, however it dies (SIGKILL included), so "the lock can be taken" means "its owner is
gone" — no pid guesses, which fail across containers and after pid reuse. A live process that takes the
lock of another's file has adopted it: nobody else can, until it lets go.

Order of creation: lock file, lock, then database; of removal: database, then lock file, so a database
whose lock can be taken is always an orphan. A forked child closes its copy of the parent's lock (the
parent keeps holding it) and opens files of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import weakref
from pathlib import Path

from ._spool_file import DATABASE_FILE_SUFFIXES, EmptyFile, NewerFormat, SpoolError, SpoolFile, remove_database

#: A spool database's name ends with this; its lock file is the same name with ``LOCK_SUFFIX``.
SPOOL_SUFFIX = ".spool"
LOCK_SUFFIX = ".lock"
#: An unreadable database is renamed to this suffix: kept for a human, never read again.
DAMAGED_SUFFIX = ".damaged"


def directory_problem(directory: Path) -> str | None:
    """Create the directory if missing; what makes it unusable as a spool directory, or None."""
    if directory.exists() and not directory.is_dir():
        return "it is not a directory"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # created: for this user only
    except OSError as error:
        return f"it cannot be created: {error.strerror}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "this process cannot write to it"
    return None


class Ownership:
    """An exclusive lock on one spool file's ``.lock`` file, held by this process."""

    def __init__(self, lock_path: Path, fd: int) -> None:
        self.lock_path = lock_path
        self._fd: int | None = fd

    @classmethod
    def take(cls, lock_path: Path, *, create: bool) -> Ownership | None:
        """Lock ``lock_path`` without waiting; None when a live process holds it (or it vanished)."""
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        try:
            fd = os.open(lock_path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise SpoolError(f"{lock_path.name}: cannot open the lock file: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return cls(lock_path, fd)

    def release(self, *, remove: bool) -> None:
        """Let go of the lock, deleting the lock file first when ``remove`` (its database is gone)."""
        if self._fd is None:
            return
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(self.lock_path)
        os.close(self._fd)
        self._fd = None

    def forget_in_child(self) -> None:
        """In a forked child: close this copy only. The lock belongs to the open file, which the parent
        still holds open, so the parent keeps it."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class OwnedFile:
    """A spool file and the lock that makes it this process's."""

    def __init__(self, spool: SpoolFile, ownership: Ownership) -> None:
        self.spool = spool
        self.ownership = ownership
        self.pid = os.getpid()
        _OWNED.add(self)

    def finish(self) -> None:
        """Close it; delete it if nothing is left in it (an adopted or a drained file)."""
        empty = self.spool.is_empty()
        try:
            if empty:
                self.spool.remove()
            else:
                self.spool.close()
        except OSError:
            empty = False  # not deleted (a directory gone read-only, say): a later start finds it
        finally:
            self.ownership.release(remove=empty)

    def quarantine(self) -> str:
        """Move an unreadable database aside (``.damaged``) so no start reads it again; returns its new name."""
        self.spool.close()
        name = _move_aside(self.spool.path)
        self.ownership.release(remove=True)
        return name


def _move_aside(database: Path) -> str:
    target = database.with_suffix(DAMAGED_SUFFIX)
    for suffix in DATABASE_FILE_SUFFIXES:
        with contextlib.suppress(OSError):
            os.replace(f"{database}{suffix}", f"{target}{suffix}")
    return target.name


def new_file_name() -> str:
    """A name no other process uses: host, pid and 48 random bits (containers share pids)."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(6)}"


def create_own(directory: Path, group: str, wal_bytes: int) -> OwnedFile:
    """A new spool file for this process, locked before it exists."""
    name = new_file_name()
    ownership = Ownership.take(directory / f"{name}{LOCK_SUFFIX}", create=True)
    if ownership is None:  # nobody else can know this name
        raise SpoolError(f"{name}{LOCK_SUFFIX}: locked by another process")
    try:
        spool = SpoolFile(directory / f"{name}{SPOOL_SUFFIX}", group, create=True, wal_bytes=wal_bytes)
    except SpoolError:
        remove_database(directory / f"{name}{SPOOL_SUFFIX}")
        ownership.release(remove=True)
        raise
    return OwnedFile(spool, ownership)


def orphans(directory: Path, skip: set[Path]) -> list[Path]:
    """The spool databases in ``directory`` not in ``skip``, oldest first (by modification time)."""
    try:
        entries = [entry for entry in directory.iterdir() if entry.name.endswith(SPOOL_SUFFIX)]
    except OSError:
        return []
    found = []
    for entry in entries:
        if entry in skip:
            continue
        with contextlib.suppress(OSError):
            found.append((entry.stat().st_mtime, entry))
    return [entry for _, entry in sorted(found)]


def adopt(database: Path) -> OwnedFile | None:
    """Take over a dead process's database; None if its owner lives or someone else adopted it first.

    Raises ``NewerFormat`` when a newer version wrote it (left untouched); ``EmptyFile`` when it holds
    nothing (removed); ``SpoolError`` when it is not a readable spool (moved aside as ``.damaged``).
    """
    lock_path = database.with_suffix(LOCK_SUFFIX)
    ownership = Ownership.take(lock_path, create=True)
    if ownership is None:
        return None
    if not database.exists():  # adopted and finished by another process meanwhile
        ownership.release(remove=True)
        return None
    try:
        spool = SpoolFile(database, create=False)
    except EmptyFile as error:  # its owner was killed as it created it: nothing was ever written
        remove_database(database)
        ownership.release(remove=True)
        raise EmptyFile(f"{error}; removed") from None
    except NewerFormat:
        ownership.release(remove=False)
        raise
    except SpoolError as error:
        name = _move_aside(database)
        ownership.release(remove=True)
        raise SpoolError(f"{error}; moved aside as {name}") from None
    return OwnedFile(spool, ownership)


#: Every file this process owns, for the fork hook.
_OWNED: weakref.WeakSet[OwnedFile] = weakref.WeakSet()
#: In a forked child, the parent's open spool files: never used, and never closed either (closing an
#: SQLite connection inherited across fork may checkpoint or delete the parent's WAL).
_LEFT_BY_THE_PARENT: list[SpoolFile] = []


def _forget_the_parents_files() -> None:
    """In a forked child: let go of the parent's spool files; the parent keeps them, locks included. The
    child's sinks start files of their own (``CloudWatchSink`` starts over after a fork)."""
    for owned in list(_OWNED):
        if owned.pid != os.getpid():
            owned.ownership.forget_in_child()
            _LEFT_BY_THE_PARENT.append(owned.spool)
            _OWNED.discard(owned)


os.register_at_fork(after_in_child=_forget_the_parents_files)
