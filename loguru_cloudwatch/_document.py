"""The JSON document of one record, and its careful paths: values JSON cannot encode, invalid Unicode,
oversized events (``_encoder`` makes the common case a single ``orjson.dumps`` call on the caller's thread).
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Mapping
from typing import Any

import orjson

from ._limits import MAX_EVENT_BYTES
from ._traceback_text import shipped_traceback

#: Fields of the JSON document that belong to the sink; an ``extra`` key with one of these names is
#: renamed with an ``extra_`` prefix instead of overwriting it.
RESERVED_FIELDS = frozenset(
    {"time", "level", "message", "logger", "function", "line", "file", "process", "thread", "exception"}
)
#: Sent instead of an empty text message (CloudWatch refuses events of 0 characters).
EMPTY_PLACEHOLDER = "(empty message)"
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS
_MAX_DEPTH = 64
#: Rounds of cutting the message of an oversized document (see _cut_message).
_CUT_ATTEMPTS = 6


def truncation_marker(removed_bytes: int) -> str:
    return f" …[truncated by loguru-cloudwatch: {removed_bytes} bytes removed]"


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def json_default(value: object) -> Any:
    """orjson's fallback for types it does not know: containers become lists, the rest text."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return dict(value)
    return _safe_str(value)


def _clean_text(text: str) -> str:
    """Replace lone surrogates, which UTF-8 cannot carry, by their escaped form."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _sanitize(value: object, depth: int, seen: set[int]) -> Any:
    """A JSON-safe copy of ``value``: used only when orjson refused the fast path."""
    try:
        return _sanitize_value(value, depth, seen)
    except Exception:
        # Even isinstance() can raise (a ``__class__`` property that raises): lose the value, not the record.
        return f"<unencodable {type(value).__name__}>"


def _sanitize_value(value: object, depth: int, seen: set[int]) -> Any:
    if isinstance(value, str):
        return _clean_text(value)
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, (dict, list, tuple, set, frozenset, Mapping)):
        marker = id(value)
        if marker in seen:
            return "<circular reference>"
        seen.add(marker)
        try:
            if isinstance(value, Mapping):
                try:
                    items = list(value.items())
                except Exception:
                    return _clean_text(_safe_str(value))
                return {_clean_text(_safe_str(k)): _sanitize(v, depth + 1, seen) for k, v in items}
            return [_sanitize(v, depth + 1, seen) for v in value]
        finally:
            seen.discard(marker)
    try:
        converted = orjson.loads(orjson.dumps(value, default=json_default, option=_JSON_OPTIONS))
    except Exception:
        return _clean_text(_safe_str(value))
    return converted


def dumps(document: dict[str, Any]) -> bytes:
    """Encode a document; never raises (unencodable values become text, cycles are cut)."""
    try:
        return orjson.dumps(document, default=json_default, option=_JSON_OPTIONS)
    except Exception:
        return orjson.dumps(_sanitize(document, 0, set()), default=json_default, option=_JSON_OPTIONS)


def _exception_fields(exception: Any, formatted: str, message: str, keep_values: bool) -> dict[str, Any]:
    etype, value, tb = exception
    type_name = getattr(etype, "__name__", None) or _safe_str(etype)
    # loguru's rendering is in the formatted message whether or not enqueue=True dropped the traceback
    # object: starting from it makes the text the same either way (see _traceback_text).
    text = shipped_traceback(formatted, keep_values, message if isinstance(message, str) else "")
    if not text and tb is not None:  # a format without {exception}
        try:
            text = "".join(traceback.format_exception(etype, value, tb)).rstrip("\n")
        except Exception:
            text = ""
    if not text:
        text = f"{type_name}: {_safe_str(value)}"
    return {"type": type_name, "value": _safe_str(value), "traceback": text}


def record_fields(record: Mapping[str, Any], time_text: str) -> dict[str, Any]:
    """The document's own fields (``RESERVED_FIELDS`` but ``exception``), before any ``extra`` key."""
    return {
        "time": time_text,
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
        "function": record["function"],
        "line": record["line"],
        "file": record["file"].name,
        "process": record["process"].id,
        "thread": record["thread"].id,
    }


