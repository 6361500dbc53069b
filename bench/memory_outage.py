"""Benchmark 4: memory under an outage, peak RSS growth vs ``max_queue_bytes``.

A fresh child process adds a CloudWatchSink with ``max_queue_bytes=--max-queue-mib`` (other options
default) whose destination never accepts anything, logs a few records, waits until the worker has built
its client and met the outage (so the client's memory is in the baseline), reads its RSS, then logs the
issue's log call until the queue drops its oldest records, and keeps logging ``--extra`` times as many
again (the steady state of drop-oldest). Peak growth = VmHWM at the end minus VmRSS at the baseline
(/proc/self/status). Outages:

- unreachable: a loopback port nothing listens on (connection refused at once, retried with backoff);
- http503: a local server answering 503 to every request, after reading its 1 MiB body;
- nocreds: no credentials at all (the worker never builds a client).

    python -m bench.memory_outage [--max-queue-mib 32] [--rounds 3] [--modes unreachable,http503,nocreds]
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench._common import MIB, Result, base_parser, fmt_mib, median, print_table, report
from tests.support.aws import fake_aws_env
from tests.support.moto_server import free_port

CHILD = r"""
import gc, json, sys, time
url, max_bytes, extra = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields

from loguru import logger
from loguru_cloudwatch import CloudWatchSink
logger.remove()
kinds = {}
def on_error(problem):
    kinds[problem.kind] = kinds.get(problem.kind, 0) + 1
sink = CloudWatchSink("bench-memory", "outage", endpoint_url=url, region_name="us-east-1",
                      max_queue_bytes=max_bytes, shutdown_timeout=0.5, on_error=on_error)
handler_id = logger.add(sink)
ip = "203.0.113.7"
for i in range(100):
    logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
sink.force_flush(timeout=0.01)
deadline = time.monotonic() + 10
while not (sink.stats.failed or kinds) and time.monotonic() < deadline:
    time.sleep(0.01)
gc.collect()
base = status()
i = 100
while not sink.stats.dropped:
    for i in range(i, i + 1000):
        logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
    i += 1
first_drop = i
for i in range(i, i + int(first_drop * extra)):
    logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
end = status()
stats = sink.stats
# what the bound counts (payload + per-record overhead); internal, so optional
queue_bytes = getattr(getattr(sink, "_queue", None), "memory_bytes", -1)
logger.remove(handler_id)
print(json.dumps({"base_rss": base["VmRSS"], "base_hwm": base["VmHWM"], "end_rss": end["VmRSS"],
                  "hwm": end["VmHWM"], "logged": i + 1, "first_drop": first_drop, "queued": stats.queued,
                  "dropped": stats.dropped, "queue_bytes": queue_bytes, "failed": stats.failed,
                  "sent": stats.sent, "kinds": kinds}))
"""


class _Answer503(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"__type":"ServiceUnavailableException","message":"bench outage"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def run_child(mode: str, max_bytes: int, extra: float, url_503: str) -> dict[str, Any]:
    env = fake_aws_env()
    if mode == "unreachable":
        url = f"http://127.0.0.1:{free_port()}"  # bound then closed: nothing listens there
    elif mode == "http503":
        url = url_503
    else:
        url = "http://127.0.0.1:9"
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(name, None)
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(max_bytes), str(extra)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=300,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{mode} child failed: {completed.stderr[-2000:]}")
    outcome: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    if outcome["sent"] or not outcome["dropped"]:
        raise AssertionError(f"{mode}: the outage did not hold or the queue never filled: {outcome}")
    return outcome


def main(argv: list[str] | None = None) -> list[Result]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--max-queue-mib", type=float, default=32.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--extra",
        type=float,
        default=1.0,
        help="records logged after the first drop, as a multiple of those logged before it",
    )
    parser.add_argument("--modes", default="unreachable,http503,nocreds")
    args = parser.parse_args(argv)
    max_bytes = int(args.max_queue_mib * MIB)
    modes = [m for m in args.modes.split(",") if m]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer503)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url_503 = f"http://127.0.0.1:{server.server_address[1]}"
    outcomes: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    print(f"memory under outage: max_queue_bytes={fmt_mib(max_bytes)}, {args.rounds} rounds per outage")
    try:
        for round_index in range(args.rounds):
            for mode in modes:
                outcome = run_child(mode, max_bytes, args.extra, url_503)
                outcome["growth"] = outcome["hwm"] - outcome["base_rss"]
                outcomes[mode].append(outcome)
                print(
                    f"  round {round_index + 1} {mode}: peak growth {fmt_mib(outcome['growth'])} "
                    f"(baseline RSS {fmt_mib(outcome['base_rss'])}, end RSS {fmt_mib(outcome['end_rss'])}), "
                    f"logged {outcome['logged']}, first drop after {outcome['first_drop']}, queued "
                    f"{outcome['queued']} ({fmt_mib(outcome['queue_bytes'])} counted), dropped {outcome['dropped']}"
                )
    finally:
        server.shutdown()
        server.server_close()
    rows = []
    results = []
    for mode, items in outcomes.items():
        growth = median([o["growth"] for o in items])
        ratio = median([o["growth"] / max_bytes for o in items])
        rows.append(
            [mode, fmt_mib(growth), fmt_mib(max_bytes), f"{ratio:.2f}x", f"{median([o['queued'] for o in items]):.0f}"]
        )
        results.append(
            Result(
                "4 memory under outage",
                f"peak RSS growth / max_queue_bytes ({mode})",
                f"{fmt_mib(growth)} / {fmt_mib(max_bytes)} = {ratio:.2f}x",
                "<= 1.25x",
                ratio <= 1.25,
            )
        )
    print_table(
        f"peak RSS growth under outage (median of {args.rounds} fresh processes)",
        ["outage", "peak growth", "max_queue_bytes", "ratio", "records held"],
        rows,
    )
    report(results, args.summary_json)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
