"""python -m loguru_cloudwatch: try the sink with no AWS account (demo), or check a real setup (check).

``demo`` starts a local CloudWatch-compatible endpoint (moto's server, from the ``demo`` extra) on
127.0.0.1, ships a few records through a real ``CloudWatchSink``, reads them back through the CloudWatch
Logs API and prints them.

``check`` verifies a real setup: where the credentials and the region come from (never printing a
secret), the endpoint, whether the log group and stream exist or can be created, and that one test event
goes in and can be read back. It exits non-zero with a one-line explanation, naming the IAM permission
to add, when something is missing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import uuid
from typing import Any

#: Exit status of a check that found a problem; argparse uses 2 for usage errors, and so do bad options.
FAILED = 1
USAGE = 2

#: How long ``check`` waits for its test event to become readable (CloudWatch is eventually consistent).
READ_BACK_TIMEOUT = 20.0

_ENV_HELP = "default: $LOGURU_CLOUDWATCH_{}"


class _Failure(Exception):
    """A check that failed: ``str()`` is the one-line explanation."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


def _line(label: str, text: str) -> None:
    print(f"  {label:<12} {text}", flush=True)


# --------------------------------------------------------------------------- demo


def _format_event(document: dict[str, Any]) -> str:
    """One read-back event as a terminal line: time, level, message, then the extra fields."""
    from ._document import RESERVED_FIELDS

    clock = str(document.get("time", ""))[11:23]
    head = f"{clock} {document.get('level', ''):<8} {document.get('message', '')}"
    extras = [
        f"{key}={json.dumps(value, ensure_ascii=False)}"
        for key, value in document.items()
        if key not in RESERVED_FIELDS and key != "exception"
    ]
    exception = document.get("exception")
    if isinstance(exception, dict):
        extras.append(f"exception={exception.get('type')}: {exception.get('value')}")
    return head + ("   " + " ".join(extras) if extras else "")


def _demo(_: argparse.Namespace) -> int:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise _Failure(
            "the demo needs its local endpoint (moto's server): pip install 'loguru-cloudwatch[demo]'", USAGE
        ) from None
    import logging

    import boto3
    from loguru import logger

    from . import CloudWatchSink

    # A throwaway identity for the local endpoint: never the user's real credentials or profile.
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_EC2_METADATA_DISABLED": "true"}
    )
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    # An HTTP proxy from the environment must not intercept the calls to 127.0.0.1.
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, [os.environ.get(name), "127.0.0.1", "localhost"]))

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the local server's access log is noise here
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
    except Exception as error:
        raise _Failure(f"could not start the local endpoint on 127.0.0.1: {type(error).__name__}: {error}") from None
    console = None
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        print(f"Local CloudWatch Logs endpoint (moto) listening on {endpoint}; no AWS account is used.")
        sink = CloudWatchSink("demo-group", "demo-stream", endpoint_url=endpoint, region_name="us-east-1")
        print(f"\nLogging through loguru to {sink!r}, handler level INFO:")
        console = logger.add(
            sys.stdout, level="DEBUG", format=lambda record: "  logged   {level: <8} {message}\n", colorize=False
        )
        handler = logger.add(sink, level="INFO")
        log = logger.bind(service="checkout", request_id="r-1001")
        log.info("order {} placed by user {}", 42, "alice")
        log.warning("payment provider slow: {:.1f}s", 2.4)
        logger.debug("not shipped: below the handler's INFO level")
        cart: dict[str, int] = {}
        try:
            cart["missing"]
        except KeyError:
            log.exception("could not load the cart")
        logger.bind(user={"id": 7, "roles": {"admin"}}).info("extra values of any type are encoded")
        logger.remove(console)
        console = None
        delivered = sink.force_flush(timeout=10)
        logger.remove(handler)
        stats = sink.stats
        print(
            f"sink.force_flush() -> {delivered}: sent={stats.sent} in {stats.batches} PutLogEvents call(s), "
            f"dropped={stats.dropped}"
        )
        client = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
        events = client.get_log_events(logGroupName="demo-group", logStreamName="demo-stream", startFromHead=True)[
            "events"
        ]
        print(f"\nRead back with GetLogEvents from demo-group/demo-stream: {len(events)} events")
        documents: list[dict[str, Any]] = [json.loads(event["message"]) for event in events]
        for document in documents:
            print("  " + _format_event(document))
        failing = [document for document in documents if "exception" in document]
        if failing:
            shown = dict(failing[0])
            traceback_lines = str(shown["exception"].get("traceback", "")).count("\n") + 1
            shown["exception"] = dict(shown["exception"], traceback=f"... ({traceback_lines} lines)")
            print("\nThe ERROR event as stored: one JSON document per record, ready for CloudWatch Logs Insights:")
            print("  " + json.dumps(shown, ensure_ascii=False, indent=2).replace("\n", "\n  "))
        if not delivered or len(events) != stats.sent:
            raise _Failure(f"the sink reported sent={stats.sent} but {len(events)} events were read back")
        print(
            "\nNext, with your own AWS setup:\n"
            "  python -m loguru_cloudwatch check --group my-group    # credentials, region, permissions\n"
            "  LOGURU_CLOUDWATCH_LOG_GROUP=my-group python my_app.py  # my_app.py: import loguru_cloudwatch"
        )
        return 0
    finally:
        if console is not None:
            logger.remove(console)
        server.stop()


