"""Benchmark 2: process CPU per delivered event (user + system, every thread of the process).

A child process adds a handler, logs ``--records`` records with the issue's log call and removes the
handler (so everything is delivered before it exits); the same child with 0 records is subtracted, so
interpreter start-up, imports and client creation cancel out. The child's CPU is read with ``os.wait4``
(that child alone; moto runs in its own process and is not counted). Variants: no-op sink,
CloudWatchSink (default options; ``shutdown_timeout`` raised so that ``stop()`` always delivers
everything), watchtower. The CPU the shipping adds per event is (variant - no-op).
Rounds are interleaved; each delivering child is checked against moto (every record stored once).

    python -m bench.cpu_per_event [--records 30000] [--rounds 5]
"""

from __future__ import annotations

import sys

from bench._common import (
    MotoServer,
    Result,
    base_parser,
    check_all_delivered,
    child_cpu,
    fmt_us,
    logs_client,
    median,
    print_table,
    report,
)
from tests.support.aws import create_group_and_stream, use_fake_aws_env

GROUP = "bench-cpu"
VARIANTS = ("noop", "sink", "watchtower")

CHILD = r"""
import json, sys
variant, n, url, group, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
from loguru import logger
logger.remove()
ip = "203.0.113.7"
out = {}
if variant == "noop":
    handler_id = logger.add(lambda m: None)
elif variant == "sink":
    from loguru_cloudwatch import CloudWatchSink
    sink = CloudWatchSink(group, stream, endpoint_url=url, region_name="us-east-1", shutdown_timeout=120)
    handler_id = logger.add(sink)
else:
    import boto3
    from watchtower import CloudWatchLogHandler
    client = boto3.client("logs", endpoint_url=url, region_name="us-east-1")
    handler = CloudWatchLogHandler(log_group_name=group, log_stream_name=stream, boto3_client=client)
    handler_id = logger.add(handler, format="{message}")
for i in range(n):
    logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
logger.remove(handler_id)
if variant == "sink":
    stats = sink.stats
    out = {"sent": stats.sent, "dropped": stats.dropped, "abandoned": stats.abandoned}
elif variant == "watchtower":
    for thread in handler.threads:
        thread.join(120)  # watchtower's close() returns before its last batch is sent
print(json.dumps(out))
"""


def run_child(variant: str, n: int, url: str, stream: str) -> tuple[float, dict[str, int]]:
    """CPU seconds (user + sys) of one child, and what it printed."""
    cpu, printed = child_cpu(CHILD, [variant, str(n), url, GROUP, stream])
    return cpu, printed


def main(argv: list[str] | None = None) -> list[Result]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    use_fake_aws_env()
    n = args.records
    per_event: dict[str, list[float]] = {v: [] for v in VARIANTS}
    print(f"process CPU per event: children logging {n} records minus the same child with 0; {args.rounds} rounds")
    with MotoServer() as moto:
        client = logs_client(moto.url)
        for round_index in range(args.rounds):
            moto.reset()
            shift = round_index % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                stream_full, stream_empty = f"{variant}-{round_index}", f"{variant}-{round_index}-empty"
                if variant != "noop":
                    create_group_and_stream(client, GROUP, stream_full)
                    create_group_and_stream(client, GROUP, stream_empty)
                full, out = run_child(variant, n, moto.url, stream_full)
                empty, _ = run_child(variant, 0, moto.url, stream_empty)
                if variant == "sink" and (out["sent"] != n or out["dropped"] or out["abandoned"]):
                    raise AssertionError(f"CloudWatchSink child did not deliver everything: {out}")
                if variant != "noop":
                    check_all_delivered(client, GROUP, stream_full, n, variant)
                per_event[variant].append((full - empty) / n)
            print(
                f"  round {round_index + 1}: "
                + ", ".join(f"{v} {fmt_us(per_event[v][-1])}" for v in VARIANTS)
                + " per event (all delivered)"
            )
    added_sink = [s - a for a, s in zip(per_event["noop"], per_event["sink"], strict=True)]
    added_wt = [w - a for a, w in zip(per_event["noop"], per_event["watchtower"], strict=True)]
    ratios = [s / w for s, w in zip(added_sink, added_wt, strict=True)]
    rows = [
        ["(a) no-op sink", fmt_us(median(per_event["noop"])), "-"],
        ["(b) CloudWatchSink", fmt_us(median(per_event["sink"])), fmt_us(median(added_sink))],
        ["(c) watchtower", fmt_us(median(per_event["watchtower"])), fmt_us(median(added_wt))],
    ]
    print_table(
        f"process CPU (user+sys, all threads) per delivered event, median of {args.rounds} rounds of {n} records",
        ["variant", "CPU per event", "added by shipping (minus no-op)"],
        rows,
    )
    ratio = median(ratios)
    print(f"shipping CPU, sink / watchtower: {ratio:.2f}x (median of per-round ratios; target <= 0.5x)")
    results = [
        Result("2 process CPU", "shipping CPU per event, sink", fmt_us(median(added_sink))),
        Result("2 process CPU", "shipping CPU per event, watchtower", fmt_us(median(added_wt))),
        Result("2 process CPU", "shipping CPU, sink / watchtower", f"{ratio:.2f}x", "<= 0.5x", ratio <= 0.5),
    ]
    report(results, args.summary_json)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
