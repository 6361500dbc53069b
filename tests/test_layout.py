"""The package's layout as the README describes it: every module in its Layout table, none too long."""

from __future__ import annotations

import re

from tests.support import REPO_ROOT

PACKAGE = REPO_ROOT / "loguru_cloudwatch"
#: A module longer than this holds more than one concern (the guide says ~350).
MAX_MODULE_LINES = 360


def layout_section() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index("## Layout") :]


def test_every_module_is_in_the_readme_layout_and_nothing_else_is() -> None:
    named = set(re.findall(r"`(_{0,2}\w+\.py)`", layout_section()))
    modules = {path.name for path in PACKAGE.glob("*.py")} - {"__init__.py"}
    assert modules - named == set(), "modules missing from the README's Layout"
    assert named - modules == set(), "the README's Layout names modules that do not exist"


def test_no_module_is_over_the_size_of_one_concern() -> None:
    lengths = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert {name: count for name, count in lengths.items() if count > MAX_MODULE_LINES} == {}
