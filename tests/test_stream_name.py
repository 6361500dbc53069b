"""Stream name templates (``_stream_name``), without I/O; the option's errors are in ``test_config.py``."""

from __future__ import annotations

import datetime
import os
import socket
import sys

import pytest

from loguru_cloudwatch._stream_name import FIELDS, render_stream_name, template_problem


def _utc_today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def test_every_field_renders_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/srv/app/worker.py"])
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    name = render_stream_name("{hostname}/{pid}/{program}/{date}")
    assert name in {f"{socket.gethostname()}/{os.getpid()}/worker.py/{day}" for day in (today, _utc_today())}
    assert {"hostname", "pid", "program", "date"} == FIELDS


def _utc_today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


@pytest.mark.parametrize("argv", [[], [""], ["-c"]])
def test_a_program_without_a_script_name_is_python(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    assert render_stream_name("{program}") == "python"


def test_refused_characters_are_replaced_and_the_name_is_cut() -> None:
    assert render_stream_name("a:b*c") == "a_b_c"
    assert render_stream_name("s" * 600) == "s" * 512


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{hostname}/{pid}", None),
        ("{user}", "only the fields {date}, {hostname}, {pid}, {program}, not ['user']"),
        ("{pid", "a valid template"),
        ("{date:%Y}", "a template that can be rendered"),
        ("", "a template that renders to at least one character"),
    ],
)
def test_template_problems_say_what_is_expected(template: str, problem: str | None) -> None:
    found = template_problem(template)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found
