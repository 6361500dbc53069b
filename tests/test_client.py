"""Building the client (``_client``): what one sink waits for holds back neither another sink nor a fork.

The slow credential source is a real one: a profile whose ``credential_process`` takes seconds (as an
SSO helper, a vault agent or an unreachable instance metadata service can), run by botocore itself.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from loguru import logger

from loguru_cloudwatch import CloudWatchSink
from tests.support.aws import create_group_and_stream, read_messages
from tests.support.programs import run_python
from tests.support.waiting import wait_for

GROUP = "client-group"
SLOW_SECONDS = 4.0

#: A credential_process: says it started (a marker file), then takes its time.
SLOW_CREDENTIALS = """\
import json, pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
time.sleep(float(sys.argv[2]))
print(json.dumps({"Version": 1, "AccessKeyId": "slow", "SecretAccessKey": "slow-secret"}))
"""


@pytest.fixture
def slow_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile ``slow`` whose credentials take SLOW_SECONDS to come; returns the marker of its start."""
    script = tmp_path / "slow_credentials.py"
    script.write_text(SLOW_CREDENTIALS)
    marker = tmp_path / "lookup-started"
    config = tmp_path / "aws-config"
    config.write_text(
        f"[profile slow]\nregion = us-east-1\ncredential_process = {sys.executable} {script} {marker} {SLOW_SECONDS}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return marker


def test_a_sink_waiting_for_slow_credentials_does_not_delay_another_sink(
    endpoint: str, logs_client: Any, slow_profile: Path
) -> None:
    create_group_and_stream(logs_client, GROUP, "slow")
    create_group_and_stream(logs_client, GROUP, "fast")
    slow = CloudWatchSink(
        GROUP, "slow", serialize=False, endpoint_url=endpoint, flush_interval=60,
        session=boto3.Session(profile_name="slow"),
    )  # fmt: skip
    wait_for(slow_profile.exists, timeout=10, message="the slow credential lookup started")
    fast = CloudWatchSink(GROUP, "fast", serialize=False, endpoint_url=endpoint, flush_interval=60)
    logger.add(slow, format="{message}")
    logger.add(fast, format="{message}")
    logger.info("to both")

    started = time.monotonic()
    assert fast.force_flush(5) is True
    assert time.monotonic() - started < 2.0  # it did not wait for the other sink's lookup
    assert read_messages(logs_client, GROUP, "fast") == ["to both"]
    assert slow.stats.sent == 0  # still looking
    assert slow.force_flush(SLOW_SECONDS + 5) is True  # and it delivers once its credentials come
    assert read_messages(logs_client, GROUP, "slow") == ["to both"]


FORK_DURING_SLOW_LOOKUP = """\
import json, os, pathlib, time
import boto3
from loguru_cloudwatch import CloudWatchSink

sink = CloudWatchSink("client-group", "{pid}", endpoint_url=os.environ["T_URL"],
                      session=boto3.Session(profile_name="slow"), shutdown_timeout=0.5)
marker = pathlib.Path(os.environ["T_MARKER"])
deadline = time.monotonic() + 20
while not marker.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
assert marker.exists()
started = time.monotonic()
pid = os.fork()  # what a pre-fork server does while the sink looks for credentials
if pid == 0:
    os._exit(0)
took = time.monotonic() - started
os.waitpid(pid, 0)
print(json.dumps({"fork": took}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_fork_does_not_wait_for_a_slow_credential_lookup(endpoint: str, slow_profile: Path) -> None:
    result = run_python(
        textwrap.dedent(FORK_DURING_SLOW_LOOKUP),
        timeout=SLOW_SECONDS + 30,
        env={"T_URL": endpoint, "T_MARKER": str(slow_profile)},
    )
    assert result.returncode == 0, result.stderr
    took = json.loads(result.stdout.strip().splitlines()[-1])["fork"]
    assert took < 1.0, took  # it waited 5 s (the fork guard's limit) when the lookup held the guard
