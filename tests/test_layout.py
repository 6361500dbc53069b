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


#: Modules whose tests live in another module's file, and why.
TESTED_ELSEWHERE = {
    "__main__.py": "test_cli.py: the command line, with its commands",
    "_check.py": "test_cli.py: check, through the command line as a user runs it",
    "_demo.py": "test_cli.py: demo, through the command line as a user runs it",
    "_complete.py": "test_sink.py: await sink.complete() is the sink's lifecycle",
    "_fork_guard.py": "test_client.py: it guards building the client (and scenarios/test_fork.py)",
    "_frames.py": "scenarios/test_hostile.py: memory and secrets after failed calls",
    "_limits.py": "test_batch.py: CloudWatch's limits, checked where batches are cut (and in test_queue.py)",
    "_stats.py": "test_sink.py: sink.stats (and every file that reads it)",
    "_shipper.py": "test_worker.py: the protocol the worker talks to, with the in-memory shipper",
    "_spool_writer.py": "test_spool.py: the spool's writing half, with the reading half it shares its state with",
}


def test_every_module_has_its_test_file_or_says_where_its_tests_are() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.name == "__init__.py":
            continue
        mirrored = REPO_ROOT / "tests" / f"test_{path.stem.lstrip('_')}.py"
        elsewhere = TESTED_ELSEWHERE.get(path.name)
        assert mirrored.exists() != (elsewhere is not None), path.name
        if elsewhere is not None:
            assert (REPO_ROOT / "tests" / elsewhere.split(":")[0]).exists(), elsewhere


def test_no_module_is_over_the_size_of_one_concern() -> None:
    lengths = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert {name: count for name, count in lengths.items() if count > MAX_MODULE_LINES} == {}
