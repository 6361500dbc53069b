"""Delivery under a shared quota: throttling at exit, in a fleet that stops or starts at once, and for long.

CloudWatch's quotas are per account and region, so the processes of a deploy are throttled together. The
proxy in front of moto plays that quota: a token bucket shared by every client (``FaultProxy.limit``),
answering ThrottlingException beyond it. Fleets are real child processes released at the same instant
(``tests/support/fleet.py``). Counts are exact: every record stored once, or exactly the ones that could not be.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch._retry import Timings
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.fleet import ENDING, WAIT_FOR_RELEASE, Fleet
from tests.support.problems import ProblemLog
from tests.support.proxy import FaultProxy
from tests.support.sinks import add_text_sink, log_many

GROUP = "contention"
STREAM = "contention-stream"

#: Long flush interval: what is logged stays queued until the test flushes or stops the sink.
SINK_DEFAULTS: dict[str, Any] = {"flush_interval": 60.0, "shutdown_timeout": 10.0}


def add_sink(url: str, stream: str = STREAM, **options: Any) -> Any:
    return add_text_sink(GROUP, stream, url, SINK_DEFAULTS, **options)


def puts(proxy: FaultProxy, outcome: str | None = None) -> list[Any]:
    return [op for op in proxy.ops if op.operation == "PutLogEvents" and outcome in (None, op.outcome)]


# --------------------------------------------------------------------------- one sink, at exit


def test_a_throttle_burst_at_exit_is_waited_out_within_shutdown_timeout(
    fault_proxy: FaultProxy, logs_client: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    # A round of max_retries=3 waits uniform(0, 0.25 * 2**k) between its 4 attempts: 0.9 s on average, at
    # most 1.75 s. The burst outlasts it; the 3 s budget does not.
    sink = add_sink(fault_proxy.url, retry_delay=0.25, max_retries=3, shutdown_timeout=3.0)
    messages = log_many("burst", 6000)
    fault_proxy.limit("PutLogEvents", per_second=20, closed_for=1.5)  # every call refused for 1.5 s

    started = time.monotonic()
    logger.remove()  # stop(): the final drain
    took = time.monotonic() - started

    assert read_messages(logs_client, GROUP, STREAM) == messages  # every record, once, in order
    assert (sink.stats.sent, sink.stats.abandoned, sink.stats.queued) == (6000, 0, 0)
    throttled = len(puts(fault_proxy, "limited"))
    # It kept trying past one round of max_retries and past 1.5 s, within its budget, and did not storm.
    assert 1.5 <= took < 3.0, took
    assert 1 <= throttled <= 15, throttled
    assert len(puts(fault_proxy, "accepted")) == 1
    assert "could not be delivered" not in capfd.readouterr().err


def test_throttling_that_outlasts_shutdown_timeout_abandons_exactly_the_rest_and_says_why(
    fault_proxy: FaultProxy, logs_client: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    problems = ProblemLog()
    sink = add_sink(fault_proxy.url, retry_delay=0.05, shutdown_timeout=2.0, on_error=problems)
    log_many("never", 1500)
    fault_proxy.limit("PutLogEvents", per_second=0, closed_for=60)

    started = time.monotonic()
    logger.remove()
    took = time.monotonic() - started

    # It used its budget, and no more. The last of the final attempts starts within the last third of the
    # final window, which ends a reserve for one call (two calls' duration) before the deadline; one round
    # of max_retries ended after about 0.35 s.
    assert 1.5 <= took < 2.5, took
    assert (sink.stats.sent, sink.stats.abandoned) == (0, 1500)
    attempts = len(puts(fault_proxy, "limited"))
    # Retries spread over the budget: the ceiling grows to a quarter of it, then a few final attempts.
    assert 5 <= attempts <= 25, attempts
    err = capfd.readouterr().err
    [line] = [line for line in err.splitlines() if "could not be delivered" in line]
    assert line.startswith(
        f"loguru-cloudwatch: 1500 records could not be delivered to log group {GROUP!r} stream {STREAM!r}: "
        "stop() tried for "
    ), line
    assert "of shutdown_timeout=2s; the last attempt: PutLogEvents failed (ThrottlingException" in line, line
    assert "later attempt" not in line  # there is no later attempt at exit
    [undelivered] = problems.messages("undelivered_at_stop")
    assert undelivered == line.removeprefix("loguru-cloudwatch: ")


# --------------------------------------------------------------------------- force_flush under throttling


def test_force_flush_keeps_trying_until_the_quota_allows_and_returns_true(
    fault_proxy: FaultProxy, logs_client: Any
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_sink(fault_proxy.url, retry_delay=0.1, max_retries=1)
    messages = log_many("flushed", 300)
    fault_proxy.limit("PutLogEvents", per_second=10, closed_for=1.0)

    started = time.monotonic()
    assert sink.force_flush(8) is True  # more than one round of max_retries=1 was needed
    assert time.monotonic() - started >= 1.0
    assert read_messages(logs_client, GROUP, STREAM) == messages
    assert sink.stats.queued == 0 and len(puts(fault_proxy, "limited")) >= 2


def test_force_flush_returns_false_at_its_deadline_and_the_records_stay_due(
    fault_proxy: FaultProxy, logs_client: Any
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_sink(fault_proxy.url, retry_delay=0.05)
    messages = log_many("late", 250)
    bucket = fault_proxy.limit("PutLogEvents", per_second=0, closed_for=60)

    started = time.monotonic()
    assert sink.force_flush(1.0) is False
    took = time.monotonic() - started
    assert 1.0 <= took < 1.5, took
    assert (sink.stats.queued, sink.stats.sent, sink.stats.dropped) == (250, 0, 0)  # exactly what is left
    assert bucket.granted == 0 and bucket.refused >= 2

    fault_proxy.unlimit("PutLogEvents")
    # Nobody waits any more, but the records were asked for: they go without waiting for the 60 s interval.
    deadline = time.monotonic() + 30
    while read_messages(logs_client, GROUP, STREAM) != messages:
        assert time.monotonic() < deadline, sink.stats
        time.sleep(0.05)
    assert sink.stats.sent == 250


def test_a_retry_after_hint_is_honoured(fault_proxy: FaultProxy, logs_client: Any) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_sink(fault_proxy.url, retry_delay=0.001)
    messages = log_many("hinted", 10)
    fault_proxy.set_schedule([("retry_after", 0.6)])  # 400 ThrottlingException, x-amz-retry-after: 600

    assert sink.force_flush(5) is True
    [refused, accepted] = puts(fault_proxy)
    assert (refused.outcome, accepted.outcome) == ("retry_after", "accepted")
    assert accepted.at - refused.at >= 0.6  # not the 1 ms of its own backoff
    assert read_messages(logs_client, GROUP, STREAM) == messages


# --------------------------------------------------------------------------- sustained throttling


def test_sustained_throttling_sends_fewer_fuller_batches_loses_nothing_and_recovers(
    fault_proxy: FaultProxy, logs_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every wait is at most 0.5 s (instead of 30): the pace is back to normal ~1 s after the quota frees.
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(max_backoff=0.5))
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_sink(fault_proxy.url, flush_interval=0.1, retry_delay=0.25, max_retries=3)
    logged: list[str] = []

    def log_for(seconds: float, phase: str) -> tuple[float, float]:
        """About 200 records a second, as a service would log them."""
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            message = f"{phase}-{len(logged):05d}"
            logger.info(message)
            logged.append(message)
            time.sleep(0.005)
        return start, time.monotonic()

    calm = log_for(1.0, "calm")
    fault_proxy.limit("PutLogEvents", per_second=1, burst=1)
    throttled = log_for(3.0, "throttled")
    fault_proxy.unlimit("PutLogEvents")
    after = log_for(3.0, "after")
    assert sink.force_flush(10) is True

    stored = read_messages(logs_client, GROUP, STREAM)
    assert collections.Counter(stored) == collections.Counter(logged)  # every record once
    assert (sink.stats.dropped, sink.stats.resent) == (0, 0)

    def accepted_in(window: tuple[float, float]) -> list[Any]:
        return [op for op in puts(fault_proxy, "accepted") if window[0] <= op.at < window[1]]

    def mean_batch(ops: list[Any]) -> float:
        return sum(op.events for op in ops) / len(ops)

    calm_calls, throttled_calls = accepted_in(calm), accepted_in(throttled)
    late_after = accepted_in((after[1] - 1.0, after[1]))  # once the stretched interval has shrunk back
    # Fewer and fuller calls while throttled (about one delivered a second), not many small ones.
    assert len(throttled_calls) <= 3 * 1 + 2, [op.events for op in throttled_calls]
    # Against what the pacing makes of the calm rate (records per flush interval), not the calm calls' own
    # mean: the first calm call also carries what arrived while the client was built, which a loaded
    # machine stretches (one calm call of 37 records was measured next to the usual ~20).
    calm_batch = sum(1 for message in logged if message.startswith("calm")) / (calm[1] - calm[0]) * 0.1
    assert mean_batch(throttled_calls) >= 4 * calm_batch, (throttled_calls, calm_batch)
    # Refused calls stay few too: rounds of 1 + max_retries calls spread by backoff, at most 8 a second
    # here; a sink retrying without backoff would make hundreds.
    refused = [op for op in puts(fault_proxy, "limited") if throttled[0] <= op.at < throttled[1]]
    assert len(refused) <= 8 * 3, len(refused)
    # And once the throttling stops, the pace is the flush interval again within a few calls (0.1 s: ~10
    # calls a second; each call delivered at once halves the stretched interval).
    assert len(late_after) >= 5, [(op.at - after[0], op.events) for op in accepted_in(after)]
    assert mean_batch(late_after) <= 2 * mean_batch(calm_calls) + 5


# --------------------------------------------------------------------------- fleets

FLEET_SIZE = 8
FLEET_RECORDS = 2000  # one PutLogEvents call's worth in text mode

FLEET_DRAIN = (
    """\
