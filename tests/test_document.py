"""What reaches CloudWatch for each record: the JSON document, text mode, encoding fallbacks, truncation."""

from __future__ import annotations

import datetime
import decimal
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink, SinkProblem
from loguru_cloudwatch._document import EMPTY_PLACEHOLDER, build_document, dumps, truncate_document
from tests.support.aws import read_events, read_json, read_messages
from tests.support.hostile import Falsy, Typeless, Unprintable

GROUP = "doc-group"
STREAM = "doc-stream"
MAX_EVENT_BYTES = 1_048_550  # 1 MiB minus CloudWatch's 26 bytes of per-event overhead
FIELDS = {"time", "level", "message", "logger", "function", "line", "file", "process", "thread"}
MARKER_RE = re.compile(r" …\[truncated by loguru-cloudwatch: (\d+) bytes removed\]$")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
# An offset that is nobody's local zone, so that "with offset" is visible.
TZ = datetime.timezone(datetime.timedelta(hours=5, minutes=30))


def known_time(minutes_ago: float = 5, microsecond: int = 123_456) -> datetime.datetime:
    """A recent time (CloudWatch refuses events older than 14 days) with a sub-millisecond part."""
    now = datetime.datetime.now(TZ) - datetime.timedelta(minutes=minutes_ago)
    return now.replace(microsecond=microsecond)


def epoch_ms(moment: datetime.datetime) -> int:
    return (moment - EPOCH) // datetime.timedelta(milliseconds=1)


def at(moment: datetime.datetime) -> Any:
    """The logger, with every record's time set to ``moment``."""
    return logger.patch(lambda record: record.update(time=moment))


@pytest.fixture
def problems() -> list[SinkProblem]:
    return []


@pytest.fixture
def make_sink(endpoint: str, problems: list[SinkProblem]) -> Iterator[Callable[..., CloudWatchSink]]:
    """Sinks on moto with fast pacing, stopped at the end of the test."""
    sinks: list[CloudWatchSink] = []

    def factory(**options: Any) -> CloudWatchSink:
        settings: dict[str, Any] = {
            "endpoint_url": endpoint,
            "flush_interval": 0.05,
            "retry_delay": 0.001,
            "shutdown_timeout": 3,
            "on_error": problems.append,
        }
        settings.update(options)
        sink = CloudWatchSink(GROUP, STREAM, **settings)
        sinks.append(sink)
        return sink

    yield factory
    for sink in sinks:
        sink.stop()


def delivered_json(sink: CloudWatchSink, client: Any) -> list[dict[str, Any]]:
    assert sink.force_flush(10), sink.stats
    return read_json(client, GROUP, STREAM)


def delivered_text(sink: CloudWatchSink, client: Any) -> list[str]:
    assert sink.force_flush(10), sink.stats
    return read_messages(client, GROUP, STREAM)


def split_marker(text: str) -> tuple[str, int]:
    """(kept text, bytes removed) of a truncated message; fails when the marker is missing."""
    match = MARKER_RE.search(text)
    assert match is not None, f"no truncation marker at the end of {text[-120:]!r}"
    return text[: match.start()], int(match.group(1))


def captured_record(**extra: Any) -> dict[str, Any]:
    """A real loguru record (as a handler sees it) with ``extra`` merged in."""
    records: list[Any] = []
    handler = logger.add(lambda message: records.append(message.record), format="{message}")
    try:
        logger.patch(lambda record: record["extra"].update(extra)).info("captured")
    finally:
        logger.remove(handler)
    return dict(records[0])


# --------------------------------------------------------------------------- the fields


def emit_here(lg: Any, text: str) -> int:
    """Log ``text`` at WARNING and return the line number of the call."""
    lg.warning(text)
    return emit_here.__code__.co_firstlineno + 2


