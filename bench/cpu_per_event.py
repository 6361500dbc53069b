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
from tests.support.aws import create_group_and_stream, use_fake_aws_env

GROUP = "bench-cpu"
VARIANTS = ("noop", "sink", "watchtower")


def run_child(variant: str, n: int, url: str, stream: str) -> tuple[float, dict[str, int]]:
    """CPU seconds (user + sys) of one child, and what it printed."""
    cpu, printed = child_cpu(LOGGING_CHILD, [variant, str(n), url, GROUP, stream])
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