import os, sys, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink

logger.remove()
logger.add(
    CloudWatchSink(os.environ["T_GROUP"], os.environ["T_STREAM"], endpoint_url=os.environ["T_URL"],
                   serialize=False, flush_interval=60, shutdown_timeout=float(os.environ["T_SHUTDOWN"])),
    format="{message}",
)
for i in range(int(os.environ["T_RECORDS"])):
    logger.info(f"r{i:05d}")
"""
    + WAIT_FOR_RELEASE
    + ENDING
)


def test_a_fleet_stopping_at_once_behind_one_quota_delivers_every_record_once(
    fault_proxy: FaultProxy, logs_client: Any
) -> None:
    shutdown_timeout = 10.0
    streams = [f"fleet-drain-{index}" for index in range(FLEET_SIZE)]
    for stream in streams:
        create_group_and_stream(logs_client, GROUP, stream)

    def env(index: int) -> dict[str, str]:
        return {
            "T_GROUP": GROUP, "T_STREAM": streams[index], "T_URL": fault_proxy.url,
            "T_RECORDS": str(FLEET_RECORDS), "T_SHUTDOWN": str(shutdown_timeout),
        }  # fmt: skip

    with Fleet(FLEET_DRAIN, FLEET_SIZE, env) as fleet:
        fleet.wait_ready()
        fault_proxy.limit("PutLogEvents", per_second=1.5, burst=1.5)  # 8 batches need 4.7 s of quota
        fleet.release()
        ended = fleet.reap(timeout=60)

    expected = [f"r{i:05d}" for i in range(FLEET_RECORDS)]
    for stream, child in zip(streams, ended, strict=True):
        assert child.returncode == 0, child.stderr
        assert "could not be delivered" not in child.stderr, child.stderr
        assert read_messages(logs_client, GROUP, stream) == expected  # every record, once
        assert child.exit_seconds <= shutdown_timeout + 1, [c.exit_seconds for c in ended]
    delivered = len(puts(fault_proxy, "accepted"))
    requests = len(puts(fault_proxy))
    assert delivered == FLEET_SIZE  # one call per process: nothing split, nothing sent twice
    # Full jitter spreads them out: under 4 requests per delivered batch (simulated: 3.6 on average, 4.75
    # at worst in 5,000 runs of this set-up); a fixed or missing backoff would make far more.
    assert requests / delivered <= 5.5, (requests, delivered)


FLEET_START = (
    """\
