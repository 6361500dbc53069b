"""A shared spool directory on real files and real processes: ownership by flock, adoption exactly once,
SIGKILL at random moments, a fork, a directory that cannot be used."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from loguru_cloudwatch._spool_dir import (
    LOCK_SUFFIX,
    SPOOL_SUFFIX,
    EmptyFile,
    adopt,
    create_own,
    directory_problem,
    orphans,
)
from loguru_cloudwatch._spool_file import Chunk
from tests.support.filesystems import mounted_tmpfs
from tests.support.programs import Child
from tests.support.spool_files import STREAM, events

#: A child that owns a spool file, appends numbered chunks and marks some delivered, printing each step
#: after it returned (one atomic write each), until it is killed. argv: directory, first seq.
WRITER = r"""
import os, sys
from pathlib import Path
from loguru_cloudwatch._spool_dir import create_own
from tests.support.spool_files import STREAM, events
def say(*words):  # one write(2) of a short line to a pipe is atomic: a kill never leaves half of one
    os.write(1, (" ".join(map(str, words)) + "\n").encode())
owned = create_own(Path(sys.argv[1]), "group", 1 << 20)
say("file", owned.spool.path.name)
seq = int(sys.argv[2])
while True:
    owned.spool.append(STREAM, events(seq, 50))
    say("appended", seq + 49)
    if seq % 200 == 1:
        owned.spool.delivered_through(seq + 24)  # in the middle of a chunk: a partial delivery
        say("delivered", seq + 24)
    seq += 50
"""

#: A child that tries to adopt one file and prints whether it got it, then holds it for a moment.
ADOPTER = r"""
import sys, time
from pathlib import Path
from loguru_cloudwatch._spool_dir import adopt
owned = adopt(Path(sys.argv[1]))
print("adopted" if owned else "not adopted", flush=True)
time.sleep(1.0)  # hold it while the others try
"""


def test_a_live_owner_keeps_its_file_and_its_death_lets_exactly_one_adopter_in(tmp_path: Path) -> None:
    writer = Child(WRITER, str(tmp_path), "1")
    try:
        name = writer.line().split()[1]
        writer.line()  # one chunk appended
        database = tmp_path / name
        assert orphans(tmp_path, set()) == [database]
        assert adopt(database) is None  # its owner lives
    finally:
        writer.close()  # SIGKILL
    adopters = [Child(ADOPTER, str(database)) for _ in range(4)]
    try:
        answers = sorted(child.line() for child in adopters)
    finally:
        for child in adopters:
            child.close()
    assert answers == ["adopted", "not adopted", "not adopted", "not adopted"]


def test_a_finished_adopted_file_is_removed_with_its_lock(tmp_path: Path) -> None:
    owned = create_own(tmp_path, "group", 1 << 20)
    owned.spool.append(STREAM, events(1, 10))
    database = owned.spool.path
    owned.spool.close()
    owned.ownership.release(remove=False)  # what a killed process leaves
    adopted = adopt(database)
    assert adopted is not None
    [chunk] = [item for item in adopted.spool.read() if isinstance(item, Chunk)]
    adopted.spool.forget(chunk.id)
    adopted.finish()
    assert list(tmp_path.iterdir()) == []


def test_a_zero_length_database_is_removed_and_named(tmp_path: Path) -> None:
    (tmp_path / f"h-1-0{SPOOL_SUFFIX}").write_bytes(b"")
    with pytest.raises(EmptyFile, match=r"^h-1-0\.spool: empty"):
        adopt(tmp_path / f"h-1-0{SPOOL_SUFFIX}")
    assert list(tmp_path.iterdir()) == []


def test_random_sigkills_lose_no_appended_event_and_resend_only_what_the_last_mark_did_not_cover(
    tmp_path: Path,
) -> None:
    rng = random.Random(12)
    events_back = 0
    for kill in range(10):
        first = 1 + kill * 1_000_000
        writer = Child(WRITER, str(tmp_path), str(first))
        try:
            name = writer.line().split()[1]
            appended = delivered = first - 1
            time.sleep(rng.uniform(0.05, 0.3))  # a random moment: the kill lands wherever the writer is
        finally:
            writer.close()  # SIGKILL
        for line in writer.printed_before_the_end():
            step, seq = line.split()
            if step == "appended":
                appended = int(seq)
            else:
                delivered = int(seq)
        adopted = adopt(tmp_path / name)
        assert adopted is not None
        got = []
        for item in adopted.spool.read():
            assert isinstance(item, Chunk), f"kill {kill}: {item}"
            got += [event[1] for event in item.events]
            adopted.spool.forget(item.id)
        adopted.finish()
        # Back: every event from the last mark on, in order, once, through at least the last one reported
        # appended. The last mark is the one reported, or the next if the kill came before its report.
        next_mark = next(s + 24 for s in range(first, first + 10**6, 200) if s + 24 > delivered)
        start = got[0] - 1 if got else appended
        assert start in (delivered, next_mark), f"kill {kill}: resumed after {start}, marks {delivered}/{next_mark}"
        assert got == list(range(start + 1, start + 1 + len(got))), f"kill {kill}: a gap, a repeat or disorder"
        assert start + len(got) >= appended, f"kill {kill}: lost events reported appended"
        events_back += len(got)
    assert events_back > 0  # the kills landed while the writer was writing    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_lets_go_of_its_copy_and_the_parent_keeps_the_file(tmp_path: Path) -> None:
    owned = create_own(tmp_path, "group", 1 << 20)
    database = owned.spool.path
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what the sink's fork handler does, then try to take the parent's file
        try:
            owned.ownership.forget_in_child()
            os.write(write_end, b"none" if adopt(database) is None else b"took")
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 10)
    os.waitpid(pid, 0)
    os.close(read_end)
    assert answer == b"none"
    assert adopt(database) is None  # the child's exit did not release the parent's lock either
    owned.finish()


def test_a_directory_is_created_and_a_bad_one_is_named_with_the_reason(tmp_path: Path) -> None:
    assert directory_problem(tmp_path / "a" / "b") is None
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    assert directory_problem(tmp_path / "file") == "it is not a directory"
    assert directory_problem(tmp_path / "file" / "sub") == "it cannot be created: Not a directory"
    with mounted_tmpfs(64, read_only=True) as root:
        assert directory_problem(root / "spool") == "it cannot be created: Read-only file system"
        assert directory_problem(root) == "this process cannot write to it"


def test_lock_files_of_nothing_are_not_taken_for_spools(tmp_path: Path) -> None:
    (tmp_path / f"stray{LOCK_SUFFIX}").write_text("")
    (tmp_path / "other.txt").write_text("")
    assert orphans(tmp_path, set()) == []


def test_the_files_and_a_created_directory_are_for_their_owner_only(tmp_path: Path) -> None:
    # Records may hold what other users of the machine must not read (traceback values, say).
    directory = tmp_path / "new" / "spool"
    assert directory_problem(directory) is None
    assert directory.stat().st_mode & 0o777 == 0o700
    owned = create_own(directory, "group", 1 << 20)
    try:
        owned.spool.append(STREAM, events(1, 10))
        files = sorted(directory.iterdir())
        assert {path.suffix for path in files} >= {".spool", ".lock", ".spool-wal"}
        assert {path.name: oct(path.stat().st_mode & 0o777) for path in files} == {
            path.name: oct(0o600) for path in files
        }
    finally:
        owned.spool.close()
        owned.ownership.release(remove=True)
