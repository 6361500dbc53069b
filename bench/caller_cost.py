"""Benchmark 1: the caller's cost per log call, side by side.

(a) a no-op sink ``lambda m: None``, (b) ``CloudWatchSink`` with default options (JSON; only
``shutdown_timeout`` is raised, so that removing it always delivers everything), (c) watchtower's
``CloudWatchLogHandler`` added as a loguru sink with ``format="{message}"``; (b) and (c) ship to the same
moto server, running in its own process. Rounds are interleaved (the order rotates every round) and each
round times a burst of ``--records`` calls of the issue's log call on the logging thread: wall time (what
the program waits, GIL waits included) and that thread's CPU time. After each round the handler is removed
(everything delivered) and moto is checked to hold every record exactly once, so no variant wins by
dropping.

    python -m bench.caller_cost [--records 20000] [--rounds 7]
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

from bench._common import (
    IP,
    LOG_CALL,
    MotoServer,
    Result,
    base_parser,
    check_all_delivered,
    fmt_us,
    logs_client,
    median,
    print_table,
    report,
)
from tests.support.aws import REGION, create_group_and_stream, use_fake_aws_env

GROUP = "bench-caller-cost"
VARIANTS = ("noop", "sink", "watchtower")
LABELS = {
    "noop": "(a) no-op sink `lambda m: None`",
    "sink": "(b) CloudWatchSink, default options",
    "watchtower": "(c) watchtower CloudWatchLogHandler",
}


def burst(logger: Any, n: int) -> tuple[float, float]:
    """Time ``n`` log calls on this thread: (wall seconds, this thread's CPU seconds)."""
    ip = IP
    gc.collect()
    cpu0 = time.thread_time()
    t0 = time.perf_counter()
    for i in range(n):
        logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
    t1 = time.perf_counter()
    cpu1 = time.thread_time()
    return t1 - t0, cpu1 - cpu0


def run_variant(variant: str, n: int, url: str, stream: str, verify: bool) -> tuple[float, float]:
    from loguru import logger

    if variant == "noop":
        handler_id = logger.add(lambda m: None)
        try:
            return burst(logger, n)
        finally:
            logger.remove(handler_id)

    client = logs_client(url)
    create_group_and_stream(client, GROUP, stream)
    if variant == "sink":
        from loguru_cloudwatch import CloudWatchSink

        sink = CloudWatchSink(GROUP, stream, endpoint_url=url, region_name=REGION, shutdown_timeout=120)
        handler_id = logger.add(sink)
        try:
            result = burst(logger, n)
        finally:
            logger.remove(handler_id)  # stop(): delivers everything left
        stats = sink.stats
        if stats.sent != n or stats.dropped or stats.abandoned or stats.rejected:
            raise AssertionError(f"CloudWatchSink did not deliver everything: {stats}")
    else:
        from watchtower import CloudWatchLogHandler

        # The constructor makes its own API calls (DescribeLogGroups); done before the timed burst.
        handler = CloudWatchLogHandler(log_group_name=GROUP, log_stream_name=stream, boto3_client=logs_client(url))
        handler_id = logger.add(handler, format="{message}")
        try:
            result = burst(logger, n)
        finally:
            logger.remove(handler_id)  # close(): queues END and waits for its thread
        for thread in handler.threads:
            # watchtower marks records done before sending the last batch: wait for its thread to end.
            thread.join(120)
    if verify:
        check_all_delivered(client, GROUP, stream, n, variant)
    client.close()
    return result


def main(argv: list[str] | None = None) -> list[Result]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="log calls per round and variant")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--verify", choices=("every", "last"), default="every", help="check moto after each round")
    args = parser.parse_args(argv)
    use_fake_aws_env()
    from loguru import logger

    logger.remove()
    n = args.records
    wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    print(f"caller's cost: {LOG_CALL}; {n} calls per round, {args.rounds} rounds (+1 warm-up)")
    with MotoServer() as moto:
        for round_index in range(args.rounds + 1):
            moto.reset()
            shift = round_index % len(VARIANTS)
            order = VARIANTS[shift:] + VARIANTS[:shift]
            warmup = round_index == 0
            for variant in order:
                verify = args.verify == "every" or round_index == args.rounds
                seconds, thread_cpu = run_variant(
                    variant, min(n, 2000) if warmup else n, moto.url, f"{variant}-{round_index}", verify
                )
                if not warmup:
                    wall[variant].append(seconds / n)
                    cpu[variant].append(thread_cpu / n)
            if not warmup:
                print(
                    f"  round {round_index}: "
                    + ", ".join(f"{v} {fmt_us(wall[v][-1])}" for v in VARIANTS)
                    + " (all delivered)"
                )
    ratio_ba = [b / a for a, b in zip(wall["noop"], wall["sink"], strict=True)]
    ratio_bc = [b / c for b, c in zip(wall["sink"], wall["watchtower"], strict=True)]
    rows = [[LABELS[v], fmt_us(median(wall[v])), fmt_us(min(wall[v])), fmt_us(median(cpu[v]))] for v in VARIANTS]
    print_table(
        f"caller's cost per log call (median of {args.rounds} rounds of {n} calls; wall = what the caller waits)",
        ["variant", "wall per call (median)", "wall (best)", "caller thread CPU per call"],
        rows,
    )
    rba, rbc = median(ratio_ba), median(ratio_bc)
    cpu_ba = median([b / a for a, b in zip(cpu["noop"], cpu["sink"], strict=True)])
    cpu_bc = median([b / c for b, c in zip(cpu["sink"], cpu["watchtower"], strict=True)])
    print_table(
        "ratios (median of the per-round ratios, each measured side by side)",
        ["ratio", "wall", "caller CPU", "target"],
        [
            ["sink / no-op (b/a)", f"{rba:.2f}x", f"{cpu_ba:.2f}x", "<= 1.2x"],
            ["sink / watchtower (b/c)", f"{rbc:.2f}x", f"{cpu_bc:.2f}x", "<= 0.65x"],
        ],
    )
    results = [
        Result("1 caller's cost", "no-op sink, per call", fmt_us(median(wall["noop"]))),
        Result("1 caller's cost", "CloudWatchSink, per call", fmt_us(median(wall["sink"]))),
        Result("1 caller's cost", "watchtower, per call", fmt_us(median(wall["watchtower"]))),
        Result("1 caller's cost", "sink / no-op", f"{rba:.2f}x", "<= 1.2x", rba <= 1.2),
        Result("1 caller's cost", "sink / watchtower", f"{rbc:.2f}x", "<= 0.65x", rbc <= 0.65),
    ]
    report(results, args.summary_json)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
