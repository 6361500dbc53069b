"""``python -m loguru_cloudwatch demo``: the sink against a local endpoint, with no AWS account.

It starts a CloudWatch-compatible endpoint (moto's server, from the ``demo`` extra) on 127.0.0.1, ships a
few records through a real ``CloudWatchSink``, reads them back through the CloudWatch Logs API and prints
them. It never uses the user's AWS credentials or ``LOGURU_CLOUDWATCH_*`` variables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ._cli import USAGE, Failure


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


def run(_: argparse.Namespace) -> int:
    """Run the demo; the exit status (a failure raises ``Failure``)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise Failure(
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
        raise Failure(f"could not start the local endpoint on 127.0.0.1: {type(error).__name__}: {error}") from None
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
            raise Failure(f"the sink reported sent={stats.sent} but {len(events)} events were read back")
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
