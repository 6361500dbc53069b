"""Reaching CloudWatch: building the boto3 client behind a credential guard, the region, creating the
group and the stream.

boto3 is imported with this module, which the first sink imports when it starts (``_sink``), never
later: importing it for the first time during interpreter shutdown fails, and the final drain happens at
shutdown. So is the idna codec, which the first connection looks up: imported lazily by the worker thread, a
fork at that moment left the child with a half-imported ``encodings.idna`` and every PutLogEvents failed
with "unknown encoding: idna" (seen once under CPU load, in a forked child).
"""

from __future__ import annotations

import contextlib
import encodings.idna  # noqa: F401  (see below)
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import orjson
from botocore.config import Config

from ._config import SinkConfig
from ._errors import describe_error, error_code
from ._fork_guard import FORK_GUARD

#: botocore settings chosen for a logger. The sink retries whole batches itself (with backoff, counted
#: in ``stats.retries``), so botocore makes a single attempt per call: the two layers never multiply.
#: Timeouts are short because a logger's shutdown must be bounded; a 1 MiB PutLogEvents normally
#: completes well under a second.
DEFAULT_BOTO_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    # The sink builds every request itself within the API's rules; botocore's validation of each event
    # would double the worker's CPU per event.
    parameter_validation=False,
    connect_timeout=5,
    read_timeout=15,
    user_agent_extra="loguru-cloudwatch",
)


@dataclass
class Connection:
    """A ready client, or the reason there is none yet."""

    client: Any
    problem: str | None


class PutBodyEncoder:
    """Encodes PutLogEvents request bodies with orjson instead of botocore's serializer.

    botocore's JSON serializer walks every event in Python and was most of the worker's CPU per event. The
    worker calls ``put_log_events`` with an empty ``logEvents`` list (cheap to serialize) after setting
    ``body``; this ``before-call`` handler, registered first, puts the complete body in its place, before
    any other handler sees the request and before it is signed. Only used on clients the sink built.
    """

    def __init__(self, client: Any) -> None:
        self.body: bytes | None = None
        client.meta.events.register_first(
            "before-call.cloudwatch-logs.PutLogEvents", self._substitute, unique_id=f"loguru-cloudwatch-{id(self)}"
        )

    def _substitute(self, params: dict[str, Any], **_: Any) -> None:
        if self.body is not None:
            params["body"] = self.body

    @staticmethod
    def encode(group: str, stream: str, log_events: list[dict[str, Any]]) -> bytes:
        return orjson.dumps({"logGroupName": group, "logStreamName": stream, "logEvents": log_events})


def find_region(config: SinkConfig, session: Any) -> tuple[str | None, str]:
    """The region the sink uses, and where it comes from.

    ``region_name`` (source ``"region_name"``), then the region of a session the user passed
    (``"session"``), then ``AWS_REGION`` (which botocore ignores but Lambda and many tools set), then
    botocore's own sources: ``AWS_DEFAULT_REGION``, then the profile (``"profile"``). ``(None, "")`` when
    there is none.
    """
    if config.region_name:
        return config.region_name, "region_name"
    if config.session is not None and config.session.region_name:
        return str(config.session.region_name), "session"
    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"], "AWS_REGION"
    region = session.region_name
    if not region:
        return None, ""
    return str(region), "AWS_DEFAULT_REGION" if os.environ.get("AWS_DEFAULT_REGION") == region else "profile"


def resolve_region(config: SinkConfig, session: Any) -> str | None:
    """The region the sink uses (see ``find_region``)."""
    return find_region(config, session)[0]


def connect(config: SinkConfig, session: Any) -> tuple[Connection, Any]:
    """The credential guard: build a client only when credentials and a region can be found.

    Returns the connection and the session to reuse at the next check (a found-nothing session caches
    nothing, so calling again later sees credentials that appeared meanwhile). No API call is made.
    """
    if config.client is not None:
        return Connection(config.client, None), session
    with FORK_GUARD.lock:
        if session is None:
            session = config.session if config.session is not None else boto3.Session()
        _build_credential_resolver(session)
    region = resolve_region(config, session)
    if not region:
        return Connection(
            None,
            "no AWS region configured: pass region_name=..., or set AWS_REGION or AWS_DEFAULT_REGION",
        ), session
    try:
        # What may take seconds, without the guard. The session keeps what it found: building the client
        # below does not look again.
        credentials = session.get_credentials()
    except Exception as error:
        return Connection(None, f"AWS credentials could not be loaded: {describe_error(error)}"), session
    if credentials is None:
        return Connection(
            None,
            "no AWS credentials found (environment, shared credentials/config files, SSO, container or "
            "instance role); records are kept in memory until credentials appear",
        ), session
    boto_config = DEFAULT_BOTO_CONFIG if config.boto_config is None else DEFAULT_BOTO_CONFIG.merge(config.boto_config)
    with FORK_GUARD.lock:
        client = build_client(session, region, config.endpoint_url, boto_config)
    return Connection(client, None), session


