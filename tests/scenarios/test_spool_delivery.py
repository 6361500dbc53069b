"""A sink with ``spool_dir`` against moto over real HTTP: delivery through the spool, an outage at stop
(the records stay on disk, said on stderr, not abandoned), a bad directory refused at construction."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._spool_dir import SPOOL_SUFFIX
from loguru_cloudwatch._spool_file import Chunk, SpoolFile
from tests.support.aws import create_group_and_stream
from tests.support.problems import Problems
from tests.support.proxy import FaultProxy
from tests.support.sinks import FLUSH_DRIVEN_PACING, TextStream, log_many
from tests.support.waiting import wait_for

GROUP = "spool-group"
STREAM = "spool-stream"
DESTINATION = TextStream(GROUP, STREAM, dict(FLUSH_DRIVEN_PACING))


def spooled_messages(directory: Path) -> list[str]:
    messages: list[str] = []
    for path in sorted(directory.glob(f"*{SPOOL_SUFFIX}")):
        with SpoolFile(path, create=False) as spool:
            messages += [event[2] for item in spool.read() if isinstance(item, Chunk) for event in item.events]
    return messages


def test_records_go_through_the_spool_to_cloudwatch_and_the_spool_is_empty_after(
    endpoint: str, logs_client: Any, tmp_path: Path
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = DESTINATION.add_sink(endpoint, spool_dir=tmp_path / "spool")
    sent = log_many("through", 500)
    assert sink.force_flush(10), sink.stats
    assert DESTINATION.stored(logs_client) == sent
    stats = sink.stats
    assert (stats.sent, stats.spooled, stats.queued, stats.dropped) == (500, 0, 0, 0)
    logger.remove()
    assert list((tmp_path / "spool").iterdir()) == []


def test_what_stop_cannot_deliver_stays_on_disk_and_stderr_says_where(
    logs_client: Any, fault_proxy: FaultProxy, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    fault_proxy.set_schedule(itertools.repeat("503"))
    problems = Problems()
    sink = DESTINATION.add_sink(fault_proxy.url, spool_dir=tmp_path, shutdown_timeout=0.5, on_error=problems)
    sent = log_many("kept", 40)
    wait_for(lambda: sink.stats.spooled == 40, timeout=5, message="on disk")
    logger.remove()
    stats = sink.stats
    assert (stats.abandoned, stats.spooled, stats.sent) == (0, 40, 0)
    err = capfd.readouterr().err
    assert f"40 records kept in the spool {tmp_path} for a later start" in err
    assert "could not be delivered" not in err
    assert spooled_messages(tmp_path) == sent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, "expected None or a directory path"),
        ("", "expected None or a directory path"),
        ("FILE", "but it is not a directory"),
        ("FILE/sub", "but it cannot be created: Not a directory"),
    ],
)
def test_a_bad_spool_dir_is_refused_at_construction_with_the_reason(tmp_path: Path, value: Any, expected: str) -> None:
    (tmp_path / "FILE").write_text("x")
    if isinstance(value, str) and value:
        value = str(tmp_path / value)
    with pytest.raises((TypeError, ValueError), match=f"option spool_dir=.* is invalid: .*{expected}"):
        CloudWatchSink(GROUP, STREAM, spool_dir=value)


def test_max_spool_bytes_below_its_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="option max_spool_bytes=1000 is invalid"):
        CloudWatchSink(GROUP, STREAM, max_spool_bytes=1000)
