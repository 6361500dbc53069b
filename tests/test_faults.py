"""Every class of CloudWatch failure: retries, backoff, answer loss, bisection, creation, refusal, reporting.

Error responses are injected with the in-process ``fault_injector`` (botocore before-send hook) or, for
network-level faults (resets, lost answers), with the ``fault_proxy`` in front of moto. moto stores what
gets through; the tests read it back and compare it with what was logged.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from loguru import logger

from loguru_cloudwatch import CloudWatchSink, _worker
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.faults import FaultInjector, Switch, fabricated_error_response
from tests.support.problems import Problems
from tests.support.proxy import FaultProxy
from tests.support.recorders import (
    ApiCallRecorder,
    PutLogEventsRecorder,
    attach_to_new_logs_clients,
    decode_body,
    put_times,
)
from tests.support.sinks import add_text_sink, log_many
from tests.support.waiting import wait_for

GROUP = "faults-group"
STREAM = "faults-stream"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


# --------------------------------------------------------------------------- helpers


class MarkerRejecter:
    """Answers InvalidParameterException to every PutLogEvents attempt carrying ``marker`` in a message."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.rejected_sizes: list[int] = []

    def attach(self, client: Any) -> None:
        client.meta.events.register(
            "before-send.cloudwatch-logs.PutLogEvents", self._on_send, unique_id=f"marker-rejecter-{id(self)}"
        )

    def _on_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        events = decode_body(request.body).get("logEvents", [])
        if not any(self.marker in event["message"] for event in events):
            return None
        self.rejected_sizes.append(len(events))
        return fabricated_error_response(request.url, 400, "InvalidParameterException", "Log event message is invalid.")


@pytest.fixture
def problems() -> Problems:
    return Problems()


SINK_DEFAULTS: dict[str, Any] = {
    "flush_interval": 10.0,  # force_flush drives delivery unless a test wants timed flushes
    "retry_delay": 0.005,
    "max_retries": 3,
    "shutdown_timeout": 2.0,
}


def add_sink(endpoint_url: str | None, **options: Any) -> CloudWatchSink:
    return add_text_sink(GROUP, STREAM, endpoint_url, SINK_DEFAULTS, **options)


def stored(client: Any) -> list[str]:
    return read_messages(client, GROUP, STREAM)


def wait_stored(client: Any, count: int, timeout: float = 10.0) -> list[str]:
    """Wait until the stream holds ``count`` events, and return them."""
    wait_for(lambda: len(stored(client)) >= count, timeout=timeout, interval=0.05, message=f"{count} events stored")
    return stored(client)


# --------------------------------------------------------------------------- transient failures


