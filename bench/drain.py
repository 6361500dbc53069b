"""Benchmark 5: drain time, ``stop()`` with 100,000 queued records vs moto ingesting the same batches.

The sink (default options but ``shutdown_timeout=300``, so that time cannot run out) gets ``--records``
records while a gate (a botocore hook on its own client, before the request is even built) holds its
first PutLogEvents, so every record is still queued or in that first call. Then the gate opens and
``logger.remove()`` (which calls ``stop()``) is timed until it returns. The same batches the sink sent
(recorded by the hook) are then sent again by a plain boto3 client with ``put_log_events``, one after
the other, into another stream: moto's own ingest time for that work. Rounds alternate the two.

    python -m bench.drain [--records 100000] [--rounds 5]
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from bench._common import (
    IP,
    MotoServer,
    PutRecorder,
    Result,
    base_parser,
    logs_client,
    median,
    print_table,
    report,
    stored_bytes,
)
from tests.support.aws import REGION, create_group_and_stream, use_fake_aws_env
from tests.support.recorders import attaching_to_new_logs_clients

GROUP = "bench-drain"


class Gate:
    """Blocks PutLogEvents calls (before their request is built) until opened."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.waiting = threading.Event()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.cloudwatch-logs.PutLogEvents", self._hold)

    def _hold(self, **_: Any) -> None:
        if not self.opened.is_set():
            self.waiting.set()
            self.opened.wait(300)


def sink_drain(url: str, n: int, stream: str) -> tuple[float, list[list[dict[str, Any]]]]:
    from loguru import logger

    from loguru_cloudwatch import CloudWatchSink

    client = logs_client(url)
    create_group_and_stream(client, GROUP, stream)
    gate = Gate()
    recorder = PutRecorder()

    def attach(new_client: Any) -> None:
        gate.attach(new_client)
        recorder.attach(new_client)

    with attaching_to_new_logs_clients(attach):
        sink = CloudWatchSink(GROUP, stream, endpoint_url=url, region_name=REGION, shutdown_timeout=300)
        handler_id = logger.add(sink)
        ip = IP
        for i in range(n):
            logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
        if not gate.waiting.wait(30):
            raise AssertionError("the sink's first PutLogEvents never reached the gate")
        stats = sink.stats
        if stats.queued != n or stats.sent or stats.dropped:
            raise AssertionError(f"expected {n} records queued before stop(): {stats}")
        # The recorder runs after the gate: the held call is recorded once it proceeds.
        t0 = time.perf_counter()
        gate.opened.set()
        logger.remove(handler_id)  # stop()
        seconds = time.perf_counter() - t0
    stats = sink.stats
    if stats.sent != n or stats.dropped or stats.abandoned or stats.rejected:
        raise AssertionError(f"CloudWatchSink did not deliver everything at stop(): {stats}")
    client.close()
    return seconds, recorder.batches


def direct_ingest(url: str, batches: list[list[dict[str, Any]]], stream: str) -> float:
    client = logs_client(url)
    create_group_and_stream(client, GROUP, stream)
    t0 = time.perf_counter()
    for batch in batches:
        client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=batch)
    seconds = time.perf_counter() - t0
    client.close()
    return seconds


def main(argv: list[str] | None = None) -> list[Result]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    use_fake_aws_env()
    from loguru import logger

    logger.remove()
    n = args.records
    drains: list[float] = []
    directs: list[float] = []
    print(
        f"drain: stop() with {n} queued records vs a plain boto3 client sending the same batches; {args.rounds} rounds"
    )
    with MotoServer() as moto:
        checker = logs_client(moto.url)
        for round_index in range(args.rounds):
            moto.reset()
            drain, batches = sink_drain(moto.url, n, f"sink-{round_index}")
            direct = direct_ingest(moto.url, batches, f"direct-{round_index}")
            sent = sum(len(batch) for batch in batches)
            stored_sink = stored_bytes(checker, GROUP, f"sink-{round_index}")
            stored_direct = stored_bytes(checker, GROUP, f"direct-{round_index}")
            if sent != n or stored_sink != stored_direct or not stored_sink:
                raise AssertionError(f"sent {sent} of {n}; stored {stored_sink} vs {stored_direct} characters")
            drains.append(drain)
            directs.append(direct)
            print(
                f"  round {round_index + 1}: stop() {drain:.3f}s, direct {direct:.3f}s for {len(batches)} calls "
                f"({drain / direct:.2f}x; both streams hold the same {stored_sink} characters)"
            )
    ratio = median([d / r for d, r in zip(drains, directs, strict=True)])
    print_table(
        f"drain time of {n} queued records (median of {args.rounds} rounds)",
        ["what", "seconds (median)", "spread"],
        [
            ["stop() of the sink", f"{median(drains):.3f}", f"{min(drains):.3f}-{max(drains):.3f}"],
            [
                "plain boto3 put_log_events, same batches",
                f"{median(directs):.3f}",
                f"{min(directs):.3f}-{max(directs):.3f}",
            ],
            ["ratio (median of per-round ratios)", f"{ratio:.2f}x", "target <= 1.5x"],
        ],
    )
    results = [
        Result("5 drain", f"stop() with {n} queued", f"{median(drains):.3f}s"),
        Result("5 drain", "moto direct ingest, same batches", f"{median(directs):.3f}s"),
        Result("5 drain", "stop() / direct ingest", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5),
    ]
    report(results, args.summary_json)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
