"""Scenarios 1-6 of issue 4 ("prove it under fire"): faults, storms, lost answers, outages, credentials, deletion.

Every test runs the sink against moto over real HTTP, with faults injected by the FaultProxy (network-level:
throttling, 5xx, resets, delays, answers dropped after the events were stored) or by a botocore hook, and
checks exact counts three ways: what CloudWatch holds, what went over the wire, and what ``sink.stats``
says. Long variants are marked ``slow``; a short one of each stays in the default run.

Covered elsewhere with exact counts and not repeated here (see the README "Reliability" section): one
fault kind at a time (test_single_faults.py::test_transient_failure_is_retried_with_backoff_and_stored_once,
next to this file), a single lost answer
(test_single_faults.py::test_lost_answer_loses_nothing_and_counts_possible_duplicates), a deleted stream
(tests/test_cloudwatch.py::test_stream_deleted_while_running_is_recreated), missing credentials
(tests/test_client.py::test_without_credentials_no_call_is_made_and_delivery_resumes_by_itself) and
refused ones with a fault switched off
(test_single_faults.py::test_refused_credentials_reported_once_retried_slowly_then_recovered).
"""

from __future__ import annotations

import collections
import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._queue import QUEUED_EVENT_OVERHEAD
from loguru_cloudwatch._retry import Timings
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.faults import fabricated_error_response
from tests.support.problems import ProblemLog
from tests.support.programs import run_python
from tests.support.proxy import FaultProxy
from tests.support.recorders import ApiCallRecorder, attach_to_new_logs_clients
from tests.support.sinks import add_text_sink
from tests.support.waiting import wait_for

GROUP = "scenario-faults"
STREAM = "scenario-stream"

#: Proxy actions after which moto holds the events although the sink heard no success.
ANSWER_LOST = ("drop_answer", "delay_answer")
#: The client's read timeout in these tests, and an answer held past it (so it is lost). Far apart, and far
#: above a normal call's time even on a loaded 2-CPU machine: an "ok" or a short "delay" that outlasted the
#: timeout would be a lost answer the schedule does not know of (0.25 s was exceeded under load).
READ_TIMEOUT = 1.5
ANSWER_HELD = ("delay_answer", 3.0)
#: Proxy actions whose outcome the sink cannot know (stored or not): a resend is counted in stats.resent.
OUTCOME_UNKNOWN = ("reset", *ANSWER_LOST)
#: Proxy actions answered with CloudWatch's success.
CONFIRMED = ("ok", "delay")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def problems() -> ProblemLog:
    return ProblemLog()


SINK_DEFAULTS: dict[str, Any] = {
    "flush_interval": 0.05,
    "retry_delay": 0.005,
    "max_retries": 3,
    "shutdown_timeout": 3.0,
}


def add_sink(url: str, *, enqueue: bool = False, **options: Any) -> CloudWatchSink:
    return add_text_sink(GROUP, STREAM, url, SINK_DEFAULTS, enqueue=enqueue, **options)


def log_many(prefix: str, count: int) -> list[str]:
    messages = [f"{prefix}-{index:05d}" for index in range(count)]
    for message in messages:
        logger.info(message)
    return messages


def flush(sink: CloudWatchSink, timeout: float = 20.0) -> bool:
    """Everything logged so far delivered: loguru's enqueue=True queue first, then the sink's."""
    logger.complete()
    return sink.force_flush(timeout)


def stored(client: Any, stream: str = STREAM) -> list[str]:
    return read_messages(client, GROUP, stream)


def action_name(action: Any) -> str:
    return str(action[0] if isinstance(action, tuple) else action)


