"""One process's durable spool: an SQLite database (WAL) holding chunks of undelivered events.

Why SQLite and not a home-made segment format: ``bench/spool_engines.py`` measured both on this project's
machine (issue 12's closing note has the figures). Both survived repeated SIGKILL without losing an
appended chunk; the segment file is about 1.8x cheaper in CPU and packs about 1.4x more into the same
space, but on a full filesystem it leaves a torn frame, and every recovery rule (torn tails, a ledger of
what was delivered, compaction) would be ours to get right. SQLite's transactions give all of that, and
the damage it cannot detect (flipped bytes in a page) is caught by a CRC32 per chunk.

Layout: one row per chunk (at most a batch, moved to disk at once; not one row per record), with the
chunk's stream, its first and last sequence numbers, its event count and the CRC32 of its data; a
``meta`` table holds the format version, the log group, and the highest sequence number delivered (a
chunk delivered in part is resent from there after a kill: at-least-once, at most one batch).

Durability: ``journal_mode=WAL`` with ``synchronous=NORMAL``. A committed chunk is in the operating
system's hands, so it survives a killed process; after a power loss the database is still consistent
and what was committed since the last checkpoint (at most the WAL's size, ``wal_bytes``) may be missing.

Nothing here reports or counts for the sink: it raises ``SpoolError`` (with the file's name) or returns
counts, and the caller decides. It never runs on a caller's thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from ._queue import Event

#: The on-disk format this version writes and reads. A file with a higher version is left untouched.
FORMAT_VERSION = 1
#: SQLite's page size: the unit of the database file and of its WAL.
PAGE_BYTES = 4096
#: What a database is on disk: its file's name followed by each of these (the WAL, the shared-memory index).
DATABASE_FILE_SUFFIXES = ("", "-wal", "-shm")
#: AUTOINCREMENT: a chunk id is never reused, even once every chunk was deleted (the reader keeps its place
#: by id: a reused id would be skipped as already read).
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, "
    "first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, count INTEGER NOT NULL, crc INTEGER NOT NULL, "
    "data BLOB NOT NULL)",
)


#: Room kept within ``max_spool_bytes`` for SQLite's shared-memory index and a page or two of slack.
SHM_AND_SLACK_BYTES = 64 * 1024


def wal_bytes_for(max_spool_bytes: int) -> int:
    """The WAL's share of the spool's bound: an eighth, between 64 KiB and 4 MiB."""
    return min(4 << 20, max(64 << 10, max_spool_bytes // 8))


def database_budget(max_spool_bytes: int) -> int:
    """What the database's pages in use may take, so that it, its WAL and its index fit the bound."""
    return max_spool_bytes - wal_bytes_for(max_spool_bytes) - SHM_AND_SLACK_BYTES


def chunk_bytes(events: list[Event]) -> int:
    """What a chunk of ``events`` may take in the database: the messages, about 40 bytes of JSON around
    each, and two pages of b-tree and overflow-page overhead."""
    return sum(event[3] for event in events) + 40 * len(events) + 2 * PAGE_BYTES


class SpoolError(Exception):
    """A spool file could not be created, written or read; the message names the file and the cause."""


class EmptyFile(SpoolError):
    """A spool database without even its tables (zero bytes, or killed as it was created): nothing lost."""


class NewerFormat(SpoolError):
    """The file was written by a newer version of loguru-cloudwatch: it is left as it is."""


@dataclass(frozen=True)
class Chunk:
    """Undelivered events read back from a spool file, in order."""

    id: int
    stream: str
    #: The events not yet delivered, oldest first, as they were queued.
    events: list[Event]


@dataclass(frozen=True)
class Damaged:
    """A chunk that could not be read back (CRC mismatch, unreadable row): skipped."""

    id: int
    #: Its event count when that much could still be read, else None.
    count: int | None
    reason: str


@dataclass(frozen=True)
class Index:
    """What an adopted file holds."""

    #: Each chunk's (id, first seq, last seq, event count), oldest first.
    chunks: list[tuple[int, int, int, int]]
    #: The stream of the oldest chunk ("" when none).
    stream: str
    #: Bytes of all chunks' data.
    data_bytes: int
    #: Rows too damaged to be listed (an id out of order, an impossible count): their records are lost.
    unlisted: int


def encode_chunk(events: list[Event]) -> bytes:
    """The chunk's data: a JSON array of the events as they are queued, [timestamp, seq, message, size]
    (one C-level call: no per-event work in Python)."""
    return orjson.dumps(events)


