"""The encoders (``_encoder``), without I/O: what each makes of a real loguru message.

What arrives in CloudWatch for every kind of record is tested end to end in ``test_document.py``.
"""

from __future__ import annotations

import datetime
from typing import Any

import orjson
import pytest
from loguru import logger

from loguru_cloudwatch._encoder import JsonEncoder, TextEncoder, encoder_for
from loguru_cloudwatch._limits import MAX_EVENT_BYTES

TZ = datetime.timezone(datetime.timedelta(hours=-3, minutes=-30))


def message_at(moment: datetime.datetime, text: str = "hello", fmt: str = "{message}", **extra: Any) -> Any:
    """The message loguru hands a sink (a str with ``.record``), logged at ``moment``."""
    captured: list[Any] = []
    handler = logger.add(captured.append, format=fmt)
    try:
        logger.patch(lambda record: record.update(time=moment)).bind(**extra).info(text)
    finally:
        logger.remove(handler)
    return captured[0]


def epoch_ms(moment: datetime.datetime) -> int:
    return int(moment.replace(microsecond=0).timestamp()) * 1000 + moment.microsecond // 1000


def test_encoder_for_picks_the_format_of_the_options() -> None:
    assert isinstance(encoder_for(True, None), JsonEncoder)
    assert isinstance(encoder_for(False, None), TextEncoder)


@pytest.mark.parametrize("encoder", [JsonEncoder(None), TextEncoder()], ids=["json", "text"])
def test_timestamps_follow_each_record_across_seconds_days_and_offsets(encoder: Any) -> None:
    # The per-second cache must never hand one record another second's (or offset's) milliseconds.
    base = datetime.datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=datetime.timezone.utc)
    moments = [
        base,
        base + datetime.timedelta(microseconds=1),  # the next day
        base + datetime.timedelta(microseconds=1001),
        base.astimezone(TZ),  # the same instant in another offset
        base.replace(tzinfo=None),  # naive: local time
        base - datetime.timedelta(days=1),  # the same second of the day, another day
        base,
    ]
    for moment in moments:
        timestamp, _, _ = encoder.encode(message_at(moment))
        assert timestamp == epoch_ms(moment), moment


def test_json_document_time_is_the_record_s_own_in_iso_format() -> None:
    moment = datetime.datetime(2026, 12, 2, 3, 4, 5, 678_901, tzinfo=TZ)
    timestamp, payload, size = JsonEncoder(None).encode(message_at(moment, "hi", request_id=7))
    document = orjson.loads(payload)
    assert document["time"] == moment.isoformat() and document["message"] == "hi" and document["request_id"] == 7
    assert size == len(payload.encode()) and timestamp == epoch_ms(moment)


def test_json_extra_keys_keeps_only_those() -> None:
    moment = datetime.datetime.now(datetime.timezone.utc)
    _, payload, _ = JsonEncoder(("a",)).encode(message_at(moment, a=1, b=2))
    document = orjson.loads(payload)
    assert document["a"] == 1 and "b" not in document


def test_text_is_the_formatted_message_without_its_newline() -> None:
    moment = datetime.datetime.now(datetime.timezone.utc)
    encoder = TextEncoder()
    _, payload, size = encoder.encode(message_at(moment, "ü-text", fmt="{level}|{message}"))
    assert payload == "INFO|ü-text" and size == len("INFO|ü-text".encode())
    _, empty, _ = encoder.encode(message_at(moment, "", fmt="{message}"))
    assert empty == "(empty message)"  # CloudWatch refuses events of 0 characters
    assert encoder.truncated == 0


@pytest.mark.parametrize("encoder", [JsonEncoder(None), TextEncoder()], ids=["json", "text"])
def test_an_oversized_record_is_cut_to_fit_and_counted(encoder: Any) -> None:
    moment = datetime.datetime.now(datetime.timezone.utc)
    _, payload, size = encoder.encode(message_at(moment, "x" * (MAX_EVENT_BYTES + 10)))
    assert size == len(payload.encode()) <= MAX_EVENT_BYTES
    assert "truncated by loguru-cloudwatch" in payload
    assert encoder.truncated == 1
