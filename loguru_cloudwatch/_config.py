"""Validation of the sink's options and rendering of log stream name templates.

Everything here runs at construction time, so a bad option fails early with a message naming the
option, the value and what is allowed, instead of failing later on the worker thread.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import string
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from ._limits import LOG_GROUP_CLASSES, MAX_NAME_LENGTH, RETENTION_DAYS
from ._report import SinkProblem

_GROUP_NAME_RE = re.compile(r"[.\-_/#A-Za-z0-9]+")
_STREAM_FORBIDDEN = re.compile(r"[:*]")
_STREAM_FIELDS = frozenset({"hostname", "pid", "program", "date"})

#: Default log stream name template.
DEFAULT_STREAM_TEMPLATE = "{hostname}/{pid}"


@dataclass(frozen=True)
class SinkConfig:
    """The validated options of one sink (see ``CloudWatchSink`` for their meaning)."""

    log_group: str
    log_stream_template: str
    serialize: bool
    extra_keys: tuple[str, ...] | None
    flush_interval: float
    max_batch_size: int
    max_queue_size: int
    max_queue_bytes: int
    max_retries: int
    retry_delay: float
    create_log_group: bool
    create_log_stream: bool
    retention_days: int | None
    log_group_class: str | None
    kms_key_id: str | None
    tags: dict[str, str] | None
    client: Any
    session: Any
    region_name: str | None
    endpoint_url: str | None
    boto_config: Any
    shutdown_timeout: float
    on_error: Callable[[SinkProblem], Any] | None


_SECRET_KEY_RE = re.compile(r"secret|token|password|credential|access_key", re.IGNORECASE)
_ACCESS_KEY_ID_RE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b")


def _redacted(value: object) -> object:
    """``value`` with what looks like a credential hidden (a dict of keys passed by mistake, say)."""
    if isinstance(value, Mapping):
        return {
            key: "***" if isinstance(key, str) and _SECRET_KEY_RE.search(key) else _redacted(item)
            for key, item in value.items()
        }
    return value


def _describe(value: object) -> str:
    # No credential may end up in an exception message (and from there in a log).
    try:
        text = _ACCESS_KEY_ID_RE.sub("***", repr(_redacted(value)))
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(option: str, value: object, expected: str) -> str:
    return f"CloudWatchSink option {option}={_describe(value)} is invalid: expected {expected}"


def check_bool(option: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(_bad(option, value, "True or False"))
    return value


def check_number(option: str, value: object, *, minimum: float, maximum: float, strict_min: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(_bad(option, value, "a number of seconds"))
    number = float(value)
    low_ok = number > minimum if strict_min else number >= minimum
    if not (low_ok and number <= maximum) or number != number:
        bound = ">" if strict_min else ">="
        raise ValueError(_bad(option, value, f"a number of seconds {bound} {minimum:g} and <= {maximum:g}"))
    return number


def check_int(option: str, value: object, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(_bad(option, value, f"an integer from {minimum:,} to {maximum:,}"))
    if not minimum <= value <= maximum:
        raise ValueError(_bad(option, value, f"an integer from {minimum:,} to {maximum:,}"))
    return value


def check_log_group(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(_bad("log_group", value, "a string"))
    if not 1 <= len(value) <= MAX_NAME_LENGTH or not _GROUP_NAME_RE.fullmatch(value):
        raise ValueError(_bad("log_group", value, f"1 to {MAX_NAME_LENGTH} characters from [.-_/#A-Za-z0-9]"))
    if value.startswith("aws/"):
        raise ValueError(_bad("log_group", value, "a name that does not start with 'aws/' (reserved by AWS)"))
    return value


def check_stream_template(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(_bad("log_stream", value, "a string"))
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as error:
        raise ValueError(_bad("log_stream", value, f"a valid template ({error})")) from None
    unknown = fields - _STREAM_FIELDS
    if unknown:
        allowed = ", ".join("{" + f + "}" for f in sorted(_STREAM_FIELDS))
        raise ValueError(_bad("log_stream", value, f"only the fields {allowed}, not {sorted(unknown)}"))
    try:
        rendered = render_stream_name(value)
    except (ValueError, TypeError) as error:  # e.g. a format spec that does not suit the field: {date:%Y}
        raise ValueError(_bad("log_stream", value, f"a template that can be rendered ({error})")) from None
    if not rendered:
        raise ValueError(_bad("log_stream", value, "a template that renders to at least one character"))
    return value


def _program_name() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(argv0)
    if not name or name == "-c":
        return "python"
    return name


def render_stream_name(template: str) -> str:
    """Render a stream name template for this process, now.

    ``{hostname}``, ``{pid}``, ``{program}`` (script name) and ``{date}`` (UTC, YYYY-MM-DD) are filled in;
    the characters CloudWatch refuses in stream names (``:`` and ``*``) become ``_``, and the result is
    cut to 512 characters.
    """
    name = template.format(
        hostname=socket.gethostname(),
        pid=os.getpid(),
        program=_program_name(),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    )
    return _STREAM_FORBIDDEN.sub("_", name)[:MAX_NAME_LENGTH]


def check_extra_keys(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(_bad("extra_keys", value, "None or a sequence of strings, e.g. ['request_id']"))
    keys = tuple(value)
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(_bad("extra_keys", value, "a sequence of strings only"))
    return keys


def check_optional_str(option: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(_bad(option, value, "None or a string"))
    return value


def check_retention(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(_bad("retention_days", value, "None or an integer number of days"))
    if value not in RETENTION_DAYS:
        raise ValueError(_bad("retention_days", value, f"None or one of {', '.join(map(str, RETENTION_DAYS))}"))
    return value


def check_group_class(value: object) -> str | None:
    if value is None:
        return None
    if value not in LOG_GROUP_CLASSES:
        raise ValueError(_bad("log_group_class", value, "None, 'STANDARD' or 'INFREQUENT_ACCESS'"))
    return str(value)


def check_tags(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError(_bad("tags", value, "None or a mapping of strings to strings"))
    return dict(value)


def check_callable(option: str, value: object) -> Any:
    if value is not None and not callable(value):
        raise TypeError(_bad(option, value, "None or a callable"))
    return value


def check_boto_config(value: object) -> Any:
    if value is None:
        return None
    from botocore.config import Config

    if not isinstance(value, Config):
        raise TypeError(_bad("boto_config", value, "None or a botocore.config.Config"))
    return value


def check_client(value: object) -> Any:
    if value is not None and not callable(getattr(value, "put_log_events", None)):
        raise TypeError(_bad("client", value, "None or a boto3 CloudWatch Logs client"))
    return value


def check_session(value: object) -> Any:
    if value is not None and not callable(getattr(value, "client", None)):
        raise TypeError(_bad("session", value, "None or a boto3.Session"))
    return value
