"""Where the caller's cost goes: stripped-down sinks, each doing a little more of what CloudWatchSink does.

The first variants keep records without sending them: only the logging thread's work. The last ones ship
to a moto server in its own process, as the caller's-cost benchmark does, to show what sending costs the
logging thread (GIL waits while a thread runs botocore). The two "shippers" are lower bounds for any sink
that sends with boto3 from a thread: each keeps its documents in a plain list with no bound and hands each
1 MiB batch to a thread that makes one PutLogEvents call with an orjson-encoded body; no queue bounds,
drop accounting, retries, flush bookkeeping or fork and re-entrancy guards. The "constant time" one builds
the document with a constant time text (less than a sink must do); the "JsonEncoder" one builds the
sink's own document. Every variant runs once per round, interleaved; the table gives medians of the
per-round ratios to the no-op sink.

    python -m bench.caller_floor [--records 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import threading
import time
from collections import deque
from typing import Any

import orjson

from bench._common import MotoServer, check_all_delivered, logs_client
from loguru_cloudwatch import CloudWatchSink
from loguru_cloudwatch._client import DEFAULT_BOTO_CONFIG, PutBodyEncoder
from loguru_cloudwatch._cloudwatch import CLOUDWATCH_BATCH_COST
from loguru_cloudwatch._document import record_fields
from loguru_cloudwatch._encoder import JsonEncoder
from loguru_cloudwatch._limits import EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES
from loguru_cloudwatch._queue import EventQueue
from tests.support.aws import REGION, create_group_and_stream, use_fake_aws_env

GROUP = "bench-floor"


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


def constant_time_document(record: Any) -> bytes:
    """The sink's ten-field document and the record's extras, with a constant time text."""
    document = record_fields(record, "2026-11-25T07:31:04.261621+00:00")
    document.update(record["extra"])
    return orjson.dumps(document)


class FullDocumentConstantTime(_Keeper):
    """The sink's ten-field document, with a constant time text and no collision checks."""

    def write(self, message: Any) -> None:
        payload = constant_time_document(message.record)
        with self.lock:
            self.kept.append((1, 2, payload.decode(), len(payload)))


class SinkEncoder(_Keeper):
    """The sink's own JsonEncoder (record time, collision checks), kept in a plain deque."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = JsonEncoder(None)

    def write(self, message: Any) -> None:
        timestamp, text, size = self.encoder.encode(message)
        with self.lock:
            self.kept.append((timestamp, 2, text, size))


class SinkEncoderQueue:
    """JsonEncoder plus the sink's bounded EventQueue."""

    def __init__(self) -> None:
        self.encoder = JsonEncoder(None)
        self.queue = EventQueue(10**7, 2**40, 10_000, threading.Event(), cost=CLOUDWATCH_BATCH_COST)

    def write(self, message: Any) -> None:
        self.queue.put(*self.encoder.encode(message))


class HungClient:
    """A logs client whose calls never return: the sink's worker waits (GIL released) and never sends."""

    def __init__(self) -> None:
        self._never = threading.Event()

    def put_log_events(self, **_: Any) -> Any:
        self._never.wait()