class SpoolFile:
    """One spool database. Not thread-safe: its users serialize their calls (the spool's lock).

    ``create=False`` opens an existing file (adoption) and raises ``SpoolError`` if it is not a spool.
    """

    def __init__(self, path: Path, group: str = "", *, create: bool = True, wal_bytes: int = 1 << 20) -> None:
        self.path = path
        self._wal_pages = max(16, wal_bytes // PAGE_BYTES)
        if not create and not path.exists():
            raise SpoolError(f"{path.name}: no such spool file")
        try:
            if create:  # readable by its owner only: records may hold what other users must not read
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600))
            self._db = sqlite3.connect(path, isolation_level=None, timeout=1.0, check_same_thread=False)
        except (sqlite3.Error, OSError) as error:
            raise SpoolError(f"{path.name}: cannot open: {error}") from None
        try:
            self._prepare(group, create)
        except SpoolError:
            self._db.close()
            raise
        except (sqlite3.Error, ValueError, TypeError) as error:  # damaged metadata included
            self._db.close()
            raise SpoolError(f"{path.name}: {error}") from None
        except BaseException:
            self._db.close()  # never left to the garbage collector (Python 3.13 warns of it)
            raise

    def __enter__(self) -> SpoolFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prepare(self, group: str, create: bool) -> None:
        db = self._db
        # Per connection. The WAL is checkpointed into the database after this many pages, and cut back to
        # that size: it bounds both the WAL on disk and what a power loss can take.
        db.execute(f"PRAGMA wal_autocheckpoint={self._wal_pages}")
        db.execute(f"PRAGMA journal_size_limit={self._wal_pages * PAGE_BYTES}")
        db.execute("PRAGMA synchronous=NORMAL")
        if create:
            db.execute(f"PRAGMA page_size={PAGE_BYTES}")  # before the file exists
            db.execute("PRAGMA journal_mode=WAL")  # stays with the file
            with db:  # one transaction: a kill leaves the whole schema or none of it
                db.execute("BEGIN")
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT_VERSION,))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('group', ?)", (group,))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('delivered_seq', 0)")
        elif db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            raise EmptyFile(f"{self.path.name}: empty (its process was killed as it created it)")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        version = meta.get("format")
        if not isinstance(version, int):
            raise SpoolError(f"{self.path.name}: not a loguru-cloudwatch spool (no format version)")
        if version > FORMAT_VERSION:
            raise NewerFormat(
                f"{self.path.name}: written in spool format {version} by a newer loguru-cloudwatch (this "
                f"version reads format {FORMAT_VERSION}); left as it is"
            )
        self.group = str(meta.get("group", ""))
        self.delivered_seq = int(meta.get("delivered_seq", 0))
        #: The newest event of the last send begun (0: none).
        self.in_flight_seq = int(meta.get("in_flight_seq", 0))

    # -- writing (the owner's worker) -----------------------------------------------------------

    def append(self, stream: str, events: list[Event]) -> int:
        """Commit ``events`` (oldest first, at least one) as one chunk; returns the chunk's id."""
        data = encode_chunk(events)
        try:
            cursor = self._db.execute(
                "INSERT INTO chunks (stream, first_seq, last_seq, count, crc, data) VALUES (?, ?, ?, ?, ?, ?)",
                (stream, events[0][1], events[-1][1], len(events), zlib.crc32(data), data),
            )
        except sqlite3.Error as error:
            raise SpoolError(f"{self.path.name}: cannot append: {error}") from None
        return int(cursor.lastrowid or 0)

    def delivered_through(self, seq: int) -> None:
        """Every event up to sequence number ``seq`` is delivered: forget it (whole chunks are deleted)."""
        if seq <= self.delivered_seq:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("DELETE FROM chunks WHERE last_seq <= ?", (seq,))
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'delivered_seq'", (seq,))
        except sqlite3.Error as error:
            raise SpoolError(f"{self.path.name}: cannot mark delivered: {error}") from None
        self.delivered_seq = seq

    def mark_in_flight(self, seq: int) -> None:
        """Events up to ``seq`` are about to be sent: after a kill, those above the delivery mark and up to
        this one may have reached CloudWatch already (they are counted as resent)."""
        try:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('in_flight_seq', ?)", (seq,))
        except sqlite3.Error as error:
            raise SpoolError(f"{self.path.name}: cannot mark a send: {error}") from None

    # -- reading (the owner after a restart of its worker, or an adopter) -------------------------

    def index(self) -> Index:
        """For an adopter: what the file holds, as far as its rows can be trusted (see ``Index``)."""
        try:
            rows = self._db.execute("SELECT id, first_seq, last_seq, count FROM chunks ORDER BY id").fetchall()
            first = self._db.execute("SELECT stream FROM chunks ORDER BY id LIMIT 1").fetchone()
            data_bytes = self._db.execute("SELECT coalesce(sum(length(data)), 0) FROM chunks").fetchone()[0]
        except sqlite3.Error as error:
            raise SpoolError(f"{self.path.name}: cannot list chunks: {error}") from None
        chunks: list[tuple[int, int, int, int]] = []
        for row in rows:
            # A damaged page can list ids out of order or repeated, and counts no chunk could hold: the
            # reader keeps its place by id, so such a row would never be read, nor ever leave the index.
            chunk_id, first_seq, last_seq, count = row
            previous = chunks[-1][0] if chunks else 0
            if all(type(v) is int for v in row) and chunk_id > previous and 0 < count <= last_seq - first_seq + 1:
                chunks.append((chunk_id, first_seq, last_seq, count))
        stream = str(first[0]) if first else ""
        return Index(chunks, stream, int(data_bytes) if type(data_bytes) is int else 0, len(rows) - len(chunks))

    def read(self) -> Iterator[Chunk | Damaged]:
        """Every chunk still held, oldest first, without the events already delivered; damage is yielded
        as ``Damaged`` and reading goes on with the next chunk."""
        try:
            ids = [row[0] for row in self._db.execute("SELECT id FROM chunks ORDER BY id")]
        except sqlite3.Error as error:
            raise SpoolError(f"{self.path.name}: cannot list chunks: {error}") from None
        for chunk_id in ids:
            yield self.read_chunk(chunk_id)

    def read_chunk(self, chunk_id: int) -> Chunk | Damaged:
        """One chunk by id, without its delivered events; ``Damaged`` when it cannot be read."""
        count: int | None = None
        try:
            row = self._db.execute("SELECT stream, count, crc, data FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
            stream, count, crc, data = row
            if not isinstance(data, bytes) or zlib.crc32(data) != crc:
                return Damaged(chunk_id, count if isinstance(count, int) else None, "CRC mismatch")
            rows = orjson.loads(data)
            if not isinstance(rows, list) or len(rows) != count:
                return Damaged(chunk_id, count, "event count mismatch")
            delivered = self.delivered_seq
            # Skip what was delivered before a kill: at-least-once is bounded by the last mark.
            events = [_event(*row) for row in rows if row[1] > delivered]
        except (sqlite3.Error, orjson.JSONDecodeError, TypeError, ValueError, IndexError) as error:
            return Damaged(chunk_id, count if isinstance(count, int) else None, f"unreadable ({error})")
        return Chunk(chunk_id, str(stream), events)

    def forget(self, chunk_id: int) -> None:
        """Delete one chunk (delivered, or damaged and skipped)."""
        try:
            self._db.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))
        except sqlite3.Error as error:
            raise SpoolError(f"{self.path.name}: cannot delete a chunk: {error}") from None

    # -- size and life --------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the database's pages in use. Pages freed by delivered or dropped chunks are reused, so
        the file does not grow past the most it ever used."""
        try:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        except sqlite3.Error:
            return self.bytes_on_disk()
        return int((pages - free) * PAGE_BYTES)

    def bytes_on_disk(self) -> int:
        """The database and its WAL, in bytes, as the filesystem counts them."""
        return sum(_size_of(Path(f"{self.path}{suffix}")) for suffix in DATABASE_FILE_SUFFIXES)

    def is_empty(self) -> bool:
        try:
            return self._db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None
        except sqlite3.Error:
            return False

    def close(self) -> None:
        self._db.close()

    def remove(self) -> None:
        """Close and delete the database and its WAL files."""
        self.close()
        remove_database(self.path)


def _event(timestamp: int, seq: int, message: str, size: int) -> Event:
    """One event read back, with its types checked (a CRC collision must not smuggle in a wrong type)."""
    if not (type(timestamp) is int and type(seq) is int and type(message) is str and type(size) is int):
        raise TypeError("an event of the wrong shape")
    return (timestamp, seq, message, size)


def remove_database(path: Path) -> None:
    """Delete a database and its WAL and shared-memory files (missing ones are fine)."""
    for suffix in DATABASE_FILE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
