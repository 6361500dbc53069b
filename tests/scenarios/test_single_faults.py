"""One fault at a time, end to end: a transient error, a lost answer, refused credentials.

The building blocks of the "under fire" scenarios next to this file (``test_faults.py`` mixes them, at
length): each fault kind on its own, injected with the in-process ``fault_injector`` or, for network-level
faults (resets, lost answers), the ``fault_proxy`` in front of moto, with exact counts of what CloudWatch
holds, what went over the wire and what ``sink.stats`` and ``on_error`` say.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import pytest
from botocore.config import Config

from loguru_cloudwatch._retry import Timings
from tests.support.aws import create_group_and_stream, make_logs_client
from tests.support.faults import FaultInjector, Switch
from tests.support.problems import Problems
from tests.support.proxy import FaultProxy
from tests.support.recorders import ApiCallRecorder, PutLogEventsRecorder, put_times
from tests.support.sinks import FLUSH_DRIVEN_PACING, TextStream, log_many
from tests.support.waiting import wait_for

GROUP = "single-faults-group"
STREAM = "single-faults-stream"


SINK_DEFAULTS: dict[str, Any] = dict(FLUSH_DRIVEN_PACING)  # a test may add "_timings"
DESTINATION = TextStream(GROUP, STREAM, SINK_DEFAULTS)
add_sink, stored, wait_stored = DESTINATION.add_sink, DESTINATION.stored, DESTINATION.wait_stored


# --------------------------------------------------------------------------- a transient failure


@pytest.mark.parametrize(
    ("via", "action", "kind"),
    [
        ("injector", "throttle", "throttled"),
        ("injector", "500", "send_failed"),
        ("injector", "503", "send_failed"),
        ("proxy", "throttle", "throttled"),
        ("proxy", "503", "send_failed"),
        ("proxy", "reset", "send_failed"),
    ],
)
def test_transient_failure_is_retried_with_backoff_and_stored_once(
    via: str,
    action: str,
    kind: str,
    request: pytest.FixtureRequest,
    endpoint: str,
    logs_client: Any,
    put_recorder: PutLogEventsRecorder,
    api: ApiCallRecorder,
    problems: Problems,
    no_jitter: None,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    url = endpoint
    if via == "proxy":
        proxy: FaultProxy = request.getfixturevalue("fault_proxy")
        proxy.set_schedule([action, action])
        url = proxy.url
    else:
        injector: FaultInjector = request.getfixturevalue("fault_injector")
        injector.set_schedule([action, action])
    sink = add_sink(url, on_error=problems, retry_delay=0.05)

    messages = log_many(f"transient-{action}", 20)
    assert sink.force_flush(5)

    assert stored(logs_client) == messages  # every record exactly once, in order
    stats = sink.stats
    assert (stats.sent, stats.batches, stats.retries, stats.failed) == (20, 1, 2, 2)
    assert (stats.queued, stats.dropped, stats.rejected) == (0, 0, 0)
    # A reset may have reached CloudWatch: its resend is counted as a possible duplicate. An error
    # answer proves nothing was stored.
    assert stats.resent == (40 if action == "reset" else 0)
    assert problems.kinds() == [kind, kind]
    assert all(problem.count == 20 for problem in problems.of(kind))
    # The same batch each time, one HTTP attempt per call.
    assert put_recorder.batches == [put_recorder.batches[0]] * 3
    assert len(put_recorder.attempts) == len(put_recorder.calls) == 3
    # Exponential backoff: retry_delay * 2**attempt (jitter pinned to its ceiling) between attempts.
    first, second, third = put_times(api)
    assert second - first >= 0.045
    assert third - second >= 0.09


# --------------------------------------------------------------------------- a lost answer


@pytest.mark.parametrize(
    ("via", "action", "copies"),
    [
        ("proxy", "drop_answer", 2),  # stored, then the connection closed without an answer
        ("proxy", ("delay_answer", 1.0), 2),  # stored, answered after the client's read timeout
        ("injector", "timeout", 1),  # a read timeout before anything was stored
    ],
)
def test_lost_answer_loses_nothing_and_counts_possible_duplicates(
    via: str,
    action: Any,
    copies: int,
    request: pytest.FixtureRequest,
    endpoint: str,
    logs_client: Any,
    problems: Problems,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    url = endpoint
    proxy: FaultProxy | None = None
    injector: FaultInjector | None = None
    if via == "proxy":
        proxy = request.getfixturevalue("fault_proxy")
        url = proxy.url
    else:
        injector = request.getfixturevalue("fault_injector")
    sink = add_sink(url, on_error=problems, boto_config=Config(read_timeout=0.3))

    before = log_many("before", 5)
    assert sink.force_flush(5)
    if proxy is not None:
        proxy.set_schedule([action])
    if injector is not None:
        injector.set_schedule([action])
    lost = log_many("lost", 5)
    assert sink.force_flush(5)
    after = log_many("after", 5)
    assert sink.force_flush(5)

    counts = collections.Counter(stored(logs_client))
    assert all(counts[message] == 1 for message in before + after)
    assert all(counts[message] == copies for message in lost)
    assert set(counts) == set(before + lost + after)
    stats = sink.stats
    # Every possible duplicate is counted: only the batch whose answer was lost was sent again.
    assert stats.resent == len(lost)
    assert sum(counts.values()) - 15 <= stats.resent
    assert (stats.sent, stats.retries, stats.failed, stats.queued) == (15, 1, 1, 0)
    assert problems.kinds() == ["send_failed"]


# --------------------------------------------------------------------------- refused credentials


@pytest.mark.parametrize(
    ("action", "injected"),
    [("denied", False), ("unrecognized", False), ("expired", False), ("unrecognized", True)],
)
def test_refused_credentials_reported_once_retried_slowly_then_recovered(
    action: str,
    injected: bool,
    endpoint: str,
    logs_client: Any,
    fault_injector: FaultInjector,
    api: ApiCallRecorder,
    problems: Problems,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth_retry = 0.3
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(auth_retry=auth_retry))
    create_group_and_stream(logs_client, GROUP, STREAM)
    faults = Switch(action)
    fault_injector.set_schedule(faults)
    if injected:  # the sink cannot rebuild a client it was given: only its own pacing slows it down
        sink = add_sink(
            None,
            client=make_logs_client(endpoint, max_attempts=1),
            on_error=problems,
            flush_interval=0.05,
            retry_delay=0.001,
        )
    else:
        sink = add_sink(endpoint, on_error=problems, flush_interval=0.05, retry_delay=0.001)

    messages = log_many(f"refused-{action}", 10)
    wait_for(lambda: problems.count("access_denied") == 1, message="access_denied reported")
    window_start = time.monotonic()
    flushes = 0
    # Several flush requests and timed flushes, until the slow retry (with a client built afresh) was made.
    while flushes < 4 or not [t for t in put_times(api) if t >= window_start]:
        assert not sink.force_flush(0.25)
        flushes += 1
        assert time.monotonic() - window_start < 15, "no retry within 15 s"
    window = time.monotonic() - window_start
    calls = [t for t in put_times(api) if t >= window_start]
    # Retried, but at most once per auth_retry, not at every flush.
    assert 1 <= len(calls) <= window / auth_retry + 1, (len(calls), window)
    assert problems.count("access_denied") == 1
    [denied] = problems.of("access_denied")
    assert denied.count == 10
    assert "logs:PutLogEvents" in denied.message
    stats = sink.stats
    assert (stats.queued, stats.sent, stats.dropped, stats.retries) == (10, 0, 0, 0)

    faults.off()
    assert wait_stored(logs_client, 10) == messages
    wait_for(lambda: problems.count("recovered") == 1, message="recovered reported")
    assert problems.count("access_denied") == 1
    assert problems.kinds()[-1] == "recovered"
