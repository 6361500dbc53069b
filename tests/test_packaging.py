"""What the distribution says about itself: one version, the license it ships, a changelog entry."""

from __future__ import annotations

import importlib.metadata

import loguru_cloudwatch
from tests.support import REPO_ROOT


def test_the_version_is_written_once_and_installed_as_such() -> None:
    assert importlib.metadata.version("loguru-cloudwatch") == loguru_cloudwatch.__version__
    project = (REPO_ROOT / "pyproject.toml").read_text().split("[project]")[1].split("\n[")[0]
    assert 'dynamic = ["version"]' in project and "\nversion =" not in project  # from __init__.py


def test_the_license_is_shipped_and_declared() -> None:
    metadata = importlib.metadata.metadata("loguru-cloudwatch")
    assert metadata["License-Expression"] == "MIT"
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_changelog_has_an_entry_for_this_version() -> None:
    assert f"## {loguru_cloudwatch.__version__} " in (REPO_ROOT / "CHANGELOG.md").read_text()
