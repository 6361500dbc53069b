"""The validated configuration of a sink, and the checks that validate each option.

Everything here runs at construction time, so a bad option fails early with a message naming the
option, the value and what is allowed, instead of failing later on the worker thread. Which check an
option gets, and its default, is defined once in ``_options.OPTIONS``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._limits import LOG_GROUP_CLASSES, MAX_NAME_LENGTH, RETENTION_DAYS
from ._report import SinkProblem
from ._stream_name import template_problem

_GROUP_NAME_RE = re.compile(r"[.\-_/#A-Za-z0-9]+")


@dataclass(frozen=True)
class SinkConfig:
    """The validated options of one sink (see ``_options.OPTIONS`` for their meaning and defaults)."""

    log_group: str
    log_stream_template: str
    serialize: bool
    extra_keys: tuple[str, ...] | None
    traceback_values: bool
    flush_interval: float
    max_batch_size: int
    max_queue_size: int
    max_queue_bytes: int
    spool_dir: Path | None
    max_spool_bytes: int
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


@dataclass(frozen=True)
class Refusal:
    """Which option a construction error is about, and what it expected (on the error as ``.refusal``).

    The errors stay plain ``TypeError`` / ``ValueError``; ``configure_from_env()`` reads this to name the
    variable a value came from.
    """

    option: str
    expected: str


def refusal_of(error: BaseException) -> Refusal | None:
    """The ``Refusal`` a check attached to ``error``, or None for any other error."""
    refusal = getattr(error, "refusal", None)
    return refusal if isinstance(refusal, Refusal) else None


def _refused(kind: type[Exception], option: str, value: object, expected: str) -> Exception:
    error = kind(f"CloudWatchSink option {option}={_describe(value)} is invalid: expected {expected}")
    error.refusal = Refusal(option, expected)  # type: ignore[attr-defined]
    return error


def type_refused(option: str, value: object, expected: str) -> Exception:
    """A TypeError: ``value`` of ``option`` has the wrong type."""
    return _refused(TypeError, option, value, expected)


def value_refused(option: str, value: object, expected: str) -> Exception:
    """A ValueError: ``value`` of ``option`` has the right type but is out of range or malformed."""
    return _refused(ValueError, option, value, expected)


def check_bool(option: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise type_refused(option, value, "True or False")
    return value


def check_number(option: str, value: object, *, minimum: float, maximum: float, strict_min: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_refused(option, value, "a number of seconds")
    number = float(value)
    low_ok = number > minimum if strict_min else number >= minimum
    if not (low_ok and number <= maximum) or number != number:
        bound = ">" if strict_min else ">="
        raise value_refused(option, value, f"a number of seconds {bound} {minimum:g} and <= {maximum:g}")
    return number


def check_int(option: str, value: object, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_refused(option, value, f"an integer from {minimum:,} to {maximum:,}")
    if not minimum <= value <= maximum:
        raise value_refused(option, value, f"an integer from {minimum:,} to {maximum:,}")
    return value


def check_log_group(option: str, value: object) -> str:
    if not isinstance(value, str):
        raise type_refused(option, value, "a string")
    if not 1 <= len(value) <= MAX_NAME_LENGTH or not _GROUP_NAME_RE.fullmatch(value):
        raise value_refused(option, value, f"1 to {MAX_NAME_LENGTH} characters from [.-_/#A-Za-z0-9]")
    if value.startswith("aws/"):
        raise value_refused(option, value, "a name that does not start with 'aws/' (reserved by AWS)")
    return value


def check_stream_template(option: str, value: object) -> str:
    if not isinstance(value, str):
        raise type_refused(option, value, "a string")
    problem = template_problem(value)
    if problem is not None:
        raise value_refused(option, value, problem)
    return value


def check_extra_keys(option: str, value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise type_refused(option, value, "None or a sequence of strings, e.g. ['request_id']")
    keys = tuple(value)
    for key in keys:
        if not isinstance(key, str):
            raise type_refused(option, value, "a sequence of strings only")
    return keys


def is_endpoint_url(text: str) -> bool:
    """Whether ``text`` is an ``http://`` or ``https://`` URL with a host (and a valid port, if any)."""
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_endpoint_url(option: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise type_refused(option, value, "None or a string: an http:// or https:// URL, e.g. http://127.0.0.1:5000")
    if not is_endpoint_url(value):
        raise value_refused(option, value, "an http:// or https:// URL with a host, e.g. http://127.0.0.1:5000")
    return value


def check_spool_dir(option: str, value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise type_refused(option, value, "None or a directory path (a str or a path-like object)")
    from ._spool_dir import directory_problem  # sqlite3 only for a sink that spools

    directory = Path(value).expanduser()
    problem = directory_problem(directory)
    if problem is not None:
        raise value_refused(option, value, f"a directory this process can create and write to, but {problem}")
    return directory


def check_optional_str(option: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise type_refused(option, value, "None or a string")
    return value


def check_retention(option: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_refused(option, value, "None or an integer number of days")
    if value not in RETENTION_DAYS:
        raise value_refused(option, value, f"None or one of {', '.join(map(str, RETENTION_DAYS))}")
    return value


def check_group_class(option: str, value: object) -> str | None:
    if value is None:
        return None
    if value not in LOG_GROUP_CLASSES:
        raise value_refused(option, value, "None, 'STANDARD' or 'INFREQUENT_ACCESS'")
    return str(value)


def check_tags(option: str, value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise type_refused(option, value, "None or a mapping of strings to strings")
    return dict(value)


def check_callable(option: str, value: object) -> Any:
    if value is not None and not callable(value):
        raise type_refused(option, value, "None or a callable")
    return value


def check_boto_config(option: str, value: object) -> Any:
    if value is None:
        return None
    from botocore.config import Config

    if not isinstance(value, Config):
        raise type_refused(option, value, "None or a botocore.config.Config")
    return value


def check_client(option: str, value: object) -> Any:
    if value is not None and not callable(getattr(value, "put_log_events", None)):
        raise type_refused(option, value, "None or a boto3 CloudWatch Logs client")
    return value


def check_session(option: str, value: object) -> Any:
    if value is not None and not callable(getattr(value, "client", None)):
        raise type_refused(option, value, "None or a boto3.Session")
    return value
