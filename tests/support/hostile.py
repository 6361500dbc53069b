"""Hostile values: objects on which str(), repr(), isinstance(), truth tests or iteration raise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class Unprintable:
    """Neither str() nor repr() works on it."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Typeless:
    """Even isinstance() raises on it."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class")


class Falsy:
    """An ``extra`` that breaks every use: truth value, iteration, item access."""

    def __bool__(self) -> bool:
        raise RuntimeError("no bool")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iter")

    def items(self) -> Any:
        raise RuntimeError("no items")


def bare_assert(value: object) -> None:
    """A bare ``assert`` in code pytest does not rewrite (a test module's assert gets pytest's message)."""
    assert value == "something else"
