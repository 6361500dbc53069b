"""The shipped traceback: loguru's real renderings, with and without ``diagnose``, lose the variable values."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch._traceback_text import shipped_text, shipped_traceback, traceback_start, without_values
from tests.support.hostile import bare_assert as bare_assert_on

SECRET = "hunter2-s3cr3t"


class MultiLineRepr:
    """A value whose repr spans lines (a DataFrame, an array): loguru indents its later lines."""

    def __repr__(self) -> str:
        return f"MultiLineRepr(\n  token={SECRET!r},\n\n  more=1\n)"


def divide(secret_value: str, divisor: int) -> Any:
    holder = MultiLineRepr()
    return holder and secret_value / divisor  # type: ignore[operator]


def chained() -> None:
    try:
        divide(SECRET, 0)
    except TypeError as error:
        raise ValueError("wrapped") from error


def recurse(depth: int, secret_value: str) -> None:
    if depth:
        recurse(depth - 1, secret_value)
    raise KeyError(depth)


class LocationLikeRepr:
    """A repr whose second line looks like a frame's location line."""

    def __repr__(self) -> str:
        return f'Fake(\n  File "{SECRET}", line 1, in nowhere\n)'


def call_with_location_like_values() -> None:
    first, second = 1, LocationLikeRepr()
    divide(str(first), second)  # type: ignore[arg-type]


def bare_assert() -> None:
    secret_value = SECRET
    bare_assert_on(secret_value)


def unraised_cause() -> None:
    secret_value = SECRET
    raise RuntimeError("outer" + secret_value[:0]) from ValueError("a cause never raised")


def syntax_error() -> None:
    source = "x = = 1"  # the line the SyntaxError shows, with its caret
    compile(source, "<configuration>", "exec")


class Collector(list):  # type: ignore[type-arg]
    """A sink with ``write`` and no ``encoding``, like ``CloudWatchSink``: loguru draws its arrows in ASCII."""

    def write(self, message: str) -> None:
        self.append(message)


def renderings(failing: Callable[[], Any], ascii_arrows: bool = False, **options: Any) -> tuple[str, str]:
    """What loguru formats for ``failing``'s exception (format ``{message}``, so the traceback follows),
    with ``diagnose=False`` and with ``diagnose=True``: one call, so that ``backtrace``'s frames match.
    A function sink gets ``│ └`` arrows, an object without ``encoding`` ``| ->``."""
    plain: list[str] = Collector() if ascii_arrows else []
    diagnosed: list[str] = Collector() if ascii_arrows else []
    handlers = [
        logger.add(plain if ascii_arrows else plain.append, format="{message}", diagnose=False, **options),
        logger.add(diagnosed if ascii_arrows else diagnosed.append, format="{message}", diagnose=True, **options),
    ]
    try:
        failing()
    except BaseException:
        logger.exception("failed")
    finally:
        for handler in handlers:
            logger.remove(handler)
    return str(plain[0]), str(diagnosed[0])


def rendering(failing: Callable[[], Any], **options: Any) -> str:
    """loguru's rendering of ``failing``'s exception with ``diagnose=True``, its default."""
    return renderings(failing, **options)[1]


FAILURES: dict[str, Callable[[], Any]] = {
    "values and a multi-line repr": lambda: divide(SECRET, 0),
    "chained": chained,
    "repeated frames": lambda: recurse(6, SECRET),
    "syntax error": syntax_error,
    "a value that looks like a location": call_with_location_like_values,
    "a bare assert": bare_assert,
    "a cause never raised": unraised_cause,
}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
@pytest.mark.parametrize("backtrace", [False, True])
@pytest.mark.parametrize("ascii_arrows", [False, True], ids=["unicode", "ascii"])
def test_the_text_is_the_same_with_or_without_diagnose_and_holds_no_value(
    failure: Any, backtrace: bool, ascii_arrows: bool
) -> None:
    plain, diagnosed = renderings(failure, ascii_arrows, backtrace=backtrace)
    arrow = "-> " if ascii_arrows else "└ "
    assert arrow in diagnosed  # loguru did write values: the test is about removing them

    shipped = shipped_traceback(diagnosed, keep_values=False, message="failed")
    expected = plain[traceback_start(plain, "failed") :].rstrip("\n")
    assert shipped == shipped_traceback(plain, keep_values=False, message="failed") == expected
    assert arrow not in shipped and "│" not in shipped
    assert f'File "{SECRET}"' not in shipped
    assert "MultiLineRepr(" not in shipped and "more=1" not in shipped


