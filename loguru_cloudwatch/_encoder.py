"""Encoders: one loguru message in, one CloudWatch event out (timestamp in ms, payload text, UTF-8 size).

This runs on the caller's thread for every record. The sink picks one encoder at start (``encoder_for``):
``JsonEncoder`` (``serialize=True``: the JSON document of ``_document``) or ``TextEncoder`` (the text the
handler's ``format`` made). A new output format (EMF, say) is one more class with the same ``encode`` and
``truncated``: the ``Encoder`` protocol.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from ._document import (
    EMPTY_PLACEHOLDER,
    RESERVED_FIELDS,
    build_document,
    dumps,
    encode_text,
    json_default,
    record_fields,
    truncate_document,
)
from ._limits import MAX_EVENT_BYTES
from ._traceback_text import shipped_text


class Encoder(Protocol):
    """Turns one loguru message into ``(timestamp in ms, payload, payload size in UTF-8 bytes)``.

    ``encode`` runs on the caller's thread, under loguru's handler lock: it must be cheap and must raise
    only for a record that cannot be encoded at all (the sink counts and reports it). The payload is at
    most ``MAX_EVENT_BYTES``; records cut to fit are counted in ``truncated``.
    """

    #: Records cut to fit CloudWatch's event size limit.
    truncated: int

    def encode(self, message: Any) -> tuple[int, str, int]: ...


#: "000" … "999": the milliseconds and the microseconds of a time text, without formatting per record.
_THREE_DIGITS = tuple("%03d" % number for number in range(1000))  # noqa: UP031


def second_of(moment: Any) -> tuple[Any, ...]:
    """The wall-clock second (and UTC offset) of a record's time, as ``_SecondCache.second`` holds it."""
    return (moment.toordinal(), moment.hour, moment.minute, moment.second, moment.tzinfo)


class _SecondCache:
    """What all records of one wall-clock second (in one UTC offset) share: epoch ms and ISO 8601 text."""

    __slots__ = ("base_ms", "prefix", "second", "suffix")

    def __init__(self, moment: Any = None) -> None:
        #: Which second this is: what ``second_of`` compares (one tuple: cheaper than three comparisons).
        self.second: tuple[Any, ...] | None = None
        if moment is None:  # matches no record: the first one fills the cache
            self.base_ms = -1
            self.prefix = self.suffix = ""
            return
        whole = moment.replace(microsecond=0)
        self.second = second_of(moment)
        self.base_ms = int(whole.timestamp()) * 1000
        text = whole.isoformat(timespec="seconds")
        # "YYYY-MM-DDTHH:MM:SS." + offset ("+HH:MM"); naive datetimes have none.
        self.prefix = text[:19] + "."
        self.suffix = text[19:]


class _RecordTimeEncoder:
    """What both encoders share: the record time's per-second cache, and the count of cut records."""

    def __init__(self) -> None:
        self._second = _SecondCache()
        self.truncated = 0


class JsonEncoder(_RecordTimeEncoder):
    """One JSON document per record (see the README for its fields and the collision rule).

    The common case costs one dict and one ``orjson.dumps``; the epoch milliseconds and the ISO 8601 text
    of the record's time are derived from a per-second cache instead of ``timestamp()`` and
    ``isoformat()`` on every record. Anything unusual (colliding or non-string extra keys, values orjson
    refuses, oversized records) takes the careful path in ``build_document`` / ``dumps``.
    """

    def __init__(self, extra_keys: tuple[str, ...] | None, traceback_values: bool = False) -> None:
        super().__init__()
        self._extra_keys = extra_keys
        self._traceback_values = traceback_values

    def encode(self, message: Any) -> tuple[int, str, int]:
        record = message.record
        moment = record["time"]
        cache = self._second  # read once: another thread may replace it meanwhile
        if cache.second != (moment.toordinal(), moment.hour, moment.minute, moment.second, moment.tzinfo):
            cache = self._second = _SecondCache(moment)  # inlined second_of(): every record comes here
        micro = moment.microsecond
        millis = micro // 1000
        timestamp = cache.base_ms + millis
        digits = _THREE_DIGITS
        time_text = "".join((cache.prefix, digits[millis], digits[micro - 1000 * millis], cache.suffix))
        extra = record["extra"]
        if self._extra_keys is None and record["exception"] is None and RESERVED_FIELDS.isdisjoint(extra):
            document = record_fields(record, time_text)
            if extra:
                document.update(extra)
            try:
                # Without OPT_NON_STR_KEYS a non-string key raises and takes the careful path, which
                # also keeps it from colliding with a string key.
                payload = orjson.dumps(document, default=json_default)
            except Exception:
                document = build_document(record, None, message, time_text)
                payload = dumps(document)
        else:
            document = build_document(record, self._extra_keys, message, time_text, self._traceback_values)
            payload = dumps(document)
        if len(payload) > MAX_EVENT_BYTES:
            payload = truncate_document(document, payload)
            self.truncated += 1
        return timestamp, payload.decode(), len(payload)


class TextEncoder(_RecordTimeEncoder):
    """The text the handler's ``format`` made, without its trailing newline (``serialize=False``).

    A traceback in it loses the variable values loguru's ``diagnose`` wrote, unless ``traceback_values``.
    """

    def __init__(self, traceback_values: bool = False) -> None:
        super().__init__()
        self._traceback_values = traceback_values

    def encode(self, message: Any) -> tuple[int, str, int]:
        record = message.record
        moment = record["time"]
        cache = self._second  # read once: another thread may replace it meanwhile
        if cache.second != (moment.toordinal(), moment.hour, moment.minute, moment.second, moment.tzinfo):
            cache = self._second = _SecondCache(moment)  # inlined second_of(): every record comes here
        text = message[:-1] if message.endswith("\n") else message
        if record["exception"] is not None:
            text = shipped_text(text, self._traceback_values, record["message"])
        payload, cut = encode_text(str(text) or EMPTY_PLACEHOLDER)
        self.truncated += cut
        return cache.base_ms + moment.microsecond // 1000, payload.decode(), len(payload)


def encoder_for(serialize: bool, extra_keys: tuple[str, ...] | None, traceback_values: bool = False) -> Encoder:
    """The encoder of a sink's options: JSON documents, or the formatted text."""
    return JsonEncoder(extra_keys, traceback_values) if serialize else TextEncoder(traceback_values)
