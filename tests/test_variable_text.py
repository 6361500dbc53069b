"""Reading a variable's text (``_variable_text``): what each parser accepts and refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from loguru_cloudwatch import _variable_text as text

ACCEPTED: list[tuple[Callable[[str], Any], str, Any]] = [
    (text.parse_bool, " YES ", True),
    (text.parse_bool, "off", False),
    (text.parse_bool, "1", True),
    (text.parse_int, " 42 ", 42),
    (text.parse_float, "2.5", 2.5),
    (text.parse_str, "  name  ", "name"),
    (text.parse_extra_keys, " a, b ,,", ("a", "b")),
    (text.parse_extra_keys, ",", ()),
    (text.parse_level, "warning", "WARNING"),
    (text.parse_level, "25", 25),
    (text.parse_format, "{time} {level} {message} {extra[id]}", "{time} {level} {message} {extra[id]}"),
    (text.parse_endpoint, " http://127.0.0.1:5000 ", "http://127.0.0.1:5000"),
    (text.parse_region, "eu-west-1", "eu-west-1"),
]
REFUSED: list[tuple[Callable[[str], Any], str]] = [
    (text.parse_bool, "maybe"),
    (text.parse_int, "2.0"),
    (text.parse_int, "0x10"),
    (text.parse_float, "2s"),
    (text.parse_level, "LOUD"),
    (text.parse_level, "-1"),
    (text.parse_format, "{nope}"),
    (text.parse_format, "{unclosed"),
    (text.parse_endpoint, "localhost:5000"),
    (text.parse_endpoint, "http://"),
    (text.parse_endpoint, "http://host:99999"),
    (text.parse_region, "eu west 1"),
]


@pytest.mark.parametrize(("parse", "given", "value"), ACCEPTED, ids=[f"{p.__name__}-{t!r}" for p, t, _ in ACCEPTED])
def test_accepted(parse: Callable[[str], Any], given: str, value: Any) -> None:
    assert parse(given) == value


@pytest.mark.parametrize(("parse", "given"), REFUSED, ids=[f"{p.__name__}-{t!r}" for p, t in REFUSED])
def test_refused(parse: Callable[[str], Any], given: str) -> None:
    with pytest.raises(text.Unparseable):
        parse(given)