def first_occurrences(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def proxied_calls(proxy: FaultProxy) -> list[tuple[str, list[str]]]:
    """(action name, messages of the batch) of every PutLogEvents the proxy saw, in order."""
    with proxy._lock:
        calls = list(zip(proxy.calls, proxy.requests, strict=True))
    result = []
    for (action, n_events), body in calls:
        batch = [event["message"] for event in body["logEvents"]]
        assert len(batch) == n_events
        result.append((action_name(action), batch))
    return result


def expected_resent(calls: list[tuple[str, list[str]]]) -> int:
    """Records sent again after a call of unknown outcome: one per (such call, record sent in a later call)."""
    resent = 0
    later: set[str] = set()
    for name, batch in reversed(calls):
        if name in OUTCOME_UNKNOWN:
            resent += len(set(batch) & later)
        later.update(batch)
    return resent


def check_exact_delivery(proxy: FaultProxy, client: Any, messages: list[str], sink: CloudWatchSink) -> None:
    """Every record stored once, plus one copy per call that stored it without the sink hearing so.

    Computed from what the proxy saw, call by call: the batch each PutLogEvents carried and what was done
    with it.
    """
    confirmed: collections.Counter[str] = collections.Counter()
    lost: collections.Counter[str] = collections.Counter()
    calls = proxied_calls(proxy)
    for name, batch in calls:
        if name in CONFIRMED:
            confirmed.update(batch)
        if name in ANSWER_LOST:
            lost.update(batch)
    held = stored(client)
    copies = collections.Counter(held)
    assert set(copies) == set(messages)
    # Each record had exactly one confirmed call: never sent again once CloudWatch said it stored it.
    assert confirmed == collections.Counter(messages)
    # Duplicates: exactly the records of the calls whose answer was lost, once per lost answer.
    assert copies == collections.Counter(messages) + lost
    assert len(held) - len(messages) == sum(lost.values())
    assert first_occurrences(held) == messages  # and in the order they were logged
    stats = sink.stats
    # Every resend after an attempt of unknown outcome is counted (a reset may or may not have been stored).
    assert stats.resent == expected_resent(calls)
    failed_calls = sum(1 for name, _ in calls if name not in CONFIRMED)
    assert (stats.sent, stats.batches, stats.failed) == (len(messages), len(calls) - failed_calls, failed_calls)
    assert (stats.queued, stats.dropped, stats.rejected, stats.abandoned) == (0, 0, 0, 0)


# --------------------------------------------------------------------------- 1. intermittent faults


#: Every kind of fault the proxy makes, mixed with successes; never more than 3 failures in a row.
MIXED_PATTERN: list[Any] = [
    "ok", "throttle", "ok", "500", "ok", "503", "reset", "ok", ("delay", 0.02), "drop_answer",
    "ok", "throttle", "503", "ok", "drop_answer", "reset", "ok", "500", "throttle", "ok",
]  # fmt: skip


def random_schedule(length: int, seed: int) -> list[Any]:
    """A reproducible mix of every fault kind and successes (about one call in two fails)."""
    rng = random.Random(seed)
    kinds: list[Any] = ["throttle", "500", "503", "reset", ("delay", 0.05), "drop_answer", ANSWER_HELD]
    return [rng.choice(kinds) if rng.random() < 0.5 else "ok" for _ in range(length)]


@pytest.mark.parametrize(
    ("enqueue", "count", "batch", "schedule"),
    [
        pytest.param(False, 400, 20, MIXED_PATTERN * 3, id="short"),
        pytest.param(True, 400, 20, MIXED_PATTERN * 3, id="short-enqueue"),
        pytest.param(False, 5_000, 50, random_schedule(400, seed=4), id="long", marks=pytest.mark.slow),
    ],
)
def test_intermittent_faults_of_every_kind_store_every_record_once(
    enqueue: bool,
    count: int,
    batch: int,
    schedule: list[Any],
    fault_proxy: FaultProxy,
    logs_client: Any,
    problems: ProblemLog,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    fault_proxy.set_schedule(schedule)
    sink = add_sink(
        fault_proxy.url,
        enqueue=enqueue,
        max_batch_size=batch,
        on_error=problems,
        boto_config=Config(read_timeout=READ_TIMEOUT),
    )

    messages = log_many("mixed", count)
    assert flush(sink, timeout=120), sink.stats  # the long schedule holds some answers 3 s

    kinds = {action_name(action) for action, _ in fault_proxy.calls}
    assert {"throttle", "500", "503", "reset", "delay", "drop_answer"} <= kinds  # every kind really happened
    check_exact_delivery(fault_proxy, logs_client, messages, sink)
    stats = sink.stats
    # Each failed call is retried, except the last one of a round that gave up (the batch waited in the queue).
    assert stats.retries == stats.failed - problems.count("delivery_failed")
    assert len(fault_proxy.calls) == stats.batches + stats.failed
    assert fault_proxy.errors == []


# --------------------------------------------------------------------------- 2. throttling storm


class Storm:
    """A proxy schedule: every PutLogEvents is throttled from ``start()`` for ``seconds``, then all go through."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until = float("inf")

    def start(self) -> None:
        self.until = time.monotonic() + self.seconds

    def active(self) -> bool:
        return time.monotonic() < self.until

    def __iter__(self) -> Iterator[str]:
        while self.active():
            yield "throttle"


def storm_call_bound(seconds: float, retry_delay: float, max_retries: int, max_backoff: float) -> int:
    """The most PutLogEvents calls a sink (jitter pinned to its ceiling) can make in a storm of ``seconds``.

    A round is 1 call + ``max_retries`` retries, ``retry_delay * 2**k`` apart; after the n-th failed round
    the sink waits ``retry_delay * 2**(max_retries + n)``; every pause is capped at ``max_backoff``. Calls
    take time and rounds start at a timed flush, which only makes the real count lower.
    """
    elapsed, calls, streak = 0.0, 0, 0
    while True:
        for attempt in range(max_retries + 1):
            if elapsed > seconds:
                return calls
            calls += 1
            if attempt < max_retries:
                elapsed += min(max_backoff, retry_delay * 2**attempt)
        streak += 1
        elapsed += min(max_backoff, retry_delay * 2 ** (max_retries + streak))


@pytest.mark.parametrize("seconds", [pytest.param(1.5, id="1.5s"), pytest.param(6.0, id="6s", marks=pytest.mark.slow)])
def test_throttling_storm_stores_every_record_once_with_growing_backoff_and_few_calls(
    seconds: float,
    fault_proxy: FaultProxy,
    logs_client: Any,
    api: ApiCallRecorder,
    problems: ProblemLog,
    no_jitter: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    max_backoff, retry_delay, max_retries = 0.5, 0.02, 2
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(max_backoff=max_backoff))
    create_group_and_stream(logs_client, GROUP, STREAM)
    storm = Storm(seconds)
    fault_proxy.set_schedule(storm)
    sink = add_sink(
        fault_proxy.url, max_batch_size=50, max_retries=max_retries, retry_delay=retry_delay, on_error=problems
    )

    storm.start()
    messages: list[str] = []
    rounds = 0
    while storm.active():  # the program keeps logging through the storm: a full batch every 50 ms
        messages += log_many(f"storm{rounds:03d}", 50)
        rounds += 1
        time.sleep(0.05)
    messages += log_many("after", 20)
    assert flush(sink), sink.stats

    copies = collections.Counter(stored(logs_client))
    assert copies == collections.Counter(messages)  # every record exactly once
    throttled = fault_proxy.count("throttle")
    # No retry storm: at most what the backoff allows (about 4 rounds of 3 calls in 1.5 s), although ~30 timed
    # flushes and ~30 full batches asked for a send meanwhile.
    bound = storm_call_bound(seconds, retry_delay, max_retries, max_backoff)
    assert 3 * (max_retries + 1) <= throttled <= bound, (throttled, bound)
    # Backoff grows: after the n-th failed round the pause is retry_delay * 2**(max_retries + n), capped.
    failed_rounds = problems.times("delivery_failed")
    gaps = [later - earlier for earlier, later in itertools.pairwise(failed_rounds)]
    for n, gap in enumerate(gaps, start=1):
        assert gap >= 0.95 * min(max_backoff, retry_delay * 2 ** (max_retries + n)), (n, gaps)
    assert gaps[1] > gaps[0] * 1.3, gaps
    stats = sink.stats
    assert (stats.failed, stats.resent, stats.dropped, stats.queued, stats.rejected) == (throttled, 0, 0, 0, 0)
    assert stats.retries == throttled - len(failed_rounds)
    assert stats.sent == len(messages)
    assert len(fault_proxy.calls) == throttled + stats.batches
    assert problems.count("throttled") == stats.retries


# --------------------------------------------------------------------------- 3. answers lost in flight


LOST_SCHEDULE: list[Any] = [
    "ok", "drop_answer", "ok", "ok", "drop_answer", "drop_answer", "ok",
    ANSWER_HELD, "ok", "ok", "drop_answer", "ok", "ok", "drop_answer",
]  # fmt: skip


@pytest.mark.parametrize(
    "max_retries",
    [
        pytest.param(3, id="resent-by-retry"),
        pytest.param(0, id="resent-at-a-later-flush"),  # the batch goes back to the queue, merged with newer ones
    ],
)
def test_lost_answers_duplicate_only_their_batches_and_every_duplicate_is_counted(
    max_retries: int, fault_proxy: FaultProxy, logs_client: Any, problems: ProblemLog
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    fault_proxy.set_schedule(LOST_SCHEDULE)
    sink = add_sink(
        fault_proxy.url,
        max_batch_size=10,
        max_retries=max_retries,
        on_error=problems,
        boto_config=Config(read_timeout=READ_TIMEOUT),
    )

    messages = log_many("lost", 150)
    assert flush(sink), sink.stats

    check_exact_delivery(fault_proxy, logs_client, messages, sink)
    lost_calls = [(action, n) for action, n in fault_proxy.calls if action_name(action) in ANSWER_LOST]
    assert len(lost_calls) == 6
    duplicates = len(stored(logs_client)) - len(messages)
    # Here every unknown outcome really was stored: the count of possible duplicates is the exact count.
    assert sink.stats.resent == duplicates == sum(n for _, n in lost_calls)
    assert sink._worker.shipper.maybe_stored == set()
    assert problems.kinds().count("send_failed") + problems.count("delivery_failed") == len(lost_calls)


# --------------------------------------------------------------------------- 4. outage longer than the queue


OUTAGE_CHILD = r"""
import json, os, sys, time, tracemalloc
from loguru import logger
from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._queue import QUEUED_EVENT_OVERHEAD
from loguru_cloudwatch._retry import Timings
from tests.support.problems import ProblemLog

max_bytes, count, size = (int(os.environ[name]) for name in ("T_MAX_BYTES", "T_COUNT", "T_SIZE"))
problems = ProblemLog()
logger.remove()
sink = CloudWatchSink(
    os.environ["T_GROUP"], os.environ["T_STREAM"], endpoint_url=os.environ["T_URL"], serialize=False,
    flush_interval=0.05, max_batch_size=100, max_retries=0, retry_delay=0.01, max_queue_bytes=max_bytes,
    shutdown_timeout=5, on_error=problems, _timings=Timings(max_backoff=0.2),  # a quick retry once it is back
)
logger.add(sink, format="{message}")

def wait(predicate, what):
    deadline = time.monotonic() + 20
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}: {sink.stats}")
        time.sleep(0.005)

padding = "x" * (size - 8)
logger.info(f"{0:08d}{padding}")
# Measure from the first failed call on: botocore's request machinery is built by then.
wait(lambda: problems.count("delivery_failed") >= 1, "a first failure")
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
accounted = 0
for i in range(1, count):
    logger.info(f"{i:08d}{padding}")
    if i % 100 == 0:
        accounted = max(accounted, sink._queue.memory_bytes)
capacity = max_bytes // (size + QUEUED_EVENT_OVERHEAD)
# The batch in flight goes back to the queue at its next failure, and the overflow is dropped then.
wait(lambda: sink.stats.dropped == count - capacity, "the overflow to be dropped")
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
during = sink.stats
wait(lambda: problems.records("queue_full") == during.dropped, "the drops to be reported")
open(os.environ["T_FLAG"], "w").close()  # the endpoint comes back
flushed = sink.force_flush(20)
after = sink.stats
print(json.dumps({
    "capacity": capacity, "peak": peak - base, "current": current - base, "accounted": accounted,
    "during": {"queued": during.queued, "dropped": during.dropped, "sent": during.sent},
    "flushed": flushed,
    "after": {"queued": after.queued, "dropped": after.dropped, "sent": after.sent, "resent": after.resent},
    "reported": problems.records("queue_full"), "report": problems.messages("queue_full")[0],
}))
"""


@pytest.mark.parametrize(
    ("max_bytes", "count", "action"),
    [
        pytest.param(4 * 1024 * 1024, 12_000, "503", id="4MiB-24MB-503"),
        pytest.param(4 * 1024 * 1024, 12_000, "reset", id="4MiB-24MB-reset"),
        pytest.param(32 * 1024 * 1024, 100_000, "503", id="32MiB-200MB-503", marks=pytest.mark.slow),
    ],
)
def test_outage_longer_than_the_queue_holds_bounds_memory_and_drops_exactly_the_overflow(
    max_bytes: int, count: int, action: str, fault_proxy: FaultProxy, logs_client: Any, tmp_path: Path
) -> None:
    size = 2_000
    stream = "outage"
    create_group_and_stream(logs_client, GROUP, stream)
    back = tmp_path / "endpoint-is-back"

    def outage() -> Iterator[str]:
        while not back.exists():
            yield action

    fault_proxy.set_schedule(outage())
    env = {
        "T_GROUP": GROUP, "T_STREAM": stream, "T_URL": fault_proxy.url, "T_FLAG": str(back),
        "T_MAX_BYTES": str(max_bytes), "T_COUNT": str(count), "T_SIZE": str(size),
    }  # fmt: skip
    result = run_python(OUTAGE_CHILD, timeout=90, env=env)
    assert result.returncode == 0, f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    info = json.loads(result.stdout.strip().splitlines()[-1])

    capacity = info["capacity"]
    assert capacity == max_bytes // (size + QUEUED_EVENT_OVERHEAD)
    # The queue's own accounting never exceeded the bound, and the process's Python memory stayed within it
    # plus one batch in flight (its payloads, their decoded copies and the request body: 100 x 2 KB each)
    # and loguru's and botocore's transient objects, although 6 times the bound was logged.
    assert info["accounted"] <= max_bytes
    assert info["peak"] <= max_bytes + 2 * 1024 * 1024, info
    assert count * size >= 5 * max_bytes
    # Exactly the overflow was dropped (the oldest), counted and reported; nothing was sent meanwhile.
    assert info["during"] == {"queued": capacity, "dropped": count - capacity, "sent": 0}
    assert info["reported"] == count - capacity
    assert "max_queue_bytes" in info["report"]
    # The endpoint came back: the rest was delivered, the newest records, once each and in order.
    assert info["flushed"] is True
    assert info["after"]["sent"] == capacity
    assert (info["after"]["queued"], info["after"]["dropped"]) == (0, count - capacity)
    padding = "x" * (size - 8)
    assert stored(logs_client, stream) == [f"{i:08d}{padding}" for i in range(count - capacity, count)]
    # Each time records of a reset call were sent again, they were counted as possible duplicates (none
    # were: a reset never reached CloudWatch); records dropped meanwhile were not.
    calls = proxied_calls(fault_proxy)
    assert info["after"]["resent"] == expected_resent(calls)
    assert (info["after"]["resent"] > 0) == (action == "reset")


# --------------------------------------------------------------------------- 5. credentials


REVOKED_KEY = "AKIAREVOKED000000001"


class CredentialPolicy:
    """A stand-in for IAM: refuses calls signed with a revoked key, and PutLogEvents while ``deny`` is set."""

    def __init__(self) -> None:
        self.deny = threading.Event()

    def attach(self, client: Any) -> None:
        client.meta.events.register(
            "before-send.cloudwatch-logs", self._on_send, unique_id=f"credential-policy-{id(self)}"
        )

    def _on_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        authorization = request.headers.get("Authorization", b"")
        if isinstance(authorization, bytes):
            authorization = authorization.decode()
        if f"Credential={REVOKED_KEY}/" in authorization:
            message = "The security token included in the request is invalid."
            return fabricated_error_response(request.url, 400, "UnrecognizedClientException", message)
        if self.deny.is_set():
            return fabricated_error_response(
                request.url,
                400,
                "AccessDeniedException",
                "User: arn:aws:iam::123456789012:user/app is not authorized to perform: logs:PutLogEvents",
            )
        return None


def put_attempts(api: ApiCallRecorder, since: float = 0.0) -> list[Any]:
    return [attempt for attempt in api.attempts if attempt.operation == "PutLogEvents" and attempt.time >= since]


def test_credentials_missing_then_revoked_then_fixed(
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    api: ApiCallRecorder,
    problems: ProblemLog,
) -> None:
    auth_retry = 0.4
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(credential_recheck=0.1, auth_retry=auth_retry))
    create_group_and_stream(logs_client, GROUP, STREAM)
    policy = CredentialPolicy()
    attach_to_new_logs_clients(monkeypatch, policy.attach)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    sink = add_sink(endpoint, on_error=problems, retry_delay=0.001)

    # 1. No credentials: nothing is sent, the records wait.
    messages = log_many("missing", 10)
    wait_for(lambda: problems.count("no_credentials") == 1, message="no_credentials reported")
    assert not sink.force_flush(0.3)
    assert api.attempts == []

    # 2. Credentials appear, but CloudWatch does not know them (a revoked key).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", REVOKED_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "revoked-secret")
    wait_for(lambda: problems.count("access_denied") == 1, message="access_denied reported")
    messages += log_many("refused", 5)
    window_start = time.monotonic()
    for _ in range(6):  # six flush requests and ~25 timed flushes
        assert not sink.force_flush(0.2)
    window = time.monotonic() - window_start
    refused = put_attempts(api, window_start)
    # No tight loop: one attempt per auth_retry at most, each with a freshly built client.
    assert 1 <= len(refused) <= window / auth_retry + 1, (len(refused), window)
    assert problems.count("access_denied") == 1  # one clear report, however many refusals
    [report] = problems.messages("access_denied")
    assert "UnrecognizedClientException" in report and "logs:PutLogEvents" in report
    assert (sink.stats.queued, sink.stats.sent, sink.stats.dropped) == (15, 0, 0)

    # 3. Fixed credentials: picked up by the next client the sink builds; delivery resumes by itself.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    wait_for(lambda: len(stored(logs_client)) == 15, timeout=10, message="all records stored")
    assert stored(logs_client) == messages
    wait_for(lambda: problems.kinds()[-1:] == ["recovered"], message="recovery reported")
    assert problems.kinds() == ["no_credentials", "recovered", "access_denied", "recovered"]
    keys = [attempt.access_key for attempt in put_attempts(api)]
    assert keys == [REVOKED_KEY] * (len(keys) - 1) + ["testing"]
    stats = sink.stats
    assert (stats.sent, stats.batches, stats.failed, stats.retries) == (15, 1, len(keys) - 1, 0)


def test_access_denied_then_granted_gives_one_stderr_line_each(
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    api: ApiCallRecorder,
    capfd: pytest.CaptureFixture[str],
) -> None:
    auth_retry = 0.3
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(auth_retry=auth_retry))
    create_group_and_stream(logs_client, GROUP, STREAM)
    policy = CredentialPolicy()
    policy.deny.set()  # the role lacks logs:PutLogEvents
    attach_to_new_logs_clients(monkeypatch, policy.attach)
    sink = add_sink(endpoint)  # no on_error: reports go to stderr

    messages = log_many("denied", 10)
    wait_for(lambda: len(put_attempts(api)) >= 1, message="a first refused call")
    window_start = time.monotonic()
    for _ in range(5):
        assert not sink.force_flush(0.2)
    window = time.monotonic() - window_start
    assert len(put_attempts(api, window_start)) <= window / auth_retry + 1

    policy.deny.clear()  # permission granted
    wait_for(lambda: len(stored(logs_client)) == 10, timeout=10, message="all records stored")
    assert stored(logs_client) == messages
    wait_for(lambda: sink.stats.sent == 10, message="sent counted")
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("loguru-cloudwatch: ")]
    assert len(lines) == 2, lines
    assert "AccessDeniedException" in lines[0] and "logs:PutLogEvents" in lines[0]
    assert "delivery resumes" in lines[1]


# --------------------------------------------------------------------------- 6. group or stream deleted


@pytest.mark.parametrize("enqueue", [False, True], ids=["direct", "enqueue"])
def test_group_deleted_while_running_is_recreated_with_its_settings(
    enqueue: bool, endpoint: str, logs_client: Any, api: ApiCallRecorder, problems: ProblemLog
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_sink(endpoint, enqueue=enqueue, flush_interval=60.0, retention_days=7, on_error=problems)
    log_many("first", 5)
    assert flush(sink)
    logs_client.delete_log_group(logGroupName=GROUP)  # takes the stream and "first" with it

    second = log_many("second", 5)
    assert flush(sink)
    assert stored(logs_client) == second
    assert api.operations == [
        "PutLogEvents",
        "PutLogEvents",  # ResourceNotFound
        "CreateLogStream",  # ResourceNotFound: the group is gone too
        "CreateLogGroup",
        "PutRetentionPolicy",  # the group's settings, applied again
        "CreateLogStream",
        "PutLogEvents",  # the same batch, once
    ]
    [group] = logs_client.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    assert group["retentionInDays"] == 7

    logs_client.delete_log_stream(logGroupName=GROUP, logStreamName=STREAM)  # and the stream alone ("second" too)
    third = log_many("third", 5)
    assert flush(sink)
    assert stored(logs_client) == third
    assert api.operations[7:] == ["PutLogEvents", "CreateLogStream", "PutLogEvents"]
    stats = sink.stats
    # The two ResourceNotFound answers were fixed by recreating, on the spot: no failure (issue 11).
    assert (stats.sent, stats.batches, stats.failed, stats.queued, stats.dropped, stats.rejected) == (15, 3, 0, 0, 0, 0)
    assert problems.kinds() == []  # recreating is routine, not a problem


def test_group_deleted_repeatedly_while_records_flow_loses_nothing(
    endpoint: str, logs_client: Any, problems: ProblemLog
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_sink(endpoint, flush_interval=0.02, max_batch_size=25, on_error=problems)
    logged: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        index = 0
        while not stop.is_set():
            message = f"flow-{index:05d}"
            logger.info(message)
            logged.append(message)
            index += 1
            time.sleep(0.001)

    def recreated() -> bool:
        try:
            found = logs_client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=STREAM)["logStreams"]
        except logs_client.exceptions.ResourceNotFoundException:
            return False  # the group is not back yet
        return any(stream["logStreamName"] == STREAM for stream in found)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        deleted_at: list[int] = []
        for target in ("group", "stream", "group"):
            time.sleep(0.3)  # records flow meanwhile
            wait_for(recreated, timeout=15, message="the sink recreated the group and the stream")
            if target == "group":
                logs_client.delete_log_group(logGroupName=GROUP)
            else:
                logs_client.delete_log_stream(logGroupName=GROUP, logStreamName=STREAM)
            deleted_at.append(len(logged))
        time.sleep(0.3)
    finally:
        stop.set()
        producer.join()
    assert flush(sink), sink.stats

    held = stored(logs_client)
    copies = collections.Counter(held)
    assert max(copies.values()) == 1  # nothing stored twice
    assert set(held) <= set(logged)
    # Everything logged after the last deletion is there (what was stored before it went with the group).
    assert set(logged[deleted_at[-1] :]) <= set(held)
    stats = sink.stats
    assert stats.sent == len(logged)  # every record had a successful PutLogEvents
    assert (stats.queued, stats.dropped, stats.rejected, stats.resent) == (0, 0, 0, 0)
    assert "create_failed" not in problems.kinds()