class MinimalShipper:
    """A lower bound for shipping with boto3 (see the module's docstring); stop() sends the rest.

    ``real_document``: the sink's JsonEncoder document, else a constant time text and timestamp.
    """

    def __init__(self, url: str, stream: str, real_document: bool) -> None:
        self.client = logs_client(url, config=DEFAULT_BOTO_CONFIG)
        create_group_and_stream(self.client, GROUP, stream)
        self.stream = stream
        self.body_encoder = PutBodyEncoder(self.client)
        self.overhead = EVENT_OVERHEAD_BYTES
        self.room = MAX_BATCH_BYTES
        self.timestamp = int(time.time() * 1000)
        self.encode = JsonEncoder(None).encode if real_document else self._constant_time
        self.lock = threading.Lock()
        self.pending: list[tuple[int, str]] = []
        self.pending_bytes = 0
        self.batches: queue.SimpleQueue[list[tuple[int, str]] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._ship, daemon=True)
        self.thread.start()

    def _constant_time(self, message: Any) -> tuple[int, str, int]:
        payload = constant_time_document(message.record)
        return self.timestamp, payload.decode(), len(payload)

    def write(self, message: Any) -> None:
        timestamp, text, size = self.encode(message)
        size += self.overhead
        with self.lock:
            if self.pending_bytes + size > self.room:
                self.batches.put(self.pending)
                self.pending = []
                self.pending_bytes = 0
            self.pending.append((timestamp, text))
            self.pending_bytes += size

    def _ship(self) -> None:
        while True:
            batch = self.batches.get()
            if batch is None:
                return
            events = [{"timestamp": timestamp, "message": text} for timestamp, text in batch]
            self.body_encoder.body = self.body_encoder.encode(GROUP, self.stream, events)
            self.client.put_log_events(logGroupName=GROUP, logStreamName=self.stream, logEvents=[])

    def stop(self) -> None:
        with self.lock:
            if self.pending:
                self.batches.put(self.pending)
            self.pending = []
        self.batches.put(None)
        self.thread.join()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.caller_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    use_fake_aws_env()
    from loguru import logger

    n = args.records
    with MotoServer() as moto:
        streams = iter(range(10**6))

        def unsent_sink() -> Any:
            return CloudWatchSink(
                GROUP, "s", client=HungClient(), max_queue_size=10**7, max_queue_bytes=2**40, shutdown_timeout=0
            )

        def constant_time_shipper() -> Any:
            return MinimalShipper(moto.url, f"minimal-{next(streams)}", real_document=False)

        def encoder_shipper() -> Any:
            return MinimalShipper(moto.url, f"minimal-{next(streams)}", real_document=True)

        def shipping_sink() -> Any:
            stream = f"sink-{next(streams)}"
            create_group_and_stream(logs_client(moto.url), GROUP, stream)
            sink = CloudWatchSink(GROUP, stream, endpoint_url=moto.url, region_name=REGION, shutdown_timeout=120)
            sink.force_flush(30)  # the worker's client is built before the timed calls
            return sink

        variants: list[tuple[str, Any]] = [
            ("no-op sink (lambda m: None)", lambda: lambda m: None),
            ("keep a constant tuple", KeepConstant),
            ("keep the message text", KeepText),
            ("orjson.dumps of a 2-field document", SmallDocument),
            ("10-field document, constant time text", FullDocumentConstantTime),
            ("JsonEncoder (record time, collision checks)", SinkEncoder),
            ("JsonEncoder + EventQueue", SinkEncoderQueue),
            ("CloudWatchSink, worker never sends", unsent_sink),
            ("shipper, constant time text, sending to moto", constant_time_shipper),
            ("shipper, JsonEncoder document, sending to moto", encoder_shipper),
            ("CloudWatchSink, sending to moto", shipping_sink),
        ]
        per_call: dict[str, list[float]] = {name: [] for name, _ in variants}
        for round_index in range(args.rounds):
            moto.reset()
            client = logs_client(moto.url)
            client.create_log_group(logGroupName=GROUP)
            for name, factory in variants:
                sink = factory()
                logger.remove()
                logger.add(sink)
                start = time.perf_counter()
                for i in range(n):
                    logger.bind(request_id=i).info("user {} logged in from {}", i, "10.0.0.1")
                per_call[name].append((time.perf_counter() - start) / n)
                logger.remove()  # the shipping variants deliver what is left
                if isinstance(sink, MinimalShipper):
                    check_all_delivered(client, GROUP, sink.stream, n, name)
                elif factory is shipping_sink and sink.stats.sent != n:
                    raise AssertionError(f"{name}: not everything was delivered: {sink.stats}")
            print(f"  round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    base = per_call[variants[0][0]]
    print(f"caller's cost, decomposed: medians of {args.rounds} interleaved rounds of {n} calls")
    print("| variant | per call | vs no-op |")
    print("|---|---|---|")
    for name, _ in variants:
        ratio = statistics.median(value / noop for value, noop in zip(per_call[name], base, strict=True))
        print(f"| {name} | {statistics.median(per_call[name]) * 1e6:.2f} µs | {ratio:.2f}x |")
    sys.stdout.flush()
    os._exit(0)  # the unsent sink's worker waits forever inside its client


if __name__ == "__main__":
    main(sys.argv[1:])
