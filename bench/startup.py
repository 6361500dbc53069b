"""Benchmark 6: start-up, how long ``logger.add(CloudWatchSink(...))`` takes, and the first record's delay.

add: ``logger.add(CloudWatchSink(group, stream, endpoint_url=..., region_name=...))`` timed until it
returns, ``--adds`` times (each followed by an untimed ``logger.remove()``), median; also the very first
add of a fresh process (cold: first use of the code paths), median over ``--cold`` processes. A hook
counts HTTP requests made by any logs client while ``logger.add`` runs: the sink must make none.

first record: a fresh sink is added, one record is logged at once, and the time until its PutLogEvents
call has completed (moto has stored it, so it is readable) is measured: with the default
``flush_interval=2.0`` (dominated by the interval), with ``force_flush()`` right after the record, and
with ``force_flush()`` once the sink is warm (a record already delivered: its client is built).

    python -m bench.startup [--adds 100] [--cold 5] [--rounds 5]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import (
    IP,
    MotoServer,
    PutRecorder,
    Result,
    base_parser,
    fmt_ms,
    logs_client,
    median,
    print_table,
    report,
)
from tests.support.aws import REGION, create_group_and_stream, fake_aws_env, read_messages, use_fake_aws_env
from tests.support.recorders import attaching_to_new_logs_clients

GROUP = "bench-startup"

COLD_CHILD = r"""
import json, sys, time
from loguru import logger
ti = time.perf_counter()
from loguru_cloudwatch import CloudWatchSink
logger.remove()
t0 = time.perf_counter()
handler_id = logger.add(CloudWatchSink("bench-startup", "cold", endpoint_url=sys.argv[1], region_name="us-east-1"))
t1 = time.perf_counter()
logger.remove(handler_id)
print(json.dumps({"import": t0 - ti, "add": t1 - t0}))
"""


class SendCounter:
    def __init__(self) -> None:
        self.sends: list[float] = []

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.cloudwatch-logs", self._on_send)

    def _on_send(self, **_: Any) -> None:
        self.sends.append(time.perf_counter())


def time_adds(url: str, count: int) -> tuple[dict[str, list[float]], int]:
    """Interleaved: logger.add(CloudWatchSink(...)), the constructor alone, and logger.add(no-op) for reference."""
    from loguru import logger

    from loguru_cloudwatch import CloudWatchSink

    counter = SendCounter()
    times: dict[str, list[float]] = {"add": [], "construct": [], "noop": []}
    during = 0
    with attaching_to_new_logs_clients(counter.attach):
        for index in range(count):
            t0 = time.perf_counter()
            handler_id = logger.add(CloudWatchSink(GROUP, f"add-{index}", endpoint_url=url, region_name=REGION))
            t1 = time.perf_counter()
            times["add"].append(t1 - t0)
            during += sum(1 for t in counter.sends if t0 <= t <= t1)
            logger.remove(handler_id)
            t0 = time.perf_counter()
            sink = CloudWatchSink(GROUP, f"construct-{index}", endpoint_url=url, region_name=REGION)
            times["construct"].append(time.perf_counter() - t0)
            sink.stop()
            t0 = time.perf_counter()
            handler_id = logger.add(lambda m: None)
            times["noop"].append(time.perf_counter() - t0)
            logger.remove(handler_id)
    return times, during


def cold_add(url: str) -> dict[str, float]:
    """A fresh process's ``import loguru_cloudwatch`` and first ``logger.add(CloudWatchSink(...))``, in
    seconds (the first sink imports boto3)."""
    completed = subprocess.run(
        [sys.executable, "-c", COLD_CHILD, url],
        capture_output=True,
        text=True,
        env=fake_aws_env(),
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"cold child failed: {completed.stderr[-2000:]}")
    times = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"import": float(times["import"]), "add": float(times["add"])}


def first_record(url: str, stream: str, how: str) -> float:
    """Seconds from logging one record to the completion of the PutLogEvents call that stored it."""
    from loguru import logger

    from loguru_cloudwatch import CloudWatchSink

    client = logs_client(url)
    create_group_and_stream(client, GROUP, stream)
    recorder = PutRecorder()
    with attaching_to_new_logs_clients(recorder.attach):
        sink = CloudWatchSink(GROUP, stream, endpoint_url=url, region_name=REGION)
        handler_id = logger.add(sink)
        expected = 1
        if how == "warm force_flush()":
            # a record already delivered: the client is built and its connection open
            logger.bind(request_id=-1).info("user {} logged in from {}", -1, IP)
            if not sink.force_flush(timeout=30):
                raise AssertionError("force_flush failed")
            expected = 2
        t0 = time.perf_counter()
        logger.bind(request_id=0).info("user {} logged in from {}", 0, IP)
        if how == "default (flush_interval=2.0)":
            if not recorder.completed.wait(30):
                raise AssertionError("the first record was never sent")
        elif not sink.force_flush(timeout=30):
            raise AssertionError("force_flush failed")
        delay = recorder.last_completed - t0
        logger.remove(handler_id)
    if len(read_messages(client, GROUP, stream)) != expected:
        raise AssertionError("the record is not readable in moto")
    client.close()
    return delay


def main(argv: list[str] | None = None) -> list[Result]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=100)
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="first-record measurements per way")
    args = parser.parse_args(argv)
    use_fake_aws_env()
    from loguru import logger

    logger.remove()
    with MotoServer() as moto:
        cold_runs = [cold_add(moto.url) for _ in range(args.cold)]
        colds = [run["add"] for run in cold_runs]
        cold_imports = [run["import"] for run in cold_runs]
        cold_totals = [run["import"] + run["add"] for run in cold_runs]
        time_adds(moto.url, 5)  # warm-up
        adds, requests_during_add = time_adds(moto.url, args.adds)
        ways = ("default (flush_interval=2.0)", "force_flush() at once", "warm force_flush()")
        delays: dict[str, list[float]] = {way: [] for way in ways}
        for round_index in range(args.rounds):
            for way in ways:
                delays[way].append(first_record(moto.url, f"first-{round_index}-{way.split()[0]}", way))
    add_median = median(adds["add"])
    sorted_adds = sorted(adds["add"])
    p90 = sorted_adds[int(0.9 * (len(sorted_adds) - 1))]
    print_table(
        "logger.add(CloudWatchSink(...)) until it returns (no network call may happen)",
        ["measure", "time"],
        [
            [f"median of {args.adds} adds", fmt_ms(add_median)],
            ["90th percentile", fmt_ms(p90)],
            ["max", fmt_ms(max(adds["add"]))],
            [f"first add in a fresh process (median of {args.cold})", fmt_ms(median(colds))],
            ["import loguru_cloudwatch in that process (median)", fmt_ms(median(cold_imports))],
            ["import + first add in that process (median)", fmt_ms(median(cold_totals))],
            ["HTTP requests made while logger.add ran", str(requests_during_add)],
            ["of which CloudWatchSink(...) alone (median)", fmt_ms(median(adds["construct"]))],
            ["reference: logger.add(lambda m: None) (median)", fmt_ms(median(adds["noop"]))],
        ],
    )
    print_table(
        f"first record: logged -> its PutLogEvents completed (stored, readable), median of {args.rounds}",
        ["way", "delay (median)", "spread"],
        [
            [way, fmt_ms(median(values)), f"{fmt_ms(min(values))}-{fmt_ms(max(values))}"]
            for way, values in delays.items()
        ],
    )
    results = [
        Result(
            "6 start-up",
            "logger.add(CloudWatchSink(...)) median",
            fmt_ms(add_median),
            "< 5 ms",
            add_median < 0.005 and requests_during_add == 0,
        ),
        Result("6 start-up", "logger.add, first in a fresh process", fmt_ms(median(colds))),
        Result("6 start-up", "import + first logger.add, fresh process", fmt_ms(median(cold_totals))),
        Result("6 start-up", "CloudWatchSink(...) alone", fmt_ms(median(adds["construct"]))),
        Result("6 start-up", "reference: logger.add(lambda m: None)", fmt_ms(median(adds["noop"]))),
    ]
    results += [Result("6 start-up", f"first record delay, {way}", fmt_ms(median(v))) for way, v in delays.items()]
    report(results, args.summary_json)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