def test_frames_keep_their_location_and_source_lines() -> None:
    shipped = shipped_traceback(rendering(chained), keep_values=False)
    lines = shipped.split("\n")
    assert lines[0] == "Traceback (most recent call last):"
    assert any(line.startswith('  File "') and line.endswith(", in divide") for line in lines)
    assert "    return holder and secret_value / divisor  # type: ignore[operator]" in lines
    assert "The above exception was the direct cause of the following exception:" in lines
    assert lines[-1] == "ValueError: wrapped"
    # The exception's own text is the record's, not a variable's value: it stays.
    assert "TypeError: unsupported operand type(s) for /: 'str' and 'int'" in lines


def test_a_syntax_error_keeps_its_caret() -> None:
    shipped = shipped_traceback(rendering(syntax_error), keep_values=False)
    assert "    x = = 1" in shipped.split("\n")
    assert any(set(line.strip()) == {"^"} for line in shipped.split("\n"))


def test_repeated_frames_keep_loguru_s_summary_line() -> None:
    shipped = shipped_traceback(rendering(lambda: recurse(6, SECRET)), keep_values=False)
    assert "  [Previous line repeated 3 more times]" in shipped.split("\n")
    assert SECRET not in shipped


def test_colours_do_not_hide_values() -> None:
    shipped = shipped_traceback(rendering(lambda: divide(SECRET, 0), colorize=True), False)
    assert "\x1b[" in shipped  # coloured, as asked
    assert SECRET not in shipped and "MultiLineRepr(" not in shipped


def test_a_cause_never_raised_is_part_of_the_traceback() -> None:
    shipped = shipped_traceback(rendering(unraised_cause), keep_values=False, message="failed")
    lines = shipped.split("\n")
    assert lines[:3] == [
        "ValueError: a cause never raised",
        "",
        "The above exception was the direct cause of the following exception:",
    ]
    assert lines[-1] == "RuntimeError: outer"


def test_a_bare_assert_loses_the_source_diagnose_appends() -> None:
    _, diagnosed = renderings(bare_assert)
    assert 'AssertionError: assert value == "something else"' in diagnosed
    assert shipped_traceback(diagnosed, keep_values=False).split("\n")[-1] == "AssertionError"


class CarriageReturnRepr:
    """A repr with a carriage return: inside an exception group loguru starts a new line there."""

    def __repr__(self) -> str:
        return f"Connection(host='db',\rpassword={SECRET!r})"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in Python 3.11")
def test_a_value_cut_by_an_exception_group_does_not_leak() -> None:
    def grouped() -> None:
        def connect(connection: Any) -> None:
            raise ValueError("refused")

        connection = CarriageReturnRepr()
        try:
            connect(connection)
        except ValueError as error:
            raise ExceptionGroup("one failure", [error]) from None  # noqa: F821 (3.11+)

    plain, diagnosed = renderings(grouped)
    assert SECRET in diagnosed
    shipped = shipped_traceback(diagnosed, keep_values=False)
    assert SECRET not in shipped
    assert shipped == shipped_traceback(plain, keep_values=False)
    assert "    | ValueError: refused" in shipped.split("\n")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in Python 3.11")
def test_an_exception_group_loses_its_values_too() -> None:
    def grouped() -> None:
        errors: list[Exception] = []
        for divisor in (0, 0):
            try:
                divide(SECRET, divisor)
            except TypeError as error:
                errors.append(error)
        raise ExceptionGroup("two failures", errors)  # noqa: F821 (3.11+)

    plain, diagnosed = renderings(grouped)
    assert SECRET in diagnosed and "  | " in diagnosed
    shipped = shipped_traceback(diagnosed, keep_values=False)
    assert shipped == shipped_traceback(plain, keep_values=False)
    assert SECRET not in shipped and "more=1" not in shipped
    assert "  |     return holder and secret_value / divisor  # type: ignore[operator]" in shipped


def test_values_stay_when_asked_for() -> None:
    diagnosed = rendering(lambda: divide(SECRET, 0))
    assert shipped_traceback(diagnosed, keep_values=True) == diagnosed[traceback_start(diagnosed) :].rstrip("\n")
    assert SECRET in shipped_traceback(diagnosed, keep_values=True)


def test_a_whole_text_keeps_what_precedes_its_traceback() -> None:
    diagnosed = rendering(lambda: divide(SECRET, 0))
    assert diagnosed.startswith("failed\n")
    assert shipped_text(diagnosed, keep_values=False) == "failed\n" + without_values(diagnosed[7:])
    assert shipped_text(diagnosed, keep_values=True) == diagnosed
    assert shipped_text("no traceback here", keep_values=False) == "no traceback here"
    assert shipped_traceback("no traceback here", keep_values=False) == ""