# --------------------------------------------------------------------------- check

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

_ACCESS_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "NotAuthorized"})
_UNKNOWN_KEY = frozenset({"UnrecognizedClientException", "InvalidClientTokenId"})
_BAD_SECRET = frozenset({"InvalidSignatureException", "SignatureDoesNotMatch", "IncompleteSignature"})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})


class _Api:
    """Calls one CloudWatch Logs operation and turns its failures into a one-line explanation."""

    def __init__(self, client: Any, group: str, identity: str) -> None:
        self.client = client
        self.group = group
        self.identity = identity

    def explain(self, operation: str, error: Exception) -> str:
        import botocore.exceptions

        from ._client import describe_error, error_code

        if isinstance(error, botocore.exceptions.ClientError):
            code = error_code(error)
            said = str(error.response.get("Error", {}).get("Message", "")).replace("\n", " ")[:300]
            said = f" (AWS said: {said})" if said else ""
            if code in _ACCESS_DENIED:
                return (
                    f"{operation} was refused ({code}): add the IAM permission logs:{operation} on log group "
                    f"{self.group!r} to the identity in use{said}"
                )
            if code in _UNKNOWN_KEY:
                return (
                    f"AWS does not recognize the credentials ({self.identity}): wrong or deleted access key, "
                    f"or a key of another partition ({code})"
                )
            if code in _BAD_SECRET:
                return f"the secret access key does not match the access key id ({self.identity}) ({code})"
            if code in _EXPIRED:
                return (
                    f"the credentials ({self.identity}) have expired ({code}): refresh them "
                    "(e.g. aws sso login, or a new session token)"
                )
            return f"{operation} failed: {describe_error(error)}"
        if isinstance(
            error,
            (
                botocore.exceptions.EndpointConnectionError,
                botocore.exceptions.ConnectTimeoutError,
                botocore.exceptions.ReadTimeoutError,
                botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.SSLError,
                botocore.exceptions.ProxyConnectionError,
            ),
        ):
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
            raise _Failure(self.explain(operation, error)) from None


def _code(error: BaseException) -> str:
    from ._client import error_code

    return error_code(error)


