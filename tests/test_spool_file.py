"""One spool database on real files: round trip, delivery marks, the size bound, damage, a full filesystem."""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from loguru_cloudwatch._queue import Event
from loguru_cloudwatch._spool_file import FORMAT_VERSION, Chunk, Damaged, NewerFormat, SpoolError, SpoolFile
from tests.support.filesystems import mounted_tmpfs
from tests.support.spool_files import STREAM, events


def open_spool_files(directory: Path) -> list[str]:
    """The spool files (databases and their WALs) under ``directory`` that this process holds open."""
    names = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed since the listing
        if target.startswith(f"{directory}{os.sep}") and ".spool" in os.path.basename(target):
            names.append(target)
    return names


@pytest.fixture(autouse=True)
def every_spool_file_is_closed(tmp_path: Path) -> Iterator[None]:
    """A connection left open is closed by the garbage collector at some later test, where Python 3.13
    reports it (ResourceWarning) against that test: fail here, in the test that left it. Only this test's
    own files: a sink of an earlier test may still be closing its own on a thread of its worker."""
    yield
    assert open_spool_files(tmp_path) == []


def read_all(spool: SpoolFile) -> tuple[list[Event], list[Damaged]]:
    good: list[Event] = []
    damaged: list[Damaged] = []
    for item in spool.read():
        if isinstance(item, Chunk):
            good += item.events
        else:
            damaged.append(item)
    return good, damaged


def filled(path: Path, chunks: int = 20, per_chunk: int = 50) -> list[Event]:
    written: list[Event] = []
    with SpoolFile(path, "group") as spool:  # the last connection's close checkpoints the WAL into the file
        for n in range(chunks):
            batch = events(1 + n * per_chunk, per_chunk)
            spool.append(STREAM, batch)
            written += batch
    return written


def read_file(path: Path) -> tuple[list[Event], list[Damaged]]:
    """Everything in the spool file at ``path``, read by a connection of its own (as a new process)."""
    with SpoolFile(path, create=False) as spool:
        return read_all(spool)


def test_chunks_come_back_in_order_after_the_file_is_reopened(tmp_path: Path) -> None:
    written = filled(tmp_path / "a.spool")
    with SpoolFile(tmp_path / "a.spool", create=False) as spool:
        assert spool.group == "group"
        good, damaged = read_all(spool)
        assert good == written and damaged == []
        assert {item.stream for item in spool.read() if isinstance(item, Chunk)} == {STREAM}


def test_delivered_through_forgets_whole_chunks_and_skips_the_delivered_part_of_the_next(tmp_path: Path) -> None:
    written = filled(tmp_path / "a.spool", chunks=4, per_chunk=10)  # seqs 1..40
    with SpoolFile(tmp_path / "a.spool", create=False) as spool:
        spool.delivered_through(25)  # chunks 1-10 and 11-20 gone; 21-25 of the third delivered
    with SpoolFile(tmp_path / "a.spool", create=False) as spool:  # the mark survives a reopen (a kill)
        good, _ = read_all(spool)
        assert good == written[25:]
        assert spool.delivered_seq == 25
        spool.delivered_through(10)  # an older mark changes nothing
        assert read_all(spool)[0] == written[25:]
        spool.delivered_through(40)
        assert spool.is_empty()


def test_a_flipped_byte_in_a_chunk_is_caught_by_its_crc_and_only_that_chunk_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.spool"
    written = filled(path, chunks=10, per_chunk=20)
    raw = bytearray(path.read_bytes())
    # Flip a byte inside the message text of seq 45 (the third chunk): SQLite itself would not notice.
    at = raw.index(b"record 000045")
    raw[at + 8] ^= 0x01
    path.write_bytes(bytes(raw))
    good, damaged = read_file(path)
    assert [(item.count, item.reason) for item in damaged] == [(20, "CRC mismatch")]
    assert good == (written[:40] + written[60:])


@pytest.mark.parametrize("seed", range(12))
def test_random_damage_never_raises_anything_but_spool_error_and_never_returns_altered_events(
    tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "a.spool"
    written = set(filled(path, chunks=10, per_chunk=20))
    raw = bytearray(path.read_bytes())
    rng = random.Random(seed)
    if seed % 3 == 0:
        raw = raw[: rng.randrange(1, len(raw))]  # truncated at an arbitrary byte
    else:
        for _ in range(1 + seed):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(raw))
    try:
        good, _ = read_file(path)
    except SpoolError as error:
        assert error.args[0].startswith("a.spool: ")  # named, and nothing else escaped
        return
    assert set(good) <= written  # what comes back is genuine
    assert len(good) == len(set(good))
    assert len(good) <= len(written)  # (a damaged chunk's own count may be damaged too: not summed)


def test_a_zero_length_or_foreign_file_is_refused_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "empty.spool").write_bytes(b"")
    with pytest.raises(SpoolError, match=r"^empty\.spool: "):
        SpoolFile(tmp_path / "empty.spool", create=False)
    (tmp_path / "text.spool").write_text("not a database at all " * 100)
    with pytest.raises(SpoolError, match=r"^text\.spool: "):
        SpoolFile(tmp_path / "text.spool", create=False)
    with pytest.raises(SpoolError, match=r"^missing\.spool: no such spool file"):
        SpoolFile(tmp_path / "missing.spool", create=False)


def test_a_file_of_a_newer_format_is_refused_and_left_byte_for_byte_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "a.spool"
    filled(path, chunks=2)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (FORMAT_VERSION + 1,))
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(NewerFormat, match=f"spool format {FORMAT_VERSION + 1} by a newer loguru-cloudwatch"):
        SpoolFile(path, create=False)
    assert path.read_bytes() == before


def test_a_full_filesystem_fails_the_append_cleanly_and_appends_resume_once_space_is_freed() -> None:
    with mounted_tmpfs(512) as root:
        filler = root / "filler"
        filler.write_bytes(b"\0" * 128 * 1024)
        appended: list[Event] = []
        seq = 1
        with SpoolFile(root / "a.spool", "group") as spool:
            with pytest.raises(SpoolError, match=r"^a\.spool: cannot append: .*full"):
                for _ in range(10_000):
                    batch = events(seq, 20, size=400)
                    spool.append(STREAM, batch)
                    appended += batch
                    seq += 20
            assert appended, "nothing fitted at all"
            assert read_all(spool) == (appended, [])  # everything committed is intact
            filler.unlink()
            batch = events(seq, 20, size=400)
            spool.append(STREAM, batch)
        assert read_file(root / "a.spool") == (appended + batch, [])


def test_bytes_on_disk_counts_the_database_and_its_wal(tmp_path: Path) -> None:
    with SpoolFile(tmp_path / "a.spool", "group") as spool:
        spool.append(STREAM, events(1, 500, size=1000))
        on_disk = sum(path.stat().st_size for path in tmp_path.iterdir())
        assert spool.bytes_on_disk() == on_disk
    assert on_disk >= 500 * 1000


def test_a_chunk_id_is_never_reused_once_every_chunk_was_delivered(tmp_path: Path) -> None:
    # The reader keeps its place by chunk id: a reused id would be skipped as read already, and lost.
    with SpoolFile(tmp_path / "a.spool", "group") as spool:
        first = spool.append(STREAM, events(1, 10))
        spool.delivered_through(10)
        assert spool.is_empty()
        assert spool.append(STREAM, events(11, 10)) > first