def test_batch_goes_back_to_the_queue_when_retries_run_out(
    endpoint: str,
    logs_client: Any,
    fault_injector: FaultInjector,
    put_recorder: PutLogEventsRecorder,
    problems: Problems,
    no_jitter: None,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    faults = Switch("503")
    fault_injector.set_schedule(faults)
    # 30 records make a full batch: the worker is woken with exactly these 30.
    sink = add_sink(endpoint, on_error=problems, max_retries=2, retry_delay=0.01, flush_interval=0.1, max_batch_size=30)

    messages = log_many("kept", 30)
    wait_for(lambda: problems.count("delivery_failed") >= 2, timeout=10, message="two delivery_failed reports")

    stats = sink.stats
    assert (stats.queued, stats.dropped, stats.sent, stats.rejected) == (30, 0, 0, 0)
    assert stored(logs_client) == []
    assert all(problem.count == 30 for problem in problems.of("delivery_failed"))
    assert "kept for a later attempt" in problems.of("delivery_failed")[0].message
    # Each round is 1 call + max_retries retries.
    assert fault_injector.calls >= 6

    faults.off()
    assert wait_stored(logs_client, 30) == messages  # delivered at a later flush, exactly once
    wait_for(lambda: sink.stats.sent == 30, message="sent counted")
    stats = sink.stats
    assert (stats.queued, stats.dropped, stats.rejected) == (0, 0, 0)
    assert stats.failed == fault_injector.calls - 1
    # Every failed call is retried, except the last one of each round that gave up.
    assert stats.retries == stats.failed - problems.count("delivery_failed")
    # The batch was put back whole and in order: every attempt carried the same 30 records.
    assert all(batch == put_recorder.batches[0] for batch in put_recorder.batches)
    assert [event["message"] for event in put_recorder.batches[0]] == messages


def test_backoff_grows_between_failed_rounds(
    endpoint: str,
    logs_client: Any,
    fault_injector: FaultInjector,
    api: ApiCallRecorder,
    problems: Problems,
    no_jitter: None,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    faults = Switch("throttle")
    fault_injector.set_schedule(faults)
    retry_delay = 0.02
    sink = add_sink(endpoint, on_error=problems, max_retries=1, retry_delay=retry_delay, flush_interval=0.02)

    messages = log_many("storm", 5)
    wait_for(lambda: problems.count("delivery_failed") >= 4, timeout=10, message="four failed rounds")
    failures = problems.times("delivery_failed")[:4]
    # After the k-th failed round the sink waits retry_delay * 2**(max_retries + k) before the next one,
    # although a timed flush comes every 20 ms.
    for index, (earlier, later) in enumerate(zip(failures, failures[1:])):
        assert later - earlier >= 0.95 * retry_delay * 2 ** (2 + index), (index, later - earlier)

    # No retry storm: the next pause is 0.02 * 2**5 = 0.64 s. A sink retrying at each flush would call
    # PutLogEvents about 25 times in this window.
    calls_before = fault_injector.calls
    window_start = time.monotonic()
    time.sleep(0.4)
    calls_in_window = [t for t in put_times(api) if t >= window_start]
    assert len(calls_in_window) <= 2, len(calls_in_window)
    assert fault_injector.calls - calls_before <= 2
    assert sink.stats.queued == 5

    faults.off()
    assert wait_stored(logs_client, 5) == messages
    wait_for(lambda: problems.count("delivery_failed") >= 4 and sink.stats.sent == 5, message="sent counted")


# --------------------------------------------------------------------------- lost answers


def test_answer_lost_on_the_last_attempt_is_counted_when_sent_again_later(
    fault_proxy: FaultProxy, logs_client: Any, problems: Problems
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    fault_proxy.set_schedule(["drop_answer"])
    # No retries: the lost answer ends the attempt, and the batch is sent again at a later flush.
    sink = add_sink(fault_proxy.url, on_error=problems, max_retries=0, flush_interval=0.05)
    messages = log_many("lost-last", 5)

    assert sorted(wait_stored(logs_client, 10)) == sorted(messages * 2)
    wait_for(lambda: sink.stats.sent == 5, message="sent counted")
    stats = sink.stats
    assert problems.kinds() == ["delivery_failed"]
    assert (stats.failed, stats.retries, stats.queued) == (1, 0, 0)
    # CloudWatch holds every one of these twice: each possible duplicate is counted.
    assert stats.resent == 5
    assert sink._worker.shipper.maybe_stored == set()


# --------------------------------------------------------------------------- InvalidParameter


def test_invalid_parameter_is_never_resent_unchanged(
    endpoint: str,
    logs_client: Any,
    fault_injector: FaultInjector,
    put_recorder: PutLogEventsRecorder,
    problems: Problems,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    fault_injector.set_schedule(["invalid"])
    sink = add_sink(endpoint, on_error=problems)

    messages = log_many("bisect", 16)
    assert sink.force_flush(5)

    # The refused batch of 16 is split in halves, which CloudWatch accepts.
    assert put_recorder.event_counts == [16, 8, 8]
    assert put_recorder.batches[1] + put_recorder.batches[2] == put_recorder.batches[0]
    assert stored(logs_client) == messages
    stats = sink.stats
    assert (stats.sent, stats.rejected, stats.failed, stats.retries, stats.queued) == (16, 0, 1, 0, 0)


def test_invalid_event_is_isolated_dropped_and_counted(
    endpoint: str,
    logs_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    put_recorder: PutLogEventsRecorder,
    problems: Problems,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    rejecter = MarkerRejecter("POISON")
    attach_to_new_logs_clients(monkeypatch, rejecter.attach)
    sink = add_sink(endpoint, on_error=problems)

    messages = [f"good-{index}" for index in range(16)]
    messages[5] = "POISON-5"
    for message in messages:
        logger.info(message)
    assert sink.force_flush(5)

    expected = [message for message in messages if message != "POISON-5"]
    assert stored(logs_client) == expected
    stats = sink.stats
    assert (stats.rejected, stats.sent, stats.queued, stats.dropped) == (1, 15, 0, 0)
    [rejected] = problems.of("rejected")
    assert rejected.count == 1
    assert "InvalidParameterException" in rejected.message
    # Bisection: the refused batches halve each time (16, 8, 4, 2, 1), the first call is the only one
    # with all 16 records, and no batch is ever sent twice.
    assert rejecter.rejected_sizes == [16, 8, 4, 2, 1]
    assert put_recorder.event_counts[0] == 16
    assert all(count < 16 for count in put_recorder.event_counts[1:])
    sent_batches = [tuple(event["message"] for event in batch) for batch in put_recorder.batches]
    assert len(sent_batches) == len(set(sent_batches))
    assert stats.failed == 5


# --------------------------------------------------------------------------- ResourceNotFound


def test_missing_group_and_stream_are_created_with_the_group_options(
    endpoint: str, logs_client: Any, api: ApiCallRecorder, problems: Problems
) -> None:
    sink = add_sink(
        endpoint,
        on_error=problems,
        retention_days=7,
        tags={"team": "core", "env": "test"},
        log_group_class="INFREQUENT_ACCESS",
        kms_key_id=KMS_KEY,
    )
    messages = log_many("created", 10)
    assert sink.force_flush(5)

    assert stored(logs_client) == messages
    assert api.operations == [
        "PutLogEvents",  # ResourceNotFound
        "CreateLogStream",  # ResourceNotFound: the group is missing too
        "CreateLogGroup",
        "PutRetentionPolicy",
        "CreateLogStream",
        "PutLogEvents",
    ]
    [create_group] = api.params("CreateLogGroup")
    assert create_group == {
        "logGroupName": GROUP,
        "kmsKeyId": KMS_KEY,
        "tags": {"team": "core", "env": "test"},
        "logGroupClass": "INFREQUENT_ACCESS",
    }
    [group] = logs_client.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    assert group["retentionInDays"] == 7
    assert group["kmsKeyId"] == KMS_KEY
    assert logs_client.list_tags_log_group(logGroupName=GROUP)["tags"] == {"team": "core", "env": "test"}
    assert sink.stats.sent == 10
    assert "create_failed" not in problems.kinds()


def test_existing_group_gets_only_the_stream(
    endpoint: str, logs_client: Any, api: ApiCallRecorder, problems: Problems
) -> None:
    logs_client.create_log_group(logGroupName=GROUP)
    sink = add_sink(endpoint, on_error=problems, retention_days=7, tags={"team": "core"})
    messages = log_many("stream-only", 10)
    assert sink.force_flush(5)

    assert stored(logs_client) == messages
    assert api.operations == ["PutLogEvents", "CreateLogStream", "PutLogEvents"]
    # Someone else's group: its settings are not changed.
    [group] = logs_client.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    assert "retentionInDays" not in group
    assert logs_client.list_tags_log_group(logGroupName=GROUP)["tags"] == {}
    assert problems.kinds() == []


def test_stream_deleted_while_running_is_recreated(
    endpoint: str, logs_client: Any, api: ApiCallRecorder, problems: Problems
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    sink = add_sink(endpoint, on_error=problems)
    log_many("first", 5)
    assert sink.force_flush(5)
    logs_client.delete_log_stream(logGroupName=GROUP, logStreamName=STREAM)

    second = log_many("second", 5)
    assert sink.force_flush(5)

    assert stored(logs_client) == second
    assert api.operations == ["PutLogEvents", "PutLogEvents", "CreateLogStream", "PutLogEvents"]
    stats = sink.stats
    assert (stats.sent, stats.queued, stats.dropped, stats.rejected) == (10, 0, 0, 0)


def test_throttled_stream_creation_is_retried_with_the_normal_backoff(
    endpoint: str, logs_client: Any, monkeypatch: pytest.MonkeyPatch, problems: Problems
) -> None:
    # CreateLogStream allows 50 calls/s per account: a fleet starting at once meets ThrottlingException.
    logs_client.create_log_group(logGroupName=GROUP)
    throttled: list[int] = []

    def throttle_once(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if throttled:
            return None
        throttled.append(1)
        return fabricated_error_response(request.url, 400, "ThrottlingException", "Rate exceeded")

    attach_to_new_logs_clients(
        monkeypatch,
        lambda client: client.meta.events.register("before-send.cloudwatch-logs.CreateLogStream", throttle_once),
    )
    sink = add_sink(endpoint, on_error=problems, flush_interval=0.05)
    messages = log_many("fleet", 5)

    assert wait_stored(logs_client, 5, timeout=2.0) == messages
    assert throttled == [1]
    assert sink.stats.sent == 5


def test_missing_group_is_not_created_when_told_not_to(
    endpoint: str,
    logs_client: Any,
    api: ApiCallRecorder,
    problems: Problems,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_worker.DEFAULT_TIMINGS, "auth_retry", 0.3)
    sink = add_sink(endpoint, on_error=problems, create_log_group=False, flush_interval=0.05)
    messages = log_many("no-group", 5)

    wait_for(lambda: problems.count("create_failed") >= 1, message="create_failed reported")
    assert not sink.force_flush(0.2)
    [problem, *_] = problems.of("create_failed")
    assert "create_log_group=False" in problem.message
    assert problem.count == 5
    assert sink.stats.queued == 5 and sink.stats.sent == 0 and sink.stats.dropped == 0
    assert logs_client.describe_log_groups()["logGroups"] == []
    assert "CreateLogGroup" not in api.operations
    assert not any(name.startswith("Describe") for name in api.operations)

    # The records were kept: once the group exists they are delivered (the stream is still created).
    logs_client.create_log_group(logGroupName=GROUP)
    assert wait_stored(logs_client, 5) == messages
    assert "CreateLogGroup" not in api.operations
    assert api.count("CreateLogStream") >= 1


# --------------------------------------------------------------------------- reporting


def test_problems_go_to_stderr_rate_limited_and_never_through_loguru_or_logging(
    endpoint: str,
    logs_client: Any,
    fault_injector: FaultInjector,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    no_jitter: None,
) -> None:
    caplog.set_level(logging.DEBUG)  # every record of every standard logger
    seen_by_loguru: list[str] = []
    logger.add(lambda message: seen_by_loguru.append(str(message)), level=0, format="{name} {message}")
    create_group_and_stream(logs_client, GROUP, STREAM)
    faults = Switch("throttle")
    fault_injector.set_schedule(faults)
    sink = add_sink(endpoint, max_retries=2, retry_delay=0.001, flush_interval=0.02)

    messages = log_many("noisy", 5)
    # Many throttles: at least 5 failed rounds, each with 3 "throttled" reports and a "delivery_failed".
    wait_for(lambda: fault_injector.calls >= 15, message="15 throttled calls")
    faults.off()
    assert wait_stored(logs_client, 5) == messages
    wait_for(lambda: sink.stats.sent == 5, message="sent counted")

    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("loguru-cloudwatch: ")]
    # One line per kind in the 30 s window, however many reports.
    assert len([line for line in lines if "will retry" in line]) == 1, lines
    assert len([line for line in lines if re.search(r"\d+ attempts failed", line)]) == 1, lines
    assert len(lines) == 2, lines
    assert "ThrottlingException" in lines[0]

    problem_texts = [line[len("loguru-cloudwatch: ") :] for line in lines]
    for record in caplog.records:
        assert not record.name.startswith("loguru_cloudwatch"), record
        text = record.getMessage()
        assert not any(problem in text for problem in problem_texts), text
        assert "loguru-cloudwatch: " not in text
    assert len(seen_by_loguru) == 5  # the application's own records, nothing else
    assert all(" noisy-" in line for line in seen_by_loguru)


def test_botocore_makes_one_http_attempt_per_sink_attempt(
    fault_proxy: FaultProxy,
    logs_client: Any,
    put_recorder: PutLogEventsRecorder,
    problems: Problems,
) -> None:
    create_group_and_stream(logs_client, GROUP, STREAM)
    # 503 and throttling are retryable for botocore's standard mode: with its retries on, they would
    # be absorbed inside one sink attempt.
    fault_proxy.set_schedule(["503", "throttle", "503"])
    sink = add_sink(fault_proxy.url, on_error=problems, max_retries=5)
    messages = log_many("single", 3)
    assert sink.force_flush(5)

    assert stored(logs_client) == messages
    stats = sink.stats
    assert len(fault_proxy.calls) == 4 == stats.failed + stats.batches
    assert len(put_recorder.attempts) == len(put_recorder.calls) == 4
    assert stats.retries == 3
    assert problems.kinds() == ["send_failed", "throttled", "send_failed"]
