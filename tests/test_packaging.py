"""What the distribution says about itself: one version, the license it ships, a changelog entry."""

from __future__ import annotations

import email.parser
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

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


# --------------------------------------------------------------------------- the built distributions

#: What an sdist may be made from: the checkout without its VCS, virtualenvs, caches and build outputs.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".venv-*", "build", "dist", "*.egg-info", "__pycache__", "*.py[cod]", ".*_cache"
)
PACKAGE_FILES = {f"loguru_cloudwatch/{path.name}" for path in (REPO_ROOT / "loguru_cloudwatch").glob("*.py")} | {
    "loguru_cloudwatch/py.typed"
}


@dataclass
class Built:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """``python -m build`` (sdist, then the wheel from it), offline, on a copy of the checkout.

    The copy keeps the checkout clean: setuptools writes its egg-info and build/ next to the sources.
    """
    source = tmp_path_factory.mktemp("source") / "loguru-cloudwatch"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Built(sdist, wheel)


def sdist_names(sdist: Path) -> set[str]:
    """The sdist's files, relative to its top directory."""
    with tarfile.open(sdist) as archive:
        names = [member.name for member in archive.getmembers() if member.isfile()]
    return {name.split("/", 1)[1] for name in names}


def test_built_wheel_holds_the_package_its_metadata_and_the_license_only(built: Built) -> None:
    version = loguru_cloudwatch.__version__
    assert built.wheel.name == f"loguru_cloudwatch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        license_text = wheel.read(f"loguru_cloudwatch-{version}.dist-info/licenses/LICENSE").decode()
    dist_info = {name for name in names if name.startswith(f"loguru_cloudwatch-{version}.dist-info/")}
    assert names - dist_info == PACKAGE_FILES  # no tests/, bench/, examples/, nothing else
    assert {name.split("/", 1)[1] for name in dist_info} == {
        "METADATA",
        "WHEEL",
        "RECORD",
        "top_level.txt",
        "licenses/LICENSE",
    }
    assert license_text == (REPO_ROOT / "LICENSE").read_text()


def test_built_wheel_metadata_says_the_version_python_and_classifiers(built: Built) -> None:
    version = loguru_cloudwatch.__version__
    with zipfile.ZipFile(built.wheel) as wheel:
        metadata = email.parser.Parser().parsestr(
            wheel.read(f"loguru_cloudwatch-{version}.dist-info/METADATA").decode()
        )
    assert (metadata["Name"], metadata["Version"]) == ("loguru-cloudwatch", version)
    assert metadata["Requires-Python"] == ">=3.10"
    assert (metadata["License-Expression"], metadata["License-File"]) == ("MIT", "LICENSE")
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    # One classifier per minor version, from Requires-Python's minimum to the newest one tested (.ci/run).
    minors = [c for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert minors == [f"Programming Language :: Python :: 3.{minor}" for minor in (10, 11, 12, 13)]
    assert "Typing :: Typed" in classifiers and "License :: OSI Approved :: MIT License" not in classifiers
    required = {re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0] for line in metadata.get_all("Requires-Dist")}
    assert {"loguru", "boto3", "orjson"} <= required
    assert metadata.get_payload().startswith("# loguru-cloudwatch")  # README.md is the long description


def test_built_sdist_holds_what_the_tests_read(built: Built) -> None:
    names = sdist_names(built.sdist)
    read_by_tests = {
        path.relative_to(REPO_ROOT).as_posix()
        for folder in ("tests", "examples")
        for path in (REPO_ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    documents = {"README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml"}
    assert read_by_tests | documents | PACKAGE_FILES <= names
    assert [name for name in names if name.startswith(("bench/", ".ci/", ".git")) or ".pyc" in name] == []


def test_built_sdist_runs_its_own_file_reading_tests(built: Built, tmp_path: Path) -> None:
    # The tests that read README.md, CHANGELOG.md, pyproject.toml and the layout, run from the unpacked
    # sdist (whose own building tests are left out: they would build it again).
    with tarfile.open(built.sdist) as archive:
        # filter="data" (3.10.12+) is what 3.14 does by default and what 3.12+ warn about without it.
        archive.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (unpacked,) = tmp_path.iterdir()
    files = ["tests/test_layout.py", "tests/test_options.py", "tests/test_report.py", "tests/test_packaging.py"]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not built_", *files]
    result = subprocess.run(command, cwd=unpacked, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b(\d+) passed", result.stdout) and "deselected" in result.stdout, result.stdout
