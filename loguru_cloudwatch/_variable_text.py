"""Reading a ``LOGURU_CLOUDWATCH_*`` variable's text: one parser per kind of value.

Each parser returns the value or raises ``Unparseable``; the caller names the variable and says what is
accepted (``_options.Variable.accepted``). Values that parse are then checked like any constructor
argument (``_options.build_config``).
"""

from __future__ import annotations

import re
import string

from ._config import is_endpoint_url


class Unparseable(ValueError):
    """A variable's text is not of the expected kind (the caller adds the variable's name)."""


# --------------------------------------------------------------------------- reading a variable's text

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_REGION_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?")
# The keys loguru offers to a format string (see loguru's record dict).
_RECORD_FIELDS = frozenset(
    {"elapsed", "exception", "extra", "file", "function", "level", "line", "message", "module", "name",
     "process", "thread", "time"}
)  # fmt: skip
BOOL_ACCEPTED = "one of 1, true, yes, on / 0, false, no, off (any case)"


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise Unparseable


def parse_int(text: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise Unparseable from None


def parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise Unparseable from None


def parse_str(text: str) -> str:
    return text.strip()


def parse_extra_keys(text: str) -> tuple[str, ...]:
    return tuple(key for key in (part.strip() for part in text.split(",")) if key)


def parse_level(text: str) -> int | str:
    from loguru import logger

    value = text.strip()
    if re.fullmatch(r"\+?[0-9]+", value):
        return int(value)
    for candidate in (value, value.upper()):
        try:
            logger.level(candidate)
        except ValueError:
            continue
        return candidate
    raise Unparseable


def parse_format(text: str) -> str:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        raise Unparseable from None
    for name in fields:
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if base not in _RECORD_FIELDS:
            raise Unparseable
    return text


def parse_endpoint(text: str) -> str:
    value = text.strip()
    if not is_endpoint_url(value):
        raise Unparseable
    return value


def parse_region(text: str) -> str:
    value = text.strip()
    if not _REGION_RE.fullmatch(value):
        raise Unparseable
    return value
