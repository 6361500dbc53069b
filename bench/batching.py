"""Benchmark 3: batching efficiency, PutLogEvents calls per 100,000 records vs the minimum.

The sink (default options, so a 2 s flush interval) gets ``--records`` records faster than its flush
interval: (burst) as fast as the caller can log, and (paced) at ``--rate`` records per second, which
spans several flush intervals. A botocore hook on the sink's own client (attached when the worker builds
it) counts the PutLogEvents calls and keeps their events. The minimum is what CloudWatch's limits allow
for the same events in the same order: greedy packing under 10,000 events and 1,048,576 bytes
(UTF-8 message + 26 bytes per event) per call. Every record must arrive exactly once.

    python -m bench.batching [--records 100000] [--rounds 3] [--rate 25000]
"""

from __future__ import annotations

import sys
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
    min_calls,
    print_table,
    report,
    request_ids,
)
from tests.support.aws import REGION, create_group_and_stream, use_fake_aws_env
from tests.support.recorders import attaching_to_new_logs_clients

GROUP = "bench-batching"


def log_records(logger: Any, n: int, rate: float | None) -> float:
    """Log n records, as fast as possible or paced at ``rate`` per second; returns the seconds spent."""
    ip = IP
    t0 = time.perf_counter()
    if rate is None:
        for i in range(n):
            logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
    else:
        chunk = max(1, int(rate / 100))  # 100 bursts a second
        for start in range(0, n, chunk):
            for i in range(start, min(n, start + chunk)):
                logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
            pause = t0 + (start + chunk) / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    return time.perf_counter() - t0


def one_round(url: str, n: int, rate: float | None, stream: str) -> dict[str, Any]:
    from loguru import logger

    from loguru_cloudwatch import CloudWatchSink

    client = logs_client(url)
    create_group_and_stream(client, GROUP, stream)
    recorder = PutRecorder()
    with attaching_to_new_logs_clients(recorder.attach):
        sink = CloudWatchSink(GROUP, stream, endpoint_url=url, region_name=REGION, shutdown_timeout=120)
        handler_id = logger.add(sink)
        seconds = log_records(logger, n, rate)
        logger.remove(handler_id)
    stats = sink.stats
    if stats.sent != n or stats.dropped or stats.abandoned or stats.rejected:
        raise AssertionError(f"CloudWatchSink did not deliver everything: {stats}")
    messages = [event["message"] for batch in recorder.batches for event in batch]
    ids = request_ids(messages)
    if sorted(ids) != list(range(n)):
        raise AssertionError(f"{len(ids)} events sent for {n} records")
    # the same events in arrival order, packed as tightly as the limits allow
    sizes = [len(m.encode("utf-8")) for _, m in sorted(zip(ids, messages, strict=True))]
    minimum = min_calls(sizes)
    client.close()
    return {
        "calls": recorder.calls,
        "attempts": recorder.attempts,
        "minimum": minimum,
        "seconds": seconds,
        "counts": [len(b) for b in recorder.batches],
    }


def main(argv: list[str] | None = None) -> list[Result]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=25_000.0, help="records per second of the paced scenario")
    args = parser.parse_args(argv)
    use_fake_aws_env()
    from loguru import logger

    logger.remove()
    n = args.records
    scenarios: dict[str, float | None] = {"burst": None, f"paced {args.rate:g}/s": args.rate}
    results_by: dict[str, list[dict[str, Any]]] = {name: [] for name in scenarios}
    with MotoServer() as moto:
        for round_index in range(args.rounds):
            for name, rate in scenarios.items():
                moto.reset()
                outcome = one_round(moto.url, n, rate, f"{name.split()[0]}-{round_index}")
                results_by[name].append(outcome)
                print(
                    f"  round {round_index + 1} {name}: {outcome['calls']} calls ({outcome['attempts']} attempts) "
                    f"for {n} records in {outcome['seconds']:.2f}s, minimum {outcome['minimum']}; "
                    f"events per call {outcome['counts']}"
                )
    rows = []
    results = []
    scale = 100_000 / n
    for name, outcomes in results_by.items():
        calls = median([o["calls"] for o in outcomes])
        minimum = median([o["minimum"] for o in outcomes])
        over = median([o["calls"] / o["minimum"] for o in outcomes])
        seconds = median([o["seconds"] for o in outcomes])
        rows.append([name, f"{seconds:.2f}s", f"{calls * scale:.0f}", f"{minimum * scale:.0f}", f"{over:.3f}x"])
        results.append(
            Result(
                "3 batching",
                f"PutLogEvents calls / minimum ({name})",
                f"{calls * scale:.0f} / {minimum * scale:.0f} = {over:.3f}x",
                "<= 1.05x",
                over <= 1.05,
            )
        )
    print_table(
        f"PutLogEvents calls per 100,000 records (median of {args.rounds} rounds; flush_interval=2.0)",
        ["scenario", "logging took", "calls", "minimum the limits allow", "calls / minimum"],
        rows,
    )
    report(results, args.summary_json)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
