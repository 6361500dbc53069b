"""How the sink reports its own problems (``_report``): without ``on_error``, on stderr, rate-limited per
kind, and never through loguru or the ``logging`` module (that would feed the sink its own reports); the
problem kinds are named constants, all used, and the README's table is theirs.

What ``on_error`` receives is checked where each problem arises (``test_cloudwatch.py``, ``test_worker.py``,
``test_client.py``, ``test_queue.py``); credentials never appear in a report (``test_client.py``); an
``on_error`` that logs through loguru does not loop (``tests/scenarios/test_reentrancy.py``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from loguru import logger

from loguru_cloudwatch import _report
from tests.support import REPO_ROOT
from tests.support.aws import create_group_and_stream
from tests.support.faults import FaultInjector, Switch
from tests.support.sinks import FLUSH_DRIVEN_PACING, TextStream, log_many
from tests.support.waiting import wait_for

GROUP = "report-group"
STREAM = "report-stream"

SINK_DEFAULTS: dict[str, Any] = dict(FLUSH_DRIVEN_PACING)  # a test may add "_timings"
DESTINATION = TextStream(GROUP, STREAM, SINK_DEFAULTS)
add_sink, stored, wait_stored = DESTINATION.add_sink, DESTINATION.stored, DESTINATION.wait_stored


def test_problems_go_to_stderr_rate_limited_and_never_through_loguru_or_logging(
    endpoint: str,
    logs_client: Any,
    fault_injector: FaultInjector,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    no_jitter: None,
) -> None:
    caplog.set_level(logging.DEBUG)  # every record of every standard logger
    seen_by_loguru: list[str] = []
    logger.add(lambda message: seen_by_loguru.append(str(message)), level=0, format="{name} {message}")
    create_group_and_stream(logs_client, GROUP, STREAM)
    faults = Switch("throttle")
    fault_injector.set_schedule(faults)
    sink = add_sink(endpoint, max_retries=2, retry_delay=0.001, flush_interval=0.02)

    messages = log_many("noisy", 5)
    # Many throttles: at least 5 failed rounds, each with 3 "throttled" reports and a "delivery_failed".
    wait_for(lambda: fault_injector.calls >= 15, message="15 throttled calls")
    faults.off()
    assert wait_stored(logs_client, 5) == messages
    wait_for(lambda: sink.stats.sent == 5, message="sent counted")

    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("loguru-cloudwatch: ")]
    # One line per kind in the 30 s window, however many reports.
    assert len([line for line in lines if "will retry" in line]) == 1, lines
    assert len([line for line in lines if re.search(r"\d+ attempts failed", line)]) == 1, lines
    assert len(lines) == 2, lines
    assert "ThrottlingException" in lines[0]

    problem_texts = [line[len("loguru-cloudwatch: ") :] for line in lines]
    for record in caplog.records:
        assert not record.name.startswith("loguru_cloudwatch"), record
        text = record.getMessage()
        assert not any(problem in text for problem in problem_texts), text
        assert "loguru-cloudwatch: " not in text
    assert len(seen_by_loguru) == 5  # the application's own records, nothing else
    assert all(" noisy-" in line for line in seen_by_loguru)


# --------------------------------------------------------------------------- problem kinds

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
    assert len(_report.PROBLEM_KINDS) == 16
    sources = "\n".join(path.read_text() for path in PACKAGE.glob("*.py") if path.name != "_report.py")
    for name, kind in constants.items():
        assert re.search(rf"\b{name}\b", sources), f"{name} is never reported"
        assert f'"{kind}"' not in sources, f"{kind!r} is spelled out instead of using {name}"
