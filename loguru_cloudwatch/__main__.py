"""``python -m loguru_cloudwatch demo``: see the sink work end to end with no AWS account.

The demo starts a local CloudWatch-compatible endpoint (moto's server, from the ``demo`` extra) on
127.0.0.1, ships a few records through a real ``CloudWatchSink``, reads them back through the
CloudWatch Logs API and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _demo(_: argparse.Namespace) -> int:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print(
            "the demo needs the local endpoint: pip install 'loguru-cloudwatch[demo]'",
            file=sys.stderr,
        )
        return 2
    import boto3
    from loguru import logger

    from . import CloudWatchSink

    # A throwaway identity for the local endpoint: never the user's real credentials.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_SESSION_TOKEN": "",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_SESSION_TOKEN")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the local server's access log is noise here
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        print(f"local CloudWatch Logs endpoint: {endpoint}")
        sink = CloudWatchSink("demo-group", "demo-stream", endpoint_url=endpoint, region_name="us-east-1")
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
        delivered = sink.force_flush(timeout=10)
        logger.remove(handler)
        stats = sink.stats
        print(f"force_flush: {delivered}; stats: sent={stats.sent} batches={stats.batches} dropped={stats.dropped}")
        client = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
        events = client.get_log_events(logGroupName="demo-group", logStreamName="demo-stream", startFromHead=True)[
            "events"
        ]
        print(f"{len(events)} events read back from demo-group/demo-stream:")
        for event in events:
            document: dict[str, Any] = json.loads(event["message"])
            if "exception" in document:
                document["exception"]["traceback"] = "..."
            print("  " + json.dumps(document, ensure_ascii=False))
        return 0 if delivered and len(events) == stats.sent else 1
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loguru_cloudwatch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="ship records to a local CloudWatch endpoint and read them back")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
