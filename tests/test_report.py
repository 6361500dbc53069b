"""The problem kinds (``_report.PROBLEM_KINDS``): named once, all used, and the README's table is theirs."""

from __future__ import annotations

import re

from loguru_cloudwatch import _report
from tests.helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "loguru_cloudwatch"


def kinds_table() -> str:
    rows = ["| kind | meaning |", "|---|---|"]
    rows += [f"| `{kind}` | {meaning} |" for kind, meaning in _report.PROBLEM_KINDS.items()]
    return "\n".join(rows)


def test_the_readme_lists_every_problem_kind() -> None:
    expected = kinds_table()
    assert expected in (REPO_ROOT / "README.md").read_text(encoding="utf-8"), f"README.md should contain:\n{expected}"


def test_every_kind_is_a_named_constant_that_the_package_reports() -> None:
    constants = {name: value for name, value in vars(_report).items() if name.isupper() and isinstance(value, str)}
    assert sorted(constants.values()) == sorted(_report.PROBLEM_KINDS)
    assert len(_report.PROBLEM_KINDS) == 12
    sources = "\n".join(path.read_text() for path in PACKAGE.glob("*.py") if path.name != "_report.py")
    for name, kind in constants.items():
        assert re.search(rf"\b{name}\b", sources), f"{name} is never reported"
        assert f'"{kind}"' not in sources, f"{kind!r} is spelled out instead of using {name}"
