"""Where the caller's cost goes: stripped-down sinks, each doing a little more of what CloudWatchSink does.

No network and no worker traffic (no credentials, so the sink never sends): only the logging thread's
work is compared, as medians of interleaved rounds, in ratios to a no-op sink.

    python -m bench.caller_floor [--records 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import deque
from typing import Any

import orjson


def _no_credentials() -> None:
    os.environ.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)


class _Keeper:
    def __init__(self) -> None:
        self.kept: deque[Any] = deque()
        self.lock = threading.Lock()


class KeepConstant(_Keeper):
    """Keeps a constant tuple per record: the cost of holding anything at all."""

    def write(self, message: Any) -> None:
        with self.lock:
            self.kept.append((1, 2, "x", 1))


class KeepText(_Keeper):
    """Keeps the record's message text."""

    def write(self, message: Any) -> None:
        record = message.record
        text = str(record["message"])
        with self.lock:
            self.kept.append((record["time"].microsecond, 2, text, len(text)))


class SmallDocument(_Keeper):
    """orjson.dumps of a two-field document."""

    def write(self, message: Any) -> None:
        record = message.record
        payload = orjson.dumps({"message": record["message"], "level": record["level"].name}).decode()
        with self.lock:
            self.kept.append((1, 2, payload, len(payload)))


class FullDocumentConstantTime(_Keeper):
    """The sink's ten-field document, with a constant time text and no collision checks."""

    def write(self, message: Any) -> None:
        record = message.record
        document = {
            "time": "2026-11-25T07:31:04.261621+00:00",
            "level": record["level"].name,
            "message": record["message"],
            "logger": record["name"],
            "function": record["function"],
            "line": record["line"],
            "file": record["file"].name,
            "process": record["process"].id,
            "thread": record["thread"].id,
        }
        document.update(record["extra"])
        payload = orjson.dumps(document)
        with self.lock:
            self.kept.append((1, 2, payload.decode(), len(payload)))


class SinkEncoder(_Keeper):
    """The sink's own RecordEncoder (record time, collision checks), kept in a plain deque."""

    def __init__(self) -> None:
        super().__init__()
        from loguru_cloudwatch._document import RecordEncoder

        self.encoder = RecordEncoder(True, None)

    def write(self, message: Any) -> None:
        timestamp, payload, _ = self.encoder.encode(message)
        with self.lock:
            self.kept.append((timestamp, 2, payload.decode(), len(payload)))


class SinkEncoderQueue:
    """RecordEncoder plus the sink's bounded EventQueue."""

    def __init__(self) -> None:
        from loguru_cloudwatch._document import RecordEncoder
        from loguru_cloudwatch._queue import EventQueue

        self.encoder = RecordEncoder(True, None)
        self.queue = EventQueue(10**7, 2**40, 10_000, threading.Event())

    def write(self, message: Any) -> None:
        timestamp, payload, _ = self.encoder.encode(message)
        self.queue.put(timestamp, payload.decode(), len(payload))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.caller_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    _no_credentials()
    from loguru import logger

    from loguru_cloudwatch import CloudWatchSink

    def sink() -> Any:
        return CloudWatchSink(
            "bench-floor",
            "s",
            max_queue_size=10**7,
            max_queue_bytes=2**40,
            shutdown_timeout=0,
            on_error=lambda problem: None,
        )

    variants: list[tuple[str, Any]] = [
        ("no-op sink (lambda m: None)", lambda: lambda m: None),
        ("keep a constant tuple", KeepConstant),
        ("keep the message text", KeepText),
        ("orjson.dumps of a 2-field document", SmallDocument),
        ("10-field document, constant time text", FullDocumentConstantTime),
        ("RecordEncoder (record time, collision checks)", SinkEncoder),
        ("RecordEncoder + EventQueue", SinkEncoderQueue),
        ("CloudWatchSink.write (no worker traffic)", sink),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _ in range(args.rounds):
        for name, factory in variants:
            logger.remove()
            logger.add(factory())
            start = time.perf_counter()
            for i in range(args.records):
                logger.bind(request_id=i).info("user {} logged in from {}", i, "10.0.0.1")
            results[name].append((time.perf_counter() - start) / args.records * 1e6)
            logger.remove()
    base = statistics.median(results[variants[0][0]])
    print(f"caller's cost, decomposed: medians of {args.rounds} rounds of {args.records} calls")
    print("| variant | per call | vs no-op |")
    print("|---|---|---|")
    for name, _ in variants:
        value = statistics.median(results[name])
        print(f"| {name} | {value:.2f} µs | {value / base:.2f}x |")
    sys.stdout.flush()
    os._exit(0)  # the sinks hold records they cannot send: no exit drain


if __name__ == "__main__":
    main(sys.argv[1:])
