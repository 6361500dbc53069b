"""Every option of ``CloudWatchSink``, defined once: name, default, check, doc, environment variable.

Everything else is derived from ``OPTIONS``: the constructor's validation (``build_config``), the class
docstring (``options_doc``), the ``LOGURU_CLOUDWATCH_*`` variables that ``configure_from_env()`` reads
(``VARIABLES``, which add the two ``logger.add`` options ``level`` and ``format``), the command line's
defaults, and the README's two tables (``tests/test_options.py`` fails when they differ from this table).

To add an option: one ``Option`` here, a parameter of ``CloudWatchSink.__init__`` and a field of
``SinkConfig`` (a test fails when the three disagree), then the code that uses it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from . import _config as cfg
from ._limits import MAX_BATCH_EVENTS, RETENTION_DAYS
from ._variable_text import (
    BOOL_ACCEPTED,
    parse_bool,
    parse_endpoint,
    parse_extra_keys,
    parse_float,
    parse_format,
    parse_int,
    parse_level,
    parse_region,
    parse_str,
)

PREFIX = "LOGURU_CLOUDWATCH_"
_MIB = 1024 * 1024


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Variable:
    """How an option is read from ``LOGURU_CLOUDWATCH_<suffix>``."""

    suffix: str
    parse: Callable[[str], Any]
    #: What a value that cannot be parsed is told is accepted.
    accepted: str
    #: The README's "option" column: how the text maps to the option, when not obvious.
    note: str = ""
    #: The README's "default" column, when it is not the option's default as text.
    unset: str = ""

    @property
    def name(self) -> str:
        return PREFIX + self.suffix


@dataclass(frozen=True)
class Option:
    """One option. ``check(name, value)`` returns the validated value, or raises TypeError or ValueError
    (with a ``cfg.Refusal``)."""

    name: str
    default: Any
    check: Callable[[str, Any], Any]
    #: One line for the README's table and the docstring (Markdown: `code`).
    doc: str
    variable: Variable | None = None
    #: Why the option cannot be set from the environment (when ``variable`` is None).
    no_variable: str = ""
    #: The README's "default" column, when not the default's repr.
    shown: str = ""
    #: The ``SinkConfig`` field, when not ``name``.
    field: str = ""
    #: An option of ``logger.add`` (``level``, ``format``), read from the environment only.
    handler: bool = False

    @property
    def config_field(self) -> str:
        return self.field or self.name

    @property
    def shown_default(self) -> str:
        if self.shown:
            return self.shown
        if isinstance(self.default, int) and not isinstance(self.default, bool) and self.default >= 10_000:
            return f"{self.default:_}"
        return repr(self.default).replace("'", '"')


def _number(low: float, high: float, strict_min: bool = False) -> Callable[[str, Any], float]:
    return lambda name, value: cfg.check_number(name, value, minimum=low, maximum=high, strict_min=strict_min)


def _integer(low: int, high: int) -> Callable[[str, Any], int]:
    return lambda name, value: cfg.check_int(name, value, minimum=low, maximum=high)


def _unchecked(name: str, value: Any) -> Any:
    return value


_IN_CODE = "a Python object: pass it in code"
_CREATES = "applied when this sink creates the group"

#: Every option, in the constructor's order; ``level`` and ``format`` (``logger.add``'s) after ``log_stream``.
OPTIONS: tuple[Option, ...] = (
    Option(
        "log_group", None, cfg.check_log_group,
        "log group name: 1-512 characters from `[.-_/#A-Za-z0-9]`, not starting with `aws/`",
        Variable("LOG_GROUP", parse_str, "a log group name", unset="unset: no sink is added"),
        shown="(required)",
    ),
    Option(
        "log_stream", "{hostname}/{pid}", cfg.check_stream_template,
        "stream name template: `{hostname}`, `{pid}`, `{program}` (script name), `{date}` (UTC `YYYY-MM-DD`, at "
        "start); rendered again in a forked child; `:` and `*` become `_`; cut to 512 characters",
        Variable(
            "LOG_STREAM", parse_str, "a stream name template",
            note="template: `{hostname}`, `{pid}`, `{program}`, `{date}`",
        ),
        field="log_stream_template",
    ),
    Option(
        "level", None, _unchecked,
        "`level` of `logger.add` (a level name, any case, or a number)",
        Variable(
            "LEVEL", parse_level,
            "a level name (TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, CRITICAL or a custom level) or an integer "
            ">= 0",
            unset="loguru's default: `LOGURU_LEVEL`, else `DEBUG`",
        ),
        handler=True,
    ),
    Option(
        "format", None, _unchecked,
        "`format` of `logger.add` (used when `SERIALIZE` is false)",
        Variable(
            "FORMAT", parse_format,
            "a loguru format string using only the record's fields ({time}, {level}, {message}, {extra[key]}, ...)",
            unset="loguru's default: `LOGURU_FORMAT`",
        ),
        handler=True,
    ),
    Option(
        "serialize", True, cfg.check_bool,
        "one JSON document per record; `False` sends the text loguru formatted with the handler's `format` "
        "(trailing newline removed)",
        Variable("SERIALIZE", parse_bool, BOOL_ACCEPTED),
    ),
    Option(
        "extra_keys", None, cfg.check_extra_keys,
        "which keys of `record[\"extra\"]` go into the JSON: `None` all, a sequence only those (missing ones "
        "omitted)",
        Variable(
            "EXTRA_KEYS", parse_extra_keys, "comma-separated keys",
            note="comma-separated: `request_id,user`; `,` alone sends no extra field",
            unset="unset: every key of `extra`",
        ),
    ),
    Option(
        "traceback_values", False, cfg.check_bool,
        "keep the local variable values loguru's `diagnose=True` (its default) writes into a traceback; "
        "`False` ships the traceback without them, whatever `enqueue` is",
        Variable("TRACEBACK_VALUES", parse_bool, BOOL_ACCEPTED),
    ),
    Option(
        "flush_interval", 2.0, _number(0, 86400, strict_min=True),
        "seconds between timed flushes: a batch that is not full is sent once nothing has been sent for this "
        "long (full batches go at once, so a steady stream uses the fewest calls)",
        Variable("FLUSH_INTERVAL", parse_float, "a number of seconds, e.g. 2.0", note="seconds"),
    ),
    Option(
        "max_batch_size", MAX_BATCH_EVENTS, _integer(1, MAX_BATCH_EVENTS),
        "queued records that trigger an immediate flush, and the most per PutLogEvents call (1 … 10,000)",
        Variable("MAX_BATCH_SIZE", parse_int, "an integer from 1 to 10,000"),
    ),
    Option(
        "max_queue_size", 100_000, _integer(1, 10**9),
        "records held in memory at most; beyond it the oldest are dropped and counted",
        Variable("MAX_QUEUE_SIZE", parse_int, "an integer, e.g. 100000"),
    ),
    Option(
        "max_queue_bytes", 64 * _MIB, _integer(2 * _MIB, 2**40),
        "the same bound in bytes (UTF-8 size + 216 bytes of bookkeeping per record; at least 2 MiB)",
        Variable("MAX_QUEUE_BYTES", parse_int, "an integer number of bytes, e.g. 67108864"),
        shown="64 MiB",
    ),
    Option(
        "spool_dir", None, cfg.check_spool_dir,
        "a directory for a durable spool: records survive a killed process, a restart and an outage longer than "
        "memory, and a later start delivers them; created if missing. `None`: memory only",
        Variable("SPOOL_DIR", parse_str, "a directory path", unset="unset: memory only"),
    ),
    Option(
        "max_spool_bytes", 1024 * _MIB, _integer(4 * _MIB, 2**50),
        "the most this process's spool file holds on disk, its database, WAL and index together (each process "
        "on the directory has its own); beyond it the oldest records are dropped and counted (at least 4 MiB)",
        Variable("MAX_SPOOL_BYTES", parse_int, "an integer number of bytes, e.g. 1073741824"),
        shown="1 GiB",
    ),
    Option(
        "max_retries", 3, _integer(0, 100),
        "in normal operation, retries of a failed PutLogEvents before the batch goes back to wait for a later "
        "flush; `force_flush` and `stop()` keep retrying until their deadline instead",
        Variable("MAX_RETRIES", parse_int, "an integer from 0 to 100"),
    ),
    Option(
        "retry_delay", 1.0, _number(0, 3600),
        "base delay (seconds) of exponential backoff with full jitter, capped at 30 s",
        Variable("RETRY_DELAY", parse_float, "a number of seconds, e.g. 1.0", note="seconds"),
    ),
    Option(
        "create_log_group", True, cfg.check_bool,
        "create the group when CloudWatch says it is missing (never with Describe* calls)",
        Variable("CREATE_LOG_GROUP", parse_bool, BOOL_ACCEPTED),
    ),
    Option(
        "create_log_stream", True, cfg.check_bool,
        "create the stream when CloudWatch says it is missing (never with Describe* calls)",
        Variable("CREATE_LOG_STREAM", parse_bool, BOOL_ACCEPTED),
    ),
    Option(
        "retention_days", None, cfg.check_retention,
        f"retention in days ({RETENTION_DAYS[0]} … {RETENTION_DAYS[-1]}, CloudWatch's values) {_CREATES}; "
        "`None`: never expire",
        Variable("RETENTION_DAYS", parse_int, "a number of days", note=_CREATES, unset="unset: never expire"),
    ),
    Option(
        "log_group_class", None, cfg.check_group_class,
        f"`\"STANDARD\"` or `\"INFREQUENT_ACCESS\"`, {_CREATES}",
        Variable("LOG_GROUP_CLASS", parse_str, "STANDARD or INFREQUENT_ACCESS", note=_CREATES, unset="unset"),
    ),
    Option(
        "kms_key_id", None, cfg.check_optional_str,
        f"KMS key ARN, {_CREATES}",
        Variable("KMS_KEY_ID", parse_str, "a KMS key ARN", note=_CREATES, unset="unset"),
    ),
    Option(
        "tags", None, cfg.check_tags, f"tags (a mapping of strings to strings), {_CREATES}",
        no_variable="a mapping: pass it in code",
    ),
    Option(
        "client", None, cfg.check_client,
        "a ready boto3 `logs` client; when given it wins over every other connection option",
        no_variable=_IN_CODE,
    ),
    Option(
        "session", None, cfg.check_session,
        "a `boto3.Session` to build the client from (default: a new default session)",
        no_variable=_IN_CODE + "; `AWS_PROFILE` selects a profile",
    ),
    Option(
        "region_name", None, cfg.check_optional_str,
        "the region; default: `AWS_REGION`, then botocore's own sources (`AWS_DEFAULT_REGION`, the profile)",
        Variable(
            "REGION", parse_region, "an AWS region name, e.g. eu-west-1",
            unset="unset: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then the profile's region",
        ),
    ),
    Option(
        "endpoint_url", None, cfg.check_endpoint_url,
        "another endpoint (an `http://` or `https://` URL), e.g. a local test server",
        Variable(
            "ENDPOINT_URL", parse_endpoint, "an http:// or https:// URL, e.g. http://127.0.0.1:5000",
            note="`http://` or `https://`", unset="unset: AWS's endpoint for the region",
        ),
    ),
    Option(
        "boto_config", None, cfg.check_boto_config,
        "a `botocore.config.Config` merged over the sink's (single attempt, 5 s connect and 15 s read timeouts)",
        no_variable=_IN_CODE + "; botocore's own `AWS_*` variables apply",
    ),
    Option(
        "shutdown_timeout", 10.0, _number(0, 3600),
        "seconds `stop()` may spend delivering what is left, retrying until then if CloudWatch refuses or "
        "fails; also `force_flush`'s default timeout",
        Variable("SHUTDOWN_TIMEOUT", parse_float, "a number of seconds, e.g. 10", note="seconds"),
    ),
    Option(
        "on_error", None, cfg.check_callable,
        "callable receiving a `SinkProblem` for each of the sink's own problems, on the sink's worker (or spool) "
        "thread; default: "
        "a short line on stderr, at most one per kind every 30 s",
        no_variable="a callable: pass it in code",
    ),
)  # fmt: skip

BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}
#: The constructor's options (all but ``logger.add``'s).
SINK_OPTIONS: tuple[Option, ...] = tuple(option for option in OPTIONS if not option.handler)
#: Every variable, in the order of the README table (the group first), and the option each one sets.
VARIABLES: tuple[Variable, ...] = tuple(option.variable for option in OPTIONS if option.variable is not None)
OPTION_OF: Mapping[str, Option] = {option.variable.name: option for option in OPTIONS if option.variable is not None}
#: The defaults, as attributes (``DEFAULT.flush_interval``): what the constructor's signature uses.
DEFAULT = SimpleNamespace(**{option.name: option.default for option in SINK_OPTIONS})


def _checked(values: Mapping[str, Any], refused: list[Exception] | None) -> dict[str, Any]:
    """Each option's checked value, by ``SinkConfig`` field (missing ones take their default). A refused
    value raises; with ``refused``, it is appended there instead, and only given options are checked."""
    checked: dict[str, Any] = {}
    for option in SINK_OPTIONS:
        if refused is not None and option.name not in values:
            continue
        try:
            checked[option.config_field] = option.check(option.name, values.get(option.name, option.default))
        except (TypeError, ValueError) as error:
            if refused is None:
                raise
            refused.append(error)
    return checked


def build_config(values: Mapping[str, Any]) -> cfg.SinkConfig:
    """Check every constructor option (missing ones take their default).

    Raises TypeError or ValueError naming the option, the value and what is expected (see ``cfg.Refusal``).
    """
    unknown = set(values) - {option.name for option in SINK_OPTIONS}
    if unknown:
        raise TypeError(f"CloudWatchSink got unexpected options {sorted(unknown)}")
    return cfg.SinkConfig(**_checked(values, None))


def refusals(values: Mapping[str, Any]) -> list[Exception]:
    """Every error ``build_config(values)`` could raise, one per refused option (given ones only)."""
    refused: list[Exception] = []
    _checked(values, refused)
    return refused


def options_doc() -> str:
    """The ``Args:`` section of ``CloudWatchSink``'s docstring, from the table."""
    lines = ["Args:"]
    for option in SINK_OPTIONS:
        default = "" if option.name == "log_group" else f" Default: {option.shown_default}."
        text = option.doc.replace("`", "``")
        entry = f"{option.name}: {text[0].upper()}{text[1:]}.{default}"
        lines += textwrap.wrap(entry, width=100, initial_indent="    ", subsequent_indent="        ")
    return "\n".join(lines)
