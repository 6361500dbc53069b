"""``python -m bench [name ...]``: run the benchmarks (all by default), each in its own process, against
one moto server, and print a summary of every number with the issue's targets.

Names: caller_cost, cpu_per_event, batching, memory_outage, drain, startup, contention. Options after ``--`` are
passed to every benchmark run (e.g. ``python -m bench caller_cost -- --rounds 3``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import MotoServer, print_table
from tests.support.aws import fake_aws_env

BENCHMARKS = ("caller_cost", "cpu_per_event", "batching", "memory_outage", "drain", "startup", "contention")


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    unknown = [name for name in argv if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    names = argv or list(BENCHMARKS)
    root = Path(__file__).resolve().parent.parent
    failures = []
    started = time.perf_counter()
    print(f"load average before: {os.getloadavg()[0]:.1f} (benchmarks on a busy machine are noisy)")
    with tempfile.TemporaryDirectory() as scratch, MotoServer() as moto:
        summary = Path(scratch) / "summary.json"
        env = fake_aws_env()
        env["BENCH_MOTO_URL"] = moto.url
        durations = {}
        for name in names:
            print(f"\n=== {name} " + "=" * (70 - len(name)), flush=True)
            t0 = time.perf_counter()
            code = subprocess.call(
                [sys.executable, "-m", f"bench.{name}", "--summary-json", str(summary), *extra],
                cwd=root,
                env=env,
            )
            durations[name] = time.perf_counter() - t0
            print(f"({name} took {durations[name]:.0f}s)", flush=True)
            if code != 0:
                failures.append(name)
        results = json.loads(summary.read_text()) if summary.exists() else []
    print_table(
        f"Summary (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {time.perf_counter() - started:.0f}s, "
        f"load average at the end {os.getloadavg()[0]:.1f})",
        ["benchmark", "measure", "result", "target", ""],
        [
            [
                r["benchmark"],
                r["metric"],
                r["value"],
                r["target"],
                "" if r["passed"] is None else ("PASS" if r["passed"] else "FAIL"),
            ]
            for r in results
        ],
    )
    if failures:
        print(f"\nbenchmarks that did not complete: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