def _build_credential_resolver(session: Any) -> None:
    """Make the session's credential resolver now, under the fork guard: its container and instance
    metadata fetchers make an SSL context each. Looking for credentials with it comes later, without
    the guard (their HTTP requests make no new SSL context)."""
    botocore_session = getattr(session, "_session", None)  # a boto3.Session's botocore session
    if botocore_session is None:
        return
    # A bad profile, say, raises here: get_credentials() raises it again, and it is reported from there.
    with contextlib.suppress(Exception):
        botocore_session.get_component("credential_provider")


def build_client(session: Any, region: str, endpoint_url: str | None, boto_config: Config) -> Any:
    """``session.client("logs", ...)``: where the SSL contexts are made (called under the fork guard)."""
    return session.client("logs", region_name=region, endpoint_url=endpoint_url, config=boto_config)


@dataclass(frozen=True)
class CreateFailure:
    """Why the log group or stream could not be created; ``error`` is None for a configuration refusal."""

    message: str
    error: Exception | None = None
    #: The API operation that failed (``"CreateLogGroup"``, ``"CreateLogStream"``; "" for a refusal).
    operation: str = ""


def create_destination(
    client: Any,
    config: SinkConfig,
    stream: str,
    warn: Callable[[str, Exception], None],
    created: set[str] | None = None,
) -> CreateFailure | None:
    """Create the log stream, and the log group first if it is missing too.

    Returns None on success (including "already exists", e.g. created by another process) or why it could
    not be done. Problems that do not stop delivery (a retention policy refused) go to ``warn``, with the
    error. ``created`` collects what this call made: ``"group"``, ``"retention"``, ``"stream"``.
    """
    created = set() if created is None else created
    if not config.create_log_stream:
        return CreateFailure(
            f"log group {config.log_group!r} or log stream {stream!r} does not exist and create_log_stream=False"
        )
    failure = _create_stream(client, config, stream, created)
    if failure is None or failure.error is None or error_code(failure.error) != "ResourceNotFoundException":
        return failure
    if not config.create_log_group:
        return CreateFailure(f"log group {config.log_group!r} does not exist and create_log_group=False")
    return _create_group(client, config, warn, created) or _create_stream(client, config, stream, created)


def _create_stream(client: Any, config: SinkConfig, stream: str, created: set[str]) -> CreateFailure | None:
    try:
        client.create_log_stream(logGroupName=config.log_group, logStreamName=stream)
    except Exception as error:
        if error_code(error) != "ResourceAlreadyExistsException":
            message = f"could not create log stream {stream!r}: {describe_error(error)}"
            return CreateFailure(message, error, "CreateLogStream")
    else:
        created.add("stream")
    return None


def _create_group(
    client: Any, config: SinkConfig, warn: Callable[[str, Exception], None], created: set[str]
) -> CreateFailure | None:
    params: dict[str, Any] = {"logGroupName": config.log_group}
    if config.kms_key_id:
        params["kmsKeyId"] = config.kms_key_id
    if config.tags:
        params["tags"] = config.tags
    if config.log_group_class:
        params["logGroupClass"] = config.log_group_class
    try:
        client.create_log_group(**params)
    except Exception as error:
        if error_code(error) == "ResourceAlreadyExistsException":
            return None  # someone else's group: its settings are not ours to change
        message = f"could not create log group {config.log_group!r}: {describe_error(error)}"
        return CreateFailure(message, error, "CreateLogGroup")
    created.add("group")
    if config.retention_days is not None:
        try:
            client.put_retention_policy(logGroupName=config.log_group, retentionInDays=config.retention_days)
        except Exception as error:
            text = f"created log group {config.log_group!r} but could not set its retention: {describe_error(error)}"
            warn(text, error)
        else:
            created.add("retention")
    return None