def build_document(
    record: Mapping[str, Any],
    extra_keys: tuple[str, ...] | None,
    formatted: str,
    time_text: str | None = None,
    traceback_values: bool = False,
) -> dict[str, Any]:
    """The JSON document for one record (see the README for the field list and the collision rule).

    ``formatted`` is the text loguru formatted (its traceback is the one shipped); ``traceback_values``
    keeps the variable values loguru's ``diagnose`` wrote into it.
    """
    document = record_fields(record, record["time"].isoformat() if time_text is None else time_text)
    extra = record["extra"]
    if extra:
        items = extra.items() if extra_keys is None else [(key, extra[key]) for key in extra_keys if key in extra]
        for key, value in items:
            name = key if isinstance(key, str) else _safe_str(key)
            while name in document or name in RESERVED_FIELDS:
                name = "extra_" + name
            document[name] = value
    exception = record["exception"]
    if exception is not None:
        document["exception"] = _exception_fields(exception, formatted, record["message"], traceback_values)
    return document


def _cut_utf8(data: bytes, size: int) -> str:
    """The longest prefix of ``data`` of at most ``size`` bytes that ends on a character boundary."""
    return data[: max(size, 0)].decode("utf-8", "ignore")


def encode_text(text: str) -> tuple[bytes, bool]:
    """Encode a text event; when too large, cut it on a UTF-8 boundary with a visible marker.

    Returns the payload and whether it was cut.
    """
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= MAX_EVENT_BYTES:
        return data, False
    kept = _cut_utf8(data, MAX_EVENT_BYTES - 80)
    removed = len(data) - len(kept.encode("utf-8"))
    return (kept + truncation_marker(removed)).encode("utf-8"), True


def _cut_message(document: dict[str, Any], payload: bytes) -> bytes:
    """Cut the message field (with a visible marker) until the document fits or the message is empty."""
    message_bytes = _clean_text(_safe_str(document.get("message", ""))).encode("utf-8")
    kept_size = len(message_bytes)
    excess = len(payload) - MAX_EVENT_BYTES
    for attempt in range(_CUT_ATTEMPTS):
        if excess <= 0 or kept_size == 0:
            break
        # JSON escapes make some characters cost more in the document than in the message ('"' costs 2
        # bytes, a control character 6): remove excess / ratio bytes, the ratio measured on what is kept.
        # The last attempt counts one byte per byte, which always fits when the message is what is too large.
        ratio = 1.0
        if attempt < _CUT_ATTEMPTS - 1:
            escaped = len(orjson.dumps(message_bytes[:kept_size].decode("utf-8", "ignore"))) - 2
            ratio = max(1.0, escaped / kept_size)
        kept = _cut_utf8(message_bytes, kept_size - math.ceil(excess / ratio) - 200)
        kept_size = len(kept.encode("utf-8"))
        document["message"] = kept + truncation_marker(len(message_bytes) - kept_size)
        payload = dumps(document)
        excess = len(payload) - MAX_EVENT_BYTES
    return payload


def _cut_large_fields(document: dict[str, Any]) -> None:
    """Replace every large field but the message by a cut-down text of itself."""
    for key, value in list(document.items()):
        if key in ("message", "time"):
            continue
        encoded = dumps({"v": value})
        if len(encoded) > 4096:
            document[key] = _cut_utf8(encoded[5:-1], 4000) + truncation_marker(len(encoded) - 4000)


def truncate_document(document: dict[str, Any], payload: bytes) -> bytes:
    """Shrink an oversized document so that it fits one event, keeping it valid JSON.

    The message is cut first (with a visible marker), unless cutting it cannot make the document fit:
    then every other large field is first replaced by a cut-down text of itself, so that a short message
    is not sacrificed to a huge extra value. In the last resort only the record's own fields remain.
    """
    excess = len(payload) - MAX_EVENT_BYTES
    fields_cut = False
    if len(dumps({"m": document.get("message", "")})) - 6 < excess + 300:
        _cut_large_fields(document)
        fields_cut = True
        payload = dumps(document)
        if len(payload) <= MAX_EVENT_BYTES:
            return payload
    payload = _cut_message(document, payload)
    if len(payload) <= MAX_EVENT_BYTES:
        return payload
    if not fields_cut:
        _cut_large_fields(document)
        payload = dumps(document)
        if len(payload) <= MAX_EVENT_BYTES:
            return payload
    minimal = {key: document[key] for key in ("time", "level", "message", "logger", "function", "line")}
    minimal["truncated"] = "fields removed: the document exceeded CloudWatch's 1 MiB event limit"
    return dumps(minimal)
