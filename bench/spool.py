"""Benchmark: the durable spool on vs off, side by side (issue 12).

1. Shipping CPU per event: a child process logs ``--records`` records with the issue's log call and removes
   the handler (everything delivered); the same child with 0 records is subtracted; the no-op child's CPU
   is subtracted too, leaving what shipping adds per event. Variants: CloudWatchSink without and with
   ``spool_dir``; rounds interleaved. Target: spool on <= 1.3x spool off.
2. Caller's cost: wall time per log call on the logging thread, both sinks in this process, rounds
   alternating. Target: spool on <= 1.05x spool off.
3. Backlog drain: ``--backlog`` records logged while every PutLogEvents fails (a fault proxy answering 503),
   all of them on disk; then the proxy lets calls through: records/s until all are sent.

    python -m bench.spool [--records 20000] [--rounds 5] [--backlog 100000]
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import threading
import time
from typing import Any

from bench._common import (
    LOGGING_CHILD,
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
from bench.caller_cost import burst
from tests.support.aws import REGION, create_group_and_stream, use_fake_aws_env
from tests.support.proxy import FaultProxy

GROUP = "bench-spool"
VARIANTS = ("noop", "memory", "spool")


def spool_child_cpu(variant: str, n: int, url: str, stream: str) -> float:
    child_variant = "sink" if variant == "memory" else variant
    cpu, printed = child_cpu(LOGGING_CHILD, [child_variant, str(n), url, GROUP, stream])
    if variant != "noop" and printed != {"sent": n, "dropped": 0, "abandoned": 0}:
        raise AssertionError(f"{variant} child did not deliver everything: {printed}")
    return cpu


def shipping_cpu(url: str, client: Any, n: int, rounds: int) -> list[Result]:
    added: dict[str, list[float]] = {"memory": [], "spool": []}
    for round_index in range(rounds):
        per_event: dict[str, float] = {}
        shift = round_index % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            full, empty = f"{variant}-{round_index}", f"{variant}-{round_index}-empty"
            create_group_and_stream(client, GROUP, full)
            create_group_and_stream(client, GROUP, empty)
            per_event[variant] = (spool_child_cpu(variant, n, url, full) - spool_child_cpu(variant, 0, url, empty)) / n
            if variant != "noop":
                check_all_delivered(client, GROUP, full, n, variant)
        for variant in added:
            added[variant].append(per_event[variant] - per_event["noop"])
        print(f"  round {round_index + 1}: " + ", ".join(f"{v} +{fmt_us(added[v][-1])}" for v in added))
    ratios = [s / m for m, s in zip(added["memory"], added["spool"], strict=True)]
    ratio = median(ratios)
    print_table(
        f"shipping CPU per delivered event (minus the no-op child), median of {rounds} rounds of {n} records",
        ["variant", "added by shipping"],
        [["spool off", fmt_us(median(added["memory"]))], ["spool on", fmt_us(median(added["spool"]))]],
    )
    return [
        Result("spool", "shipping CPU per event, spool off", fmt_us(median(added["memory"]))),
        Result("spool", "shipping CPU per event, spool on", fmt_us(median(added["spool"]))),
        Result("spool", "shipping CPU, spool on / off", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3),
    ]


def callers_cost(url: str, client: Any, n: int, rounds: int) -> list[Result]:
    from loguru import logger

    from loguru_cloudwatch import CloudWatchSink

    walls: dict[str, list[float]] = {"memory": [], "spool": []}
    for round_index in range(rounds):
        order = ["memory", "spool"] if round_index % 2 == 0 else ["spool", "memory"]
        for variant in order:
            stream = f"caller-{variant}-{round_index}"
            create_group_and_stream(client, GROUP, stream)
            spool = {"spool_dir": tempfile.mkdtemp()} if variant == "spool" else {}
            sink = CloudWatchSink(GROUP, stream, endpoint_url=url, region_name=REGION, shutdown_timeout=120, **spool)
            logger.remove()
            handler = logger.add(sink)
            wall, _ = burst(logger, n)
            logger.remove(handler)
            check_all_delivered(client, GROUP, stream, n, variant)
            walls[variant].append(wall / n)
    ratio = median([s / m for m, s in zip(walls["memory"], walls["spool"], strict=True)])
    print_table(
        f"caller's wall time per log call, median of {rounds} alternating rounds of {n} calls",
        ["variant", "per call"],
        [["spool off", fmt_us(median(walls["memory"]))], ["spool on", fmt_us(median(walls["spool"]))]],
    )
    return [Result("spool", "caller's cost, spool on / off", f"{ratio:.2f}x", "<= 1.05x", ratio <= 1.05)]


def backlog_drain(url: str, client: Any, n: int) -> list[Result]:
    from loguru import logger

    from loguru_cloudwatch import CloudWatchSink

    create_group_and_stream(client, GROUP, "backlog")
    with FaultProxy(url) as proxy:
        proxy.set_schedule(itertools.repeat("503"))
        sink = CloudWatchSink(
            GROUP, "backlog", endpoint_url=proxy.url, region_name=REGION, spool_dir=tempfile.mkdtemp(),
            max_queue_size=n // 10, retry_delay=0.05, shutdown_timeout=120, on_error=lambda problem: None,
        )  # fmt: skip
        logger.remove()
        handler = logger.add(sink, format="{message}", serialize=False)
        for i in range(n):
            logger.info(f"backlog record {i:07d} " + "x" * 100)
            if i % 1000 == 0:
                time.sleep(0.001)  # let the spool thread keep up: memory holds a tenth of the backlog
        deadline = time.monotonic() + 120
        while sink.stats.spooled < n and time.monotonic() < deadline:
            time.sleep(0.05)
        on_disk = sink.stats.spooled
        proxy.set_schedule(itertools.repeat("ok"))
        started = time.monotonic()
        flusher = threading.Thread(target=sink.force_flush, args=(300,))
        flusher.start()  # makes the backlog due now, whatever backoff the outage left
        first = None
        while flusher.is_alive():
            if first is None and sink.stats.sent:
                first = time.monotonic()
            time.sleep(0.005)
        ended = time.monotonic()
        stats = sink.stats
        logger.remove(handler)
    first = first or ended
    rate = stats.sent / max(ended - first, 1e-9)
    print(f"backlog: {on_disk} records on disk (memory holds at most {n // 10}), dropped {stats.dropped}; after the "
          f"outage the first call went in {first - started:.2f}s, then {stats.sent} records in {ended - first:.2f}s "
          f"({stats.batches} calls): {rate:,.0f} records/s")  # fmt: skip
    return [Result("spool", "backlog drain after an outage", f"{rate:,.0f} records/s")]


def main(argv: list[str] | None = None) -> list[Result]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=100_000)
    args = parser.parse_args(argv)
    use_fake_aws_env()
    with MotoServer() as moto:
        client = logs_client(moto.url)
        print("1. shipping CPU per event, spool off and on")
        results = shipping_cpu(moto.url, client, args.records, args.rounds)
        print("2. caller's cost, spool off and on")
        results += callers_cost(moto.url, client, args.records, args.rounds)
        print("3. backlog drain after an outage")
        results += backlog_drain(moto.url, client, args.backlog)
    report(results, args.summary_json)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