import os, sys, time
from loguru import logger
from loguru_cloudwatch import CloudWatchSink
"""
    + WAIT_FOR_RELEASE
    + """
logger.remove()
logger.add(
    CloudWatchSink(os.environ["T_GROUP"], "fleet-start-{pid}", endpoint_url=os.environ["T_URL"],
                   serialize=False, shutdown_timeout=float(os.environ["T_SHUTDOWN"])),
    format="{message}",
)
for i in range(100):  # about a second of work, then a normal end
    logger.info(f"s{i:03d}")
    time.sleep(0.01)
print("PID", os.getpid())
"""
    + ENDING
)


def test_a_fleet_starting_at_once_behind_the_create_stream_quota_delivers_every_record(
    fault_proxy: FaultProxy, logs_client: Any
) -> None:
    shutdown_timeout = 10.0
    create_group_and_stream(logs_client, GROUP, "placeholder")  # the group exists; every stream is new

    def env(index: int) -> dict[str, str]:
        return {"T_GROUP": GROUP, "T_URL": fault_proxy.url, "T_SHUTDOWN": str(shutdown_timeout)}

    with Fleet(FLEET_START, FLEET_SIZE, env) as fleet:
        fleet.wait_ready()
        fault_proxy.limit("CreateLogStream", per_second=1.5, burst=1.5)  # 8 streams need 4.7 s of quota
        fleet.release()
        ended = fleet.reap(timeout=60)

    expected = [f"s{i:03d}" for i in range(100)]
    for child in ended:
        assert child.returncode == 0, child.stderr
        assert "could not be delivered" not in child.stderr, child.stderr
        words = child.stdout.split()
        stream = f"fleet-start-{words[words.index('PID') + 1]}"
        assert read_messages(logs_client, GROUP, stream) == expected, stream
        assert child.exit_seconds <= shutdown_timeout + 1, [c.exit_seconds for c in ended]
        # No process spins: a few CreateLogStream calls each, not one per flush or per retry of a loop.
        assert fault_proxy.op_count("CreateLogStream", stream=stream) <= 8, fault_proxy.ops
    assert fault_proxy.op_count("CreateLogStream", "limited") >= 1  # the quota did bite