def _resolve_region(region_option: str | None, region_label: str | None, session: Any) -> tuple[str, str]:
    """The region the sink would use, and where it comes from (the sink's order: see _client.resolve_region)."""
    if region_option:
        return region_option, f"from {region_label}"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(name):
            return os.environ[name], f"from {name}"
    if session.region_name:
        return str(session.region_name), f"from the AWS config file, profile {session.profile_name!r}"
    _line("region", "none found")
    raise _Failure(
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


def _check(args: argparse.Namespace) -> int:
    import boto3
    import botocore.exceptions

    from . import _env
    from ._client import DEFAULT_BOTO_CONFIG, describe_error
    from ._config import render_stream_name

    # The command line's options go over the environment's variables, and are named as options in errors.
    environ = dict(os.environ)
    labels: dict[str, str] = {}
    for value, suffix, label in (
        (args.group, "LOG_GROUP", "--group"),
        (args.stream, "LOG_STREAM", "--stream"),
        (args.region, "REGION", "--region"),
        (args.endpoint_url, "ENDPOINT_URL", "--endpoint-url"),
    ):
        if value is not None:
            environ[_env.PREFIX + suffix] = value
            labels[_env.PREFIX + suffix] = label
    try:
        config = _env.read_env(environ, labels)
        if config is None:
            raise _Failure(f"no log group to check: pass --group NAME or set {_env.GROUP_VARIABLE}", USAGE)
        sink_config = _env.validate(config)
    except ValueError as error:
        raise _Failure(str(error), USAGE) from None
    from_env = [name for name, _ in config.raw if name not in labels]
    print(f"Checking delivery to CloudWatch Logs, log group {config.log_group!r}", flush=True)
    settings = f"{len(from_env)} {_env.PREFIX}* variable(s) set, valid" if from_env else f"no {_env.PREFIX}* set"
    _line("settings", settings)
    for name in config.unknown:
        _line("", f"warning: {name} is not a variable of this package (ignored)")

    # Credentials, as the sink finds them: boto3's default chain.
    try:
        session = boto3.Session()
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        raise _Failure(f"AWS credentials could not be loaded: {describe_error(error)}") from None
    if credentials is None:
        _line("credentials", "none found")
        raise _Failure(
            "no AWS credentials found (looked in: environment, shared credentials and config files, SSO, "
            "container and instance metadata): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "AWS_PROFILE, or run with an IAM role"
        )
    try:
        frozen = credentials.get_frozen_credentials()
    except Exception as error:
        raise _Failure(
            f"AWS credentials could not be refreshed ({credentials.method}): {describe_error(error)}"
        ) from None
    method = str(credentials.method)
    access_key = str(frozen.access_key or "")
    # The last 4 characters of the access key id at most (its start only tells the key's kind): never a secret.
    key_hint = f"access key id ending in {access_key[-4:]}" if len(access_key) >= 12 else "access key id (short)"
    identity = f"{method}, {key_hint}"
    source = _CREDENTIAL_SOURCES.get(method, "")
    profile = f", profile {session.profile_name!r}" if os.environ.get("AWS_PROFILE") else ""
    temporary = ", temporary (with a session token)" if frozen.token else ""
    _line("credentials", f"{method}{profile}{': ' + source if source else ''}; {key_hint}{temporary}")

    region_label = labels.get(_env.PREFIX + "REGION", _env.PREFIX + "REGION")
    region, region_source = _resolve_region(sink_config.region_name, region_label, session)
    _line("region", f"{region} ({region_source})")

    endpoint_label = labels.get(_env.PREFIX + "ENDPOINT_URL", _env.PREFIX + "ENDPOINT_URL")
    try:
        client = session.client(
            "logs", region_name=region, endpoint_url=sink_config.endpoint_url, config=DEFAULT_BOTO_CONFIG
        )
    except Exception as error:
        raise _Failure(f"could not create a CloudWatch Logs client for region {region!r}: {error}") from None
    _line("endpoint", _describe_endpoint(client, sink_config.endpoint_url, endpoint_label, region))

    group = config.log_group
    stream = render_stream_name(sink_config.log_stream_template)
    api = _Api(client, group, identity)
    permissions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    try:
        client.create_log_stream(logGroupName=group, logStreamName=stream)
        group_state, stream_state = "exists", "created by this check"
    except Exception as error:
        code = _code(error)
        if code == "ResourceAlreadyExistsException":
            group_state, stream_state = "exists", "exists"
        elif code == "ResourceNotFoundException":
            if not sink_config.create_log_group:
                _line("log group", f"{group}: does not exist")
                label = f"{_env.PREFIX}CREATE_LOG_GROUP"
                raise _Failure(
                    f"log group {group!r} does not exist and {label} is false: create it "
                    f"(aws logs create-log-group --log-group-name {group}) or let the sink create it"
                ) from None
            api.call("CreateLogGroup", logGroupName=group)
            group_state = "created by this check (the sink would have created it)"
            if sink_config.retention_days is not None:
                try:
                    client.put_retention_policy(logGroupName=group, retentionInDays=sink_config.retention_days)
                    group_state += f", retention {sink_config.retention_days} days"
                except Exception as retention_error:
                    group_state += f"; warning: {api.explain('PutRetentionPolicy', retention_error)}"
            api.call("CreateLogStream", logGroupName=group, logStreamName=stream)
            stream_state = "created by this check"
        else:
            raise _Failure(api.explain("CreateLogStream", error)) from None
    if group_state != "exists":
        permissions.insert(0, "logs:CreateLogGroup")
        if sink_config.retention_days is not None:
            permissions.append("logs:PutRetentionPolicy")
    elif sink_config.create_log_group:
        permissions.insert(0, "logs:CreateLogGroup (only if the group may be missing)")
    _line("log group", f"{group}: {group_state}")
    _line("log stream", f"{stream}: {stream_state}")

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
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": timestamp, "message": json.dumps(document)}],
    )
    if response.get("rejectedLogEventsInfo"):
        raise _Failure(f"CloudWatch rejected the test event: {response['rejectedLogEventsInfo']}")
    _line("write", "PutLogEvents accepted 1 test event")

    if args.no_read_back:
        _line("read back", "skipped (--no-read-back)")
    else:
        elapsed = _read_back(api, group, stream, timestamp, token)
        _line("read back", f"the test event came back after {elapsed:.1f} s")
    print(f"OK: this setup can ship records to log group {group!r}.")
    print(f"  IAM permissions the sink needs: {', '.join(permissions)}")
    return 0


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
            if _code(error) in _ACCESS_DENIED and operation == "GetLogEvents":
                operation = "FilterLogEvents"
                continue
            if _code(error) in _ACCESS_DENIED:
                raise _Failure(
                    "the test event was sent, but reading it back was refused: add the IAM permission "
                    "logs:GetLogEvents (or logs:FilterLogEvents) to verify delivery, or run the check with "
                    "--no-read-back (the sink itself does not read)"
                ) from None
            raise _Failure(api.explain(operation, error)) from None
        if any(token in event.get("message", "") for event in events):
            return time.monotonic() - started
        if time.monotonic() - started > READ_BACK_TIMEOUT:
            raise _Failure(
                f"PutLogEvents accepted the test event, but it was not readable after {READ_BACK_TIMEOUT:g} s: "
                f"look for 'test event {token}' in {group}/{stream} later"
            )
        time.sleep(0.5)


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loguru_cloudwatch",
        description="Ship loguru records to AWS CloudWatch Logs: try it locally, or check a real setup.",
        epilog="Run 'python -m loguru_cloudwatch COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="ship records to a local CloudWatch endpoint and read them back (no AWS account needed)",
        description=(
            "Start a local CloudWatch Logs endpoint (moto's server on 127.0.0.1), ship a few records through "
            "a real CloudWatchSink, read them back through the CloudWatch Logs API and print them. Needs no "
            "AWS account and no network: pip install 'loguru-cloudwatch[demo]'."
        ),
    )
    demo.set_defaults(run=_demo)
    check = commands.add_parser(
        "check",
        help="check credentials, region, permissions and delivery of a real setup",
        description=(
            "Check a real setup: report where the AWS credentials and region come from (never printing a "
            "secret) and the endpoint, create the log group and stream if missing (as the sink would), send "
            "one test event and read it back. Exits 1 with a one-line explanation, naming the IAM permission "
            "to add, when something is missing. Options default to the LOGURU_CLOUDWATCH_* variables."
        ),
    )
    check.add_argument("--group", metavar="NAME", help="log group (" + _ENV_HELP.format("LOG_GROUP") + ")")
    check.add_argument(
        "--stream",
        metavar="TEMPLATE",
        help='log stream name template ({}, else "{{hostname}}/{{pid}}")'.format(_ENV_HELP.format("LOG_STREAM")),
    )
    check.add_argument(
        "--region",
        help="AWS region (" + _ENV_HELP.format("REGION") + ", else AWS_REGION, AWS_DEFAULT_REGION, the profile)",
    )
    check.add_argument(
        "--endpoint-url", metavar="URL", help="CloudWatch Logs endpoint (" + _ENV_HELP.format("ENDPOINT_URL") + ")"
    )
    check.add_argument(
        "--no-read-back",
        action="store_true",
        help="do not read the test event back (for identities without logs:GetLogEvents)",
    )
    check.set_defaults(run=_check)
    return parser


def _fail(message: str, status: int) -> int:
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except _Failure as failure:
        return _fail(str(failure).replace("\n", " "), failure.status)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # one line, not a traceback
        return _fail(f"unexpected {type(error).__name__}: {str(error).replace(chr(10), ' ')}", FAILED)
    return code


if __name__ == "__main__":
    from loguru import logger

    from . import _env

    _env.discard_for_cli()  # normally never added (see _env.launched_as_own_cli)
    logger.remove()  # the command line prints its own output: no default stderr handler
    sys.exit(main())
