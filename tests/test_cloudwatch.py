"""One attempt to deliver (``_cloudwatch``), against moto: what each CloudWatch answer makes the shipper do.

A lost answer (the events may be stored) is counted when they are sent again; an InvalidParameterException
halves the batch until the offending events are alone, rejected and counted, and nothing is resent
unchanged; a partial success (``rejectedLogEventsInfo``) counts the refused events and resends nothing; a
missing group or stream is created (with the group's options, or not at all when told not to) and the
batch sent again; botocore makes a single HTTP attempt per call. Error answers are injected with the
in-process ``fault_injector`` (botocore before-send hook) or, for network-level faults, the
``fault_proxy`` in front of moto. When the next attempt is made is the worker's (``test_worker.py``).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._retry import Timings
from tests.support.aws import create_group_and_stream
from tests.support.faults import FaultInjector, fabricated_error_response
from tests.support.problems import Problems
from tests.support.proxy import FaultProxy
from tests.support.recorders import (
    ApiCallRecorder,
    PutLogEventsRecorder,
    attach_to_new_logs_clients,
    decode_body,
)
from tests.support.sinks import FLUSH_DRIVEN_PACING, TextStream, log_many
from tests.support.waiting import wait_for

GROUP = "shipper-group"
STREAM = "shipper-stream"
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


SINK_DEFAULTS: dict[str, Any] = dict(FLUSH_DRIVEN_PACING)  # a test may add "_timings"
DESTINATION = TextStream(GROUP, STREAM, SINK_DEFAULTS)
add_sink, stored, wait_stored = DESTINATION.add_sink, DESTINATION.stored, DESTINATION.wait_stored


# --------------------------------------------------------------------------- a lost answer


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


# --------------------------------------------------------------------------- InvalidParameter: bisection


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


# --------------------------------------------------------------------------- rejectedLogEventsInfo: a partial success


class FakeLogsClient:
    """Answers PutLogEvents with scripted rejectedLogEventsInfo; records every call."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self._lock = threading.Lock()
        self._answers = list(answers)
        self.calls: list[list[dict[str, Any]]] = []

    def put_log_events(self, **params: Any) -> dict[str, Any]:
        with self._lock:
            self.calls.append(list(params["logEvents"]))
            answer = self._answers.pop(0) if self._answers else {}
        return {"nextSequenceToken": "0", **answer}


def test_rejected_log_events_info_is_counted_exactly_and_nothing_is_resent() -> None:
    client = FakeLogsClient(
        [
            {"rejectedLogEventsInfo": {"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 8}},
            {"rejectedLogEventsInfo": {"expiredLogEventEndIndex": 1}},
            {},
        ]
    )
    problems = Problems()
    sink = CloudWatchSink(
        GROUP, STREAM, client=client, serialize=False, flush_interval=60.0, retry_delay=0.01,
        shutdown_timeout=3.0, on_error=problems,
    )  # fmt: skip
    logger.add(sink, format="{message}")

    for i in range(10):
        logger.info(f"a{i}")
    assert sink.force_flush(timeout=5) is True
    stats = sink.stats
    assert (stats.sent, stats.rejected, stats.batches) == (6, 4, 1)

    for i in range(5):
        logger.info(f"b{i}")
    assert sink.force_flush(timeout=5) is True
    for i in range(3):
        logger.info(f"c{i}")
    assert sink.force_flush(timeout=5) is True

    stats = sink.stats
    assert (stats.sent, stats.rejected, stats.batches, stats.retries) == (6 + 4 + 3, 4 + 1, 3, 0)
    # A partial success is never resent: one call per flush, every record sent exactly once.
    assert [len(call) for call in client.calls] == [10, 5, 3]
    sent = [event["message"] for call in client.calls for event in call]
    assert len(sent) == len(set(sent)) == 18
    assert sum(p.count for p in problems.of_kind("rejected")) == 5


# --------------------------------------------------------------------------- ResourceNotFound: creation


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
    # The first put's ResourceNotFound, answered by creating the stream, is no failure.
    assert (sink.stats.failed, sink.stats.sent, sink.stats.batches) == (0, 10, 1)


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
    monkeypatch.setitem(SINK_DEFAULTS, "_timings", Timings(auth_retry=0.3))
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

    # The put that ended without delivery, because the group may not be created, is a failure (later
    # attempts create first, and make no put until that works).
    wait_for(lambda: sink.stats.failed == api.count("PutLogEvents") == 1, message="one failed put counted")

    # The records were kept: once the group exists they are delivered (the stream is still created).
    logs_client.create_log_group(logGroupName=GROUP)
    assert wait_stored(logs_client, 5) == messages
    assert "CreateLogGroup" not in api.operations
    assert api.count("CreateLogStream") >= 1


# --------------------------------------------------------------------------- one HTTP attempt per attempt


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
