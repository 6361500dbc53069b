"""``python -m loguru_cloudwatch check``: verify a real setup the way the sink will run it.

Where the credentials and the region come from (never printing a secret), the endpoint, whether the log
group and stream exist or can be created (created as the sink would: ``_client.create_destination``), and
that one test event goes in and can be read back. A problem ends it with a one-line explanation naming
the IAM permission to add.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import time
import uuid
from typing import Any

from . import _client, _env, _errors
from ._cli import USAGE, Failure, line
from ._config import SinkConfig
from ._options import PREFIX
from ._stream_name import render_stream_name

#: How long ``check`` waits for its test event to become readable (CloudWatch is eventually consistent).
READ_BACK_TIMEOUT = 20.0

_CREDENTIAL_SOURCES = {
    "explicit": "passed to the session",
    "env": "environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    "shared-credentials-file": "shared credentials file (~/.aws/credentials or $AWS_SHARED_CREDENTIALS_FILE)",
    "config-file": "AWS config file (~/.aws/config or $AWS_CONFIG_FILE)",
    "custom-process": "credential_process of the profile",
    "assume-role": "role assumed from the profile",
    "assume-role-with-web-identity": "web identity token (AWS_WEB_IDENTITY_TOKEN_FILE, e.g. EKS)",
    "sso": "IAM Identity Center (SSO) login of the profile",
    "login": "aws login session of the profile",
    "container-role": "container role (ECS task role / EKS pod identity)",
    "iam-role": "EC2 instance role (instance metadata)",
    "boto-config": "boto config file",
    "ec2-credentials-file": "EC2 credentials file",
}


class _Api:
    """Calls one CloudWatch Logs operation and turns its failures into a one-line explanation."""

    def __init__(self, client: Any, group: str, identity: str) -> None:
        self.client = client
        self.group = group
        self.identity = identity

    def explain(self, operation: str, error: Exception) -> str:
        import botocore.exceptions

        describe_error = _errors.describe_error
        foreign = _errors.foreign_answer(error)
        if foreign is not None and _errors.error_code(error) in _errors.AUTH_CODES:
            # Refused credentials, but said by something that is not CloudWatch Logs.
            return f"the endpoint refused the credentials ({self.identity}) as {_errors.error_code(error)}: {foreign}"
        if isinstance(error, botocore.exceptions.ClientError):
            code = _errors.error_code(error)
            said = _errors.error_message(error)
            said = f" (AWS said: {said})" if said else ""
            if code in _errors.ACCESS_DENIED_CODES:
                return (
                    f"{operation} was refused ({code}): add the IAM permission logs:{operation} on log group "
                    f"{self.group!r} to the identity in use{said}"
                )
            if code in _errors.UNKNOWN_KEY_CODES:
                return (
                    f"AWS does not recognize the credentials ({self.identity}): wrong or deleted access key, "
                    f"or a key of another partition ({code})"
                )
            if code in _errors.BAD_SECRET_CODES:
                return f"the secret access key does not match the access key id ({self.identity}) ({code})"
            if code in _errors.EXPIRED_CODES:
                return (
                    f"the credentials ({self.identity}) have expired ({code}): refresh them "
                    "(e.g. aws sso login, or a new session token)"
                )
            return f"{operation} failed: {describe_error(error)}"
        if isinstance(error, _errors.UNREACHABLE_ERRORS):
            return (
                f"cannot reach the CloudWatch Logs endpoint {self.client.meta.endpoint_url}: {error} "
                "(check the network, proxy settings and the endpoint URL)"
            )
        return f"{operation} failed: {describe_error(error)}"

    def call(self, operation: str, **params: Any) -> Any:
        from botocore import xform_name

        method = getattr(self.client, xform_name(operation))
        try:
            return method(**params)
        except Exception as error:
            raise Failure(self.explain(operation, error)) from None


def _resolve_region(config: SinkConfig, region_label: str, session: Any) -> tuple[str, str]:
    """The region the sink would use (``_client.find_region``), and where it comes from, in words."""
    region, source = _client.find_region(config, session)
    if region is not None:
        if source == "region_name":
            return region, f"from {region_label}"
        if source == "profile":
            return region, f"from the AWS config file, profile {session.profile_name!r}"
        return region, f"from {source}"
    line("region", "none found")
    raise Failure(
        "no AWS region configured: pass --region, or set LOGURU_CLOUDWATCH_REGION, AWS_REGION or "
        "AWS_DEFAULT_REGION (or region in the AWS config file's profile)"
    )


def _describe_endpoint(client: Any, endpoint_option: str | None, endpoint_label: str | None, region: str) -> str:
    url = client.meta.endpoint_url
    if endpoint_option:
        return f"{url} (from {endpoint_label})"
    for name in ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return f"{url} (from {name})"
    return f"{url} (AWS, region {region})"


def run(args: argparse.Namespace) -> int:
    """Run the check; the exit status (a problem raises ``Failure`` with its one-line explanation)."""
    config, sink_config, labels = _settings(args)
    session, identity = _credentials()
    region, region_source = _resolve_region(sink_config, labels.get(PREFIX + "REGION", PREFIX + "REGION"), session)
    line("region", f"{region} ({region_source})")
    endpoint_label = labels.get(PREFIX + "ENDPOINT_URL", PREFIX + "ENDPOINT_URL")
    try:
        client = session.client(
            "logs", region_name=region, endpoint_url=sink_config.endpoint_url, config=_client.DEFAULT_BOTO_CONFIG
        )
    except Exception as error:
        raise Failure(f"could not create a CloudWatch Logs client for region {region!r}: {error}") from None
    line("endpoint", _describe_endpoint(client, sink_config.endpoint_url, endpoint_label, region))

    group = config.log_group
    stream = render_stream_name(sink_config.log_stream_template)
    api = _Api(client, group, identity)
    permissions = _create_destination(api, sink_config, stream)
    timestamp, token = _write_test_event(api, stream)
    if args.no_read_back:
        line("read back", "skipped (--no-read-back)")
    else:
        elapsed = _read_back(api, group, stream, timestamp, token)
        line("read back", f"the test event came back after {elapsed:.1f} s")
    print(f"OK: this setup can ship records to log group {group!r}.")
    print(f"  IAM permissions the sink needs: {', '.join(permissions)}")
    return 0


def _settings(args: argparse.Namespace) -> tuple[_env.EnvConfig, SinkConfig, dict[str, str]]:
    """The configuration: the command line's options over the ``LOGURU_CLOUDWATCH_*`` variables (named as
    options in errors), validated as the sink would; and those labels."""
    environ = dict(os.environ)
    labels: dict[str, str] = {}
    for value, suffix, label in (
        (args.group, "LOG_GROUP", "--group"),
        (args.stream, "LOG_STREAM", "--stream"),
        (args.region, "REGION", "--region"),
        (args.endpoint_url, "ENDPOINT_URL", "--endpoint-url"),
    ):
        if value is not None:
            environ[PREFIX + suffix] = value
            labels[PREFIX + suffix] = label
    try:
        config = _env.read_env(environ, labels)
        if config is None:
            raise Failure(f"no log group to check: pass --group NAME or set {_env.GROUP_VARIABLE}", USAGE)
        sink_config = _env.validate(config)
    except ValueError as error:
        raise Failure(str(error), USAGE) from None
    from_env = [name for name, _ in config.raw if name not in labels]
    print(f"Checking delivery to CloudWatch Logs, log group {config.log_group!r}", flush=True)
    line("settings", f"{len(from_env)} {PREFIX}* variable(s) set, valid" if from_env else f"no {PREFIX}* set")
    for name in config.unknown:
        line("", f"warning: {name} is not a variable of this package (ignored)")
    return config, sink_config, labels


def _credentials() -> tuple[Any, str]:
    """The session the sink would use (boto3's default chain), and the identity in words (never a secret)."""
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session()
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        raise Failure(f"AWS credentials could not be loaded: {_errors.describe_error(error)}") from None
    if credentials is None:
        line("credentials", "none found")
        raise Failure(
            "no AWS credentials found (looked in: environment, shared credentials and config files, SSO, "
            "container and instance metadata): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "AWS_PROFILE, or run with an IAM role"
        )
    try:
        frozen = credentials.get_frozen_credentials()
    except Exception as error:
        raise Failure(
            f"AWS credentials could not be refreshed ({credentials.method}): {_errors.describe_error(error)}"
        ) from None
    method = str(credentials.method)
    access_key = str(frozen.access_key or "")
    # The last 4 characters of the access key id at most (its start only tells the key's kind): never a secret.
    key_hint = f"access key id ending in {access_key[-4:]}" if len(access_key) >= 12 else "access key id (short)"
    source = _CREDENTIAL_SOURCES.get(method, "")
    profile = f", profile {session.profile_name!r}" if os.environ.get("AWS_PROFILE") else ""
    temporary = ", temporary (with a session token)" if frozen.token else ""
    line("credentials", f"{method}{profile}{': ' + source if source else ''}; {key_hint}{temporary}")
    return session, f"{method}, {key_hint}"


def _create_destination(api: _Api, config: SinkConfig, stream: str) -> list[str]:
    """Create the group and stream if missing, as the sink would; the IAM permissions the sink needs."""
    group = api.group
    created: set[str] = set()
    warnings: list[str] = []

    def warn(_: str, error: Exception) -> None:  # the only warning: the retention policy was refused
        warnings.append(api.explain("PutRetentionPolicy", error))

    # The check always creates the stream it writes to (a stream of the check's own pid, by default).
    failure = _client.create_destination(
        api.client, dataclasses.replace(config, create_log_stream=True), stream, warn, created
    )
    if failure is not None and failure.error is None:  # the group is missing and may not be created
        line("log group", f"{group}: does not exist")
        raise Failure(
            f"log group {group!r} does not exist and {PREFIX}CREATE_LOG_GROUP is false: create it "
            f"(aws logs create-log-group --log-group-name {group}) or let the sink create it"
        )
    if failure is not None and failure.error is not None:
        raise Failure(api.explain(failure.operation, failure.error))
    permissions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    group_state = "exists"
    if "group" in created:
        group_state = "created by this check (the sink would have created it)"
        if "retention" in created:
            group_state += f", retention {config.retention_days} days"
        group_state += "".join(f"; warning: {text}" for text in warnings)
        permissions.insert(0, "logs:CreateLogGroup")
        if config.retention_days is not None:
            permissions.append("logs:PutRetentionPolicy")
    elif config.create_log_group:
        permissions.insert(0, "logs:CreateLogGroup (only if the group may be missing)")
    line("log group", f"{group}: {group_state}")
    if "stream" in created:  # it stays: say how to remove it (a check per pid makes a stream per run)
        removal = f"aws logs delete-log-stream --log-group-name {group} --log-stream-name {stream}"
        line("log stream", f"{stream}: created by this check (it stays; remove it with: {removal})")
    else:
        line("log stream", f"{stream}: exists")
    return permissions


def _write_test_event(api: _Api, stream: str) -> tuple[int, str]:
    """Send one test event; its timestamp and the token it carries."""
    token = uuid.uuid4().hex
    now = datetime.datetime.now(datetime.timezone.utc)
    document = {
        "time": now.isoformat(),
        "level": "INFO",
        "message": f"loguru-cloudwatch check: test event {token}",
        "logger": "loguru_cloudwatch.check",
    }
    timestamp = int(now.timestamp() * 1000)
    response = api.call(
        "PutLogEvents",
        logGroupName=api.group,
        logStreamName=stream,
        logEvents=[{"timestamp": timestamp, "message": json.dumps(document)}],
    )
    if response.get("rejectedLogEventsInfo"):
        raise Failure(f"CloudWatch rejected the test event: {response['rejectedLogEventsInfo']}")
    line("write", "PutLogEvents accepted 1 test event")
    return timestamp, token


def _read_back(api: _Api, group: str, stream: str, timestamp: int, token: str) -> float:
    """Poll until the test event is readable (GetLogEvents, else FilterLogEvents); seconds it took."""
    started = time.monotonic()
    operation = "GetLogEvents"
    while True:
        try:
            if operation == "GetLogEvents":
                events = api.client.get_log_events(
                    logGroupName=group, logStreamName=stream, startTime=timestamp, startFromHead=True
                )["events"]
            else:
                events = api.client.filter_log_events(
                    logGroupName=group, logStreamNames=[stream], startTime=timestamp, filterPattern=f'"{token}"'
                )["events"]
        except Exception as error:
            if _errors.error_code(error) in _errors.ACCESS_DENIED_CODES and operation == "GetLogEvents":
                operation = "FilterLogEvents"
                continue
            if _errors.error_code(error) in _errors.ACCESS_DENIED_CODES:
                raise Failure(
                    "the test event was sent, but reading it back was refused: add the IAM permission "
                    "logs:GetLogEvents (or logs:FilterLogEvents) to verify delivery, or run the check with "
                    "--no-read-back (the sink itself does not read)"
                ) from None
            raise Failure(api.explain(operation, error)) from None
        if any(token in event.get("message", "") for event in events):
            return time.monotonic() - started
        if time.monotonic() - started > READ_BACK_TIMEOUT:
            raise Failure(
                f"PutLogEvents accepted the test event, but it was not readable after {READ_BACK_TIMEOUT:g} s: "
                f"look for 'test event {token}' in {group}/{stream} later"
            )
        time.sleep(0.5)
