"""AWS without an AWS account: fake credentials, boto3 clients on moto, creating and reading back streams.

Shared by the tests (``conftest.aws_env``, every read-back) and the benchmarks (``bench/_common``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import REPO_ROOT

REGION = "us-east-1"


# --------------------------------------------------------------------------- a hermetic environment


def fake_aws_variables(access_key: str, config_file: str, credentials_file: str) -> dict[str, str]:
    """The AWS variables of a hermetic run: throwaway credentials, ``REGION``, no instance metadata, and
    config and credentials files that hold nothing. Every other ``AWS_*`` variable is to be removed."""
    return {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": config_file,
        "AWS_SHARED_CREDENTIALS_FILE": credentials_file,
    }


def fake_aws_env(access_key: str = "testing") -> dict[str, str]:
    """An environment for a child process: this one's without any ``AWS_*`` variable, plus
    :func:`fake_aws_variables` (no config files: ``os.devnull``), with the repo root first on PYTHONPATH."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(fake_aws_variables(access_key, os.devnull, os.devnull))
    pythonpath = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + pythonpath if pythonpath else "")
    return env


def use_fake_aws_env(access_key: str = "testing") -> None:
    """Apply :func:`fake_aws_env` to this process (before boto3 builds any session)."""
    target = fake_aws_env(access_key)
    for name in list(os.environ):
        if name.startswith("AWS_") and name not in target:
            del os.environ[name]
    os.environ.update(target)


# --------------------------------------------------------------------------- clients / reading back


def make_logs_client(
    endpoint_url: str,
    *,
    max_attempts: int | None = None,
    connect_timeout: float = 5,
    read_timeout: float = 10,
) -> Any:
    """A boto3 ``logs`` client pointed at ``endpoint_url`` (moto or a FaultProxy).

    ``max_attempts`` is the *total* number of attempts (1 = no botocore retries).
    """
    retries: dict[str, Any] = {"mode": "standard"}
    if max_attempts is not None:
        retries["total_max_attempts"] = max_attempts
    config = Config(
        retries=retries,  # type: ignore[arg-type]
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    # A fresh Session so no state (cached credentials, handlers) leaks between tests.
    return boto3.session.Session().client("logs", region_name=REGION, endpoint_url=endpoint_url, config=config)


def create_group_and_stream(client: Any, group: str, stream: str) -> None:
    """Create ``group`` and ``stream``, tolerating either already existing."""
    for call, kwargs in (
        (client.create_log_group, {"logGroupName": group}),
        (client.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
    ):
        try:
            call(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise


def read_events(client: Any, group: str, stream: str, *, missing_ok: bool = True) -> list[dict[str, Any]]:
    """Every event of ``stream`` oldest first, as ``{"timestamp", "message"}`` dicts.

    With ``missing_ok`` a missing group/stream reads as ``[]`` so this can be polled
    with :func:`tests.support.waiting.wait_for` while the sink is still creating them.
    """
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "logStreamName": stream,
        "startFromHead": True,
    }
    token: str | None = None
    while True:
        try:
            page = client.get_log_events(**kwargs)
        except ClientError as exc:
            if missing_ok and exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        events.extend({"timestamp": e["timestamp"], "message": e["message"]} for e in page["events"])
        # The documented end condition: the forward token stops changing.
        next_token = page.get("nextForwardToken")
        if not next_token or next_token == token:
            return events
        token = next_token
        kwargs["nextToken"] = next_token


def read_messages(client: Any, group: str, stream: str, **kwargs: Any) -> list[str]:
    """Messages of ``stream`` oldest first."""
    return [e["message"] for e in read_events(client, group, stream, **kwargs)]


def read_json(client: Any, group: str, stream: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Messages of ``stream`` parsed as JSON, oldest first."""
    return [json.loads(m) for m in read_messages(client, group, stream, **kwargs)]