def test_every_field_has_the_record_value(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    records: list[Any] = []
    logger.add(sink, format="{level} | {name}:{line} | {message}")
    logger.add(lambda message: records.append(message.record), format="{message}")
    moment = known_time()

    line = emit_here(at(moment), "hello {}".format("world"))

    (doc,) = delivered_json(sink, logs_client)
    record = records[0]
    assert set(doc) == FIELDS  # no exception field without an exception, no extras without extras
    parsed = datetime.datetime.fromisoformat(doc["time"])
    assert parsed == moment
    assert parsed.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    assert parsed.microsecond == 123_456
    assert doc["level"] == "WARNING"
    assert doc["message"] == "hello world"  # the record's message, not the formatted line
    assert doc["logger"] == __name__ == record["name"]
    assert doc["function"] == "emit_here"
    assert doc["line"] == line == record["line"]
    assert doc["file"] == os.path.basename(__file__) == record["file"].name
    assert doc["process"] == os.getpid()
    assert doc["thread"] == threading.get_ident() == record["thread"].id
    for name in ("line", "process", "thread"):
        assert type(doc[name]) is int, name
    for name in ("time", "level", "message", "logger", "function", "file"):
        assert type(doc[name]) is str, name

    (event,) = read_events(logs_client, GROUP, STREAM)
    assert event["timestamp"] == epoch_ms(moment)


def test_event_timestamp_is_each_records_own_time(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    # Written out of order, and one with microseconds that a float rounding could push past a millisecond.
    moments = [known_time(3, 999_999), known_time(9, 1_000), known_time(6, 0)]
    for index, moment in enumerate(moments):
        at(moment).info("record {}", index)

    assert sink.force_flush(10), sink.stats
    events = read_events(logs_client, GROUP, STREAM)
    by_message = {json.loads(e["message"])["message"]: e["timestamp"] for e in events}
    assert by_message == {f"record {i}": epoch_ms(m) for i, m in enumerate(moments)}
    # CloudWatch needs them ascending; the sink sorted them.
    assert [e["timestamp"] for e in events] == sorted(epoch_ms(m) for m in moments)


# --------------------------------------------------------------------------- extra selection


def test_all_extras_are_top_level_fields_by_default(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    with logger.contextualize(request_id="r-1"):
        logger.bind(user="ann", count=3, nested={"a": [1, 2]}, flag=None).info("with extras")

    (doc,) = delivered_json(sink, logs_client)
    assert set(doc) == FIELDS | {"request_id", "user", "count", "nested", "flag"}
    assert doc["request_id"] == "r-1"
    assert doc["user"] == "ann"
    assert doc["count"] == 3
    assert doc["nested"] == {"a": [1, 2]}
    assert doc["flag"] is None
    assert doc["message"] == "with extras"


def test_extra_keys_selects_only_those(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink(extra_keys=["user", "missing", "count"])
    logger.add(sink)
    logger.bind(user="ann", count=0, secret="do-not-ship").info("selected")
    logger.info("no extras at all")

    first, second = delivered_json(sink, logs_client)
    assert set(first) == FIELDS | {"user", "count"}  # "missing" is omitted, not null
    assert first["user"] == "ann"
    assert first["count"] == 0
    assert "do-not-ship" not in json.dumps(first)
    assert set(second) == FIELDS


def test_empty_extra_keys_selects_nothing(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink(extra_keys=())
    logger.add(sink)
    logger.bind(user="ann").info("none selected")

    (doc,) = delivered_json(sink, logs_client)
    assert set(doc) == FIELDS


# --------------------------------------------------------------------------- collision rule


def test_colliding_extras_are_renamed_not_lost(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    logger.bind(message="extra msg", level="extra level", time="extra time", line="extra line").error("real")

    (doc,) = delivered_json(sink, logs_client)
    assert doc["message"] == "real"
    assert doc["level"] == "ERROR"
    datetime.datetime.fromisoformat(doc["time"])
    assert isinstance(doc["line"], int)
    assert doc["extra_message"] == "extra msg"
    assert doc["extra_level"] == "extra level"
    assert doc["extra_time"] == "extra time"
    assert doc["extra_line"] == "extra line"


def test_chained_collision_keeps_every_value(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    logger.bind(message="first", extra_message="second").info("real")
    logger.bind(extra_message="second", message="first").info("real again")

    one, two = delivered_json(sink, logs_client)
    for doc, text in ((one, "real"), (two, "real again")):
        assert doc["message"] == text
        assert {doc["extra_message"], doc["extra_extra_message"]} == {"first", "second"}
        assert set(doc) == FIELDS | {"extra_message", "extra_extra_message"}


def test_extra_named_exception_does_not_replace_the_exception(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    try:
        raise KeyError("k")
    except KeyError:
        logger.bind(exception="mine").exception("failed")

    (doc,) = delivered_json(sink, logs_client)
    assert doc["exception"]["type"] == "KeyError"
    assert doc["extra_exception"] == "mine"


def test_collision_with_selected_extra_keys() -> None:
    record = captured_record(message="shadow", user="ann")
    doc = build_document(record, ("message",), "captured\n")
    assert doc["message"] == "captured"
    assert doc["extra_message"] == "shadow"
    assert "user" not in doc


def test_non_str_keys_colliding_with_str_keys() -> None:
    record = captured_record(**{"1": "str key"})
    record["extra"] = {"1": "str key", 1: "int key", None: "none key", (1, 2): "tuple key"}
    doc = orjson.loads(dumps(build_document(record, None, "captured\n")))
    assert doc["1"] == "str key"
    assert doc["extra_1"] == "int key"
    assert doc["None"] == "none key"
    assert doc["(1, 2)"] == "tuple key"


# --------------------------------------------------------------------------- exceptions


def fail() -> None:
    1 / 0  # noqa: B018


def check_exception_field(doc: dict[str, Any]) -> None:
    exception = doc["exception"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["value"] == "division by zero"
    traceback_text = exception["traceback"]
    assert traceback_text.startswith("Traceback (most recent call last)")
    assert "in fail" in traceback_text  # the frame that raised
    assert "ZeroDivisionError: division by zero" in traceback_text


def test_exception_fields(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    try:
        fail()
    except ZeroDivisionError:
        logger.exception("it failed")

    (doc,) = delivered_json(sink, logs_client)
    assert doc["message"] == "it failed"
    assert doc["level"] == "ERROR"
    check_exception_field(doc)


def test_exception_fields_with_enqueue(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink, enqueue=True)
    try:
        fail()
    except ZeroDivisionError:
        logger.exception("it failed in the queue")
    logger.info("after")
    logger.complete()  # waits for loguru's queue; the sink's complete() is dropped silently

    first, second = delivered_json(sink, logs_client)
    assert first["message"] == "it failed in the queue"
    check_exception_field(first)  # the traceback object did not survive pickling; its text did
    assert second["message"] == "after"
    assert "exception" not in second


def fail_with(secret_value: str) -> None:
    secret_value / 0  # type: ignore[operator]


SECRET = "s3cr3t-in-a-local"


def log_a_failure_through(sink: CloudWatchSink, **options: Any) -> None:
    """One failing call logged with loguru's defaults (diagnose=True) through ``sink``."""
    handler = logger.add(sink, **options)
    try:
        fail_with(SECRET)
    except TypeError:
        logger.exception("it failed")
    logger.remove(handler)  # with enqueue=True, waits for loguru's queue


@pytest.mark.parametrize("serialize", [True, False], ids=["json", "text"])
def test_a_traceback_holds_no_variable_value_with_or_without_enqueue(
    make_sink: Any, logs_client: Any, serialize: bool
) -> None:
    shipped = []
    for enqueue in (False, True):
        sink = make_sink(serialize=serialize)
        log_a_failure_through(sink, enqueue=enqueue, format="{message}")
        (text,) = delivered_text(sink, logs_client)
        logs_client.delete_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        sink.stop()
        traceback_text = json.loads(text)["exception"]["traceback"] if serialize else text
        assert "in fail_with" in traceback_text and "secret_value / 0" in traceback_text
        assert SECRET not in traceback_text and "-> " not in traceback_text  # loguru's arrow for this sink
        shipped.append(text if not serialize else json.loads(text)["exception"])
    assert shipped[0] == shipped[1]  # the document does not depend on enqueue


@pytest.mark.parametrize("enqueue", [False, True], ids=["direct", "enqueue"])
def test_traceback_values_keep_loguru_s_values_when_asked_for(make_sink: Any, logs_client: Any, enqueue: bool) -> None:
    sink = make_sink(traceback_values=True)
    log_a_failure_through(sink, enqueue=enqueue)
    (doc,) = delivered_json(sink, logs_client)
    assert f"-> '{SECRET}'" in doc["exception"]["traceback"]  # loguru's arrow for a sink without encoding


# --------------------------------------------------------------------------- values JSON cannot encode


def test_unencodable_extras_are_converted(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    circular_dict: dict[str, Any] = {"k": 1}
    circular_dict["self"] = circular_dict
    circular_list: list[Any] = [1]
    circular_list.append(circular_list)
    deep: list[Any] = []
    cursor = deep
    for _ in range(1000):
        cursor.append([])
        cursor = cursor[0]
    plain_object = object()
    aware = datetime.datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=TZ)
    values: dict[str, Any] = {
        "obj": plain_object,
        "raw": b"\xff\x00ab",
        "numbers": {3, 1, 2},
        "frozen": frozenset({"x"}),
        "when": aware,
        "price": decimal.Decimal("1.10"),
        "nan": math.nan,
        "inf": math.inf,
        "huge": 10**30,
        "negative_huge": -(2**63) - 1,
        "u64": 2**64 - 1,
        "circular_dict": circular_dict,
        "circular_list": circular_list,
        "deep": deep,
        "unprintable": Unprintable(),
        "unprintable_key": {Unprintable(): "v"},
        "nested_keys": {1: "a", (2, 3): "b"},
        "mixed": [b"\x01", {4}, decimal.Decimal("2")],
    }

    def log() -> None:
        logger.bind(**values).info("zoo")

    thread = threading.Thread(target=log, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "logging a circular structure hung"

    (doc,) = delivered_json(sink, logs_client)
    assert doc["message"] == "zoo"
    assert doc["obj"] == str(plain_object)
    assert doc["raw"] == "\\xff\x00ab"
    assert sorted(doc["numbers"]) == [1, 2, 3]
    assert doc["frozen"] == ["x"]
    assert datetime.datetime.fromisoformat(doc["when"]) == aware
    assert doc["price"] == "1.10"
    assert doc["nan"] is None
    assert doc["inf"] is None
    assert doc["huge"] == str(10**30)
    assert doc["negative_huge"] == str(-(2**63) - 1)
    assert doc["u64"] == 2**64 - 1
    assert doc["circular_dict"]["k"] == 1
    assert doc["circular_dict"]["self"] == "<circular reference>"
    assert doc["circular_list"] == [1, "<circular reference>"]
    assert "<nested too deep>" in json.dumps(doc["deep"])
    assert isinstance(doc["unprintable"], str)
    assert "Unprintable" in doc["unprintable"]
    assert list(doc["unprintable_key"].values()) == ["v"]
    assert doc["nested_keys"] == {"1": "a", "(2, 3)": "b"}
    assert doc["mixed"][0] == "\x01"
    assert doc["mixed"][1] == [4]
    assert doc["mixed"][2] == "2"
    assert sink.stats.rejected == 0
    assert sink.stats.truncated == 0


def test_value_whose_type_checks_raise_still_arrives(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    logger.bind(weird=Typeless(), fine="kept").info("typeless")

    (doc,) = delivered_json(sink, logs_client)
    assert doc["message"] == "typeless"
    assert doc["fine"] == "kept"
    assert isinstance(doc["weird"], str)
    assert "Typeless" in doc["weird"]
    assert sink.stats.rejected == 0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(lambda: {"a": {"b": None}}, id="circular-dict"),
        pytest.param(lambda: [[None]], id="circular-list"),
    ],
)
def test_dumps_cuts_cycles_without_hanging(value: Callable[[], Any]) -> None:
    structure = value()
    if isinstance(structure, dict):
        structure["a"]["b"] = structure
    else:
        structure[0][0] = structure
    result: list[bytes] = []
    thread = threading.Thread(target=lambda: result.append(dumps({"v": structure})), daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "dumps hung on a cycle"
    assert b"<circular reference>" in result[0]
    orjson.loads(result[0])


# --------------------------------------------------------------------------- unicode


UNICODE_TEXT = "emoji 😀 👩\u200d👩\u200d👧 rtl שלום مرحبا \u202eabc\u202c nul[\x00] e\u0301 bom\ufeff tab\t nl\n end"


def test_unicode_round_trips_exactly_in_json(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    logger.bind(rtl="עברית ועוד", nul="a\x00b", **{"key 😀": "v 😀"}).info(UNICODE_TEXT)

    (doc,) = delivered_json(sink, logs_client)
    assert doc["message"] == UNICODE_TEXT
    assert doc["rtl"] == "עברית ועוד"
    assert doc["nul"] == "a\x00b"
    assert doc["key 😀"] == "v 😀"


def test_unicode_round_trips_exactly_in_text_mode(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink(serialize=False)
    logger.add(sink, format="{message}")
    logger.info(UNICODE_TEXT)

    assert delivered_text(sink, logs_client) == [UNICODE_TEXT]


def test_lone_surrogates_are_escaped_not_fatal(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    logger.bind(bad="x\udfffy", good="ok 😀", **{"k\ud801": 1}).info("bad \ud800 here")
    logger.info("next")

    first, second = delivered_json(sink, logs_client)
    assert first["message"] == "bad \\ud800 here"
    assert first["bad"] == "x\\udfffy"
    assert first["good"] == "ok 😀"
    assert first["k\\ud801"] == 1
    assert first["level"] == "INFO"
    assert second["message"] == "next"
    assert sink.stats.rejected == 0


def test_lone_surrogates_in_text_mode(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink(serialize=False)
    logger.add(sink, format="{message}")
    logger.info("bad \ud800 here")

    assert delivered_text(sink, logs_client) == ["bad \\ud800 here"]


# --------------------------------------------------------------------------- text mode


def test_text_mode_uses_the_handler_format(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink(serialize=False)
    logger.add(sink, format="{level} | {extra[user]} | {message}")
    logger.bind(user="ann").warning("careful")
    try:
        fail()
    except ZeroDivisionError:
        logger.bind(user="bob").exception("broken")

    plain, with_traceback = delivered_text(sink, logs_client)
    assert plain == "WARNING | ann | careful"  # trailing newline removed
    assert with_traceback.startswith("ERROR | bob | broken\nTraceback (most recent call last)")
    assert with_traceback.rstrip("\n").endswith("ZeroDivisionError: division by zero")
    assert not with_traceback.endswith("\n")


def test_text_mode_empty_message_sends_placeholder(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink(serialize=False)
    logger.add(sink, format="{message}")
    logger.info("")
    logger.info("after")

    assert delivered_text(sink, logs_client) == [EMPTY_PLACEHOLDER, "after"]


def test_json_mode_empty_message_is_kept(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    logger.info("")

    (doc,) = delivered_json(sink, logs_client)
    assert doc["message"] == ""


# --------------------------------------------------------------------------- oversized events


BIG_UNIT = "é😀a"  # 2 + 4 + 1 bytes: a cut inside a character would show


def check_cut(message: str, original: str) -> str:
    kept, removed = split_marker(message)
    assert original.startswith(kept)
    assert len(kept.encode("utf-8")) + removed == len(original.encode("utf-8"))
    return kept


def test_oversized_json_message_is_cut_on_a_character_boundary(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    big = BIG_UNIT * 750_000  # 5.25 MB
    logger.info("before")
    logger.bind(user="ann").info(big)
    logger.info("after")

    assert sink.force_flush(20), sink.stats
    raw = read_messages(logs_client, GROUP, STREAM)
    assert len(raw) == 3
    assert len(raw[1].encode("utf-8")) <= MAX_EVENT_BYTES
    before, cut, after = (json.loads(m) for m in raw)
    assert before["message"] == "before"
    assert after["message"] == "after"
    kept = check_cut(cut["message"], big)
    assert len(kept.encode("utf-8")) > 1_000_000  # cut to fit, not emptied
    assert cut["user"] == "ann"
    assert cut["level"] == "INFO"
    assert sink.stats.truncated == 1


def test_oversized_text_message_is_cut_on_a_character_boundary(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink(serialize=False)
    logger.add(sink, format="{message}")
    big = "😀é" * 900_000  # 5.4 MB
    logger.info("before")
    logger.info(big)
    logger.info("after")

    messages = delivered_text(sink, logs_client)
    assert len(messages) == 3
    assert messages[0] == "before"
    assert messages[2] == "after"
    assert len(messages[1].encode("utf-8")) <= MAX_EVENT_BYTES
    kept = check_cut(messages[1], big)
    assert len(kept.encode("utf-8")) > 1_000_000
    assert sink.stats.truncated == 1


def test_text_event_exactly_at_the_limit_is_not_cut(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink(serialize=False)
    logger.add(sink, format="{message}")
    exact = "é" * (MAX_EVENT_BYTES // 2)
    assert len(exact.encode("utf-8")) == MAX_EVENT_BYTES
    logger.info(exact)
    assert sink.stats.truncated == 0
    logger.info(exact + "a")
    assert sink.stats.truncated == 1

    first, second = delivered_text(sink, logs_client)
    assert first == exact
    assert len(second.encode("utf-8")) <= MAX_EVENT_BYTES
    check_cut(second, exact + "a")


def emit_fixed(lg: Any, text: str) -> None:
    """Same call site for every record, so that documents differ only by their message."""
    lg.info(text)


def test_json_event_exactly_at_the_limit_is_not_cut(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    fixed = at(known_time())
    emit_fixed(fixed, "")
    (probe,) = delivered_text(sink, logs_client)
    room = MAX_EVENT_BYTES - len(probe.encode("utf-8"))

    emit_fixed(fixed, "a" * room)
    assert sink.stats.truncated == 0
    emit_fixed(fixed, "a" * (room + 1))
    assert sink.stats.truncated == 1

    _, exact, over = delivered_text(sink, logs_client)
    assert len(exact.encode("utf-8")) == MAX_EVENT_BYTES
    assert json.loads(exact)["message"] == "a" * room
    assert len(over.encode("utf-8")) <= MAX_EVENT_BYTES
    check_cut(json.loads(over)["message"], "a" * (room + 1))


def test_huge_extra_value_still_fits_and_keeps_the_message(make_sink: Any, logs_client: Any) -> None:
    sink = make_sink()
    logger.add(sink)
    blob = "é" * 2_621_440  # 5 MiB
    rows = [{"i": i, "text": "x" * 100} for i in range(50_000)]  # about 6 MB once encoded
    logger.info("before")
    logger.bind(blob=blob, user="ann").info("short message")
    logger.bind(rows=rows).info("many rows")
    logger.info("after")

    assert sink.force_flush(20), sink.stats
    raw = read_messages(logs_client, GROUP, STREAM)
    assert len(raw) == 4
    for message in raw:
        assert len(message.encode("utf-8")) <= MAX_EVENT_BYTES
    before, with_blob, with_rows, after = (json.loads(m) for m in raw)
    assert before["message"] == "before"
    assert after["message"] == "after"
    assert with_blob["message"] == "short message"
    assert with_blob["user"] == "ann"
    assert "truncated by loguru-cloudwatch" in with_blob["blob"]
    assert with_rows["message"] == "many rows"
    assert "truncated by loguru-cloudwatch" in with_rows["rows"]
    assert sink.stats.truncated == 2


def test_escape_heavy_message_keeps_what_fits() -> None:
    # JSON doubles every '"' and '\\': cutting the raw message by the document's excess would empty it.
    record = captured_record()
    record["message"] = '"\\' * 1_000_000
    document = build_document(record, None, "")
    payload = truncate_document(document, dumps(document))
    assert len(payload) <= MAX_EVENT_BYTES
    message = orjson.loads(payload)["message"]
    kept = check_cut(message, record["message"])
    assert len(kept) > 400_000  # about 520,000 fit; at least most of that must be kept


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("a" * 700_000 + '"' * 700_000, id="escapes-at-the-end"),
        pytest.param('"' * 700_000 + "a" * 700_000, id="escapes-at-the-start"),
        pytest.param("\x01" * 400_000, id="six-byte-escapes"),
        pytest.param("é😀" * 400_000, id="multibyte"),
        pytest.param(("x" * 50 + "\n\t\\" + "ü" * 10) * 40_000, id="mixed"),
    ],
)
def test_truncated_document_always_fits_and_keeps_a_prefix(message: str) -> None:
    record = captured_record()
    record["message"] = message
    document = build_document(record, None, "")
    payload = truncate_document(document, dumps(document))
    assert len(payload) <= MAX_EVENT_BYTES
    kept = check_cut(orjson.loads(payload)["message"], message)
    # Most of the room is used: the kept part takes at least half of the event once encoded.
    assert len(orjson.dumps(kept)) > MAX_EVENT_BYTES // 2


def test_big_message_and_big_extra_both_cut() -> None:
    record = captured_record(blob="b" * 3_000_000)
    record["message"] = "m" * 3_000_000
    document = build_document(record, None, "")
    payload = truncate_document(document, dumps(document))
    assert len(payload) <= MAX_EVENT_BYTES
    doc = orjson.loads(payload)
    kept = check_cut(doc["message"], record["message"])
    assert len(kept) > 900_000
    assert "truncated by loguru-cloudwatch" in doc["blob"]
    assert len(doc["blob"]) < 10_000


# --------------------------------------------------------------------------- write() never raises


def test_write_never_raises_even_with_catch_false(
    make_sink: Any, logs_client: Any, problems: list[SinkProblem]
) -> None:
    sink = make_sink()
    logger.add(sink, catch=False)
    breaking = logger.patch(lambda record: record.update(extra=Falsy()))

    breaking.info("extra breaks everything")  # must not raise
    logger.bind(key=Unprintable(), other=Typeless()).info("unprintable")
    sink.write("not a loguru message")  # type: ignore[arg-type]
    sink.write(None)  # type: ignore[arg-type]
    logger.info("after")

    docs = delivered_json(sink, logs_client)
    assert [d["message"] for d in docs] == ["unprintable", "after"]
    # What could not be encoded at all is counted and reported, not silently lost.
    assert sink.stats.rejected == 3
    assert [p.kind for p in problems].count("unencodable") == 3
