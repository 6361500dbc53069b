"""Benchmark 7: a fleet behind one account-wide quota, side by side with watchtower.

CloudWatch's PutLogEvents and CreateLogStream quotas are per account and region, so processes that stop
(or start) together are throttled together. Each round starts ``--processes`` child processes behind one
loopback proxy (``tests/support/proxy.py``) whose token bucket answers ThrottlingException beyond ``--rate``
calls a second, shared by all of them, and releases them at the same instant (their stdin closes):

- **drain**: each child has logged ``--records`` records (one PutLogEvents call's worth for either tool;
  their streams exist; still queued, since the sink runs with ``flush_interval=60`` like watchtower's
  default ``send_interval``) and exits normally the moment it is released: loguru's exit hook stops the
  sink (``shutdown_timeout=--shutdown-timeout``) or closes watchtower's handler. PutLogEvents is limited.
- **start**: each child adds its sink when released (its own ``{pid}``-like stream, not yet created) and
  logs ``--start-records`` records over about 2 s, then exits normally. CreateLogStream is limited.

Equal work: the sink sends a JSON document per record and watchtower the bare message, so each child's
records are sized for one call with either tool (checked: the minimum number of calls is printed). For
every tool the table gives records stored (once), duplicates, PutLogEvents requests per delivered batch
(every request, throttled ones included, over the successful ones), and each child's exit: the time from
the end of its program (its last line) to the end of the process (median and worst). watchtower runs
with its defaults and the default botocore client it builds.

    python -m bench.contention [--processes 20] [--rate 4] [--rounds 2] [--scenarios drain,start]
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from bench._common import IP, MotoServer, Result, base_parser, logs_client, median, min_calls, print_table, report
from tests.support.aws import fake_aws_env, read_messages

GROUP = "bench-contention"
TOOLS = ("loguru-cloudwatch", "watchtower")

# A child: build the tool, log (drain) or wait (start), then leave through the normal exit path.
CHILD = r"""
import os, sys, time
tool, url, group, stream, scenario = sys.argv[1:6]
records, shutdown_timeout = int(sys.argv[6]), float(sys.argv[7])
from loguru import logger
logger.remove()

def add_tool():
    if tool == "watchtower":
        import boto3, watchtower
        client = boto3.client("logs", endpoint_url=url, region_name="us-east-1")
        handler = watchtower.CloudWatchLogHandler(
            log_group_name=group, log_stream_name=stream, boto3_client=client, create_log_group=False
        )
        logger.add(handler, format="{message}")
    else:
        from loguru_cloudwatch import CloudWatchSink
        # drain: everything still queued at exit, as with watchtower's 60 s send_interval.
        logger.add(CloudWatchSink(group, stream, endpoint_url=url, region_name="us-east-1",
                                  flush_interval=60 if scenario == "drain" else 2,
                                  shutdown_timeout=shutdown_timeout))

ip = "@IP@"
if scenario == "drain":
    add_tool()
    for i in range(records):
        logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
    print("READY", flush=True)
    sys.stdin.read()
    print("ENDING", time.monotonic(), flush=True)
else:
    import boto3, botocore  # imported before the release, like the tool's own imports
    if tool != "watchtower":
        import loguru_cloudwatch
    else:
        import watchtower
    print("READY", flush=True)
    sys.stdin.read()
    add_tool()
    pause = 2.0 / records
    for i in range(records):
        logger.bind(request_id=i).info("user {} logged in from {}", i, ip)
        time.sleep(pause)
    print("ENDING", time.monotonic(), flush=True)
""".replace("@IP@", IP)


@dataclass
class Outcome:
    tool: str
    scenario: str
    expected: int = 0
    stored_once: int = 0
    duplicates: int = 0
    missing: int = 0
    put_requests: int = 0
    put_delivered: int = 0
    create_requests: int = 0
    minimum_calls: int = 0
    exit_times: list[float] = field(default_factory=list)
    undelivered_lines: int = 0

    @property
    def calls_per_batch(self) -> float:
        return self.put_requests / self.put_delivered if self.put_delivered else float("nan")


def run_round(
    tool: str,
    scenario: str,
    moto_url: str,
    processes: int,
    records: int,
    rate: float,
    shutdown_timeout: float,
    tag: str,
) -> Outcome:
    from tests.support.proxy import FaultProxy

    checker = logs_client(moto_url)
    with contextlib.suppress(checker.exceptions.ResourceAlreadyExistsException):
        checker.create_log_group(logGroupName=GROUP)
    streams = [f"{tag}-{index}" for index in range(processes)]
    if scenario == "drain":
        for stream in streams:
            checker.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    outcome = Outcome(tool, scenario, expected=processes * records)
    with FaultProxy(moto_url) as proxy:
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    tool,
                    proxy.url,
                    GROUP,
                    stream,
                    scenario,
                    str(records),
                    str(shutdown_timeout),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=fake_aws_env(),
            )
            for stream in streams
        ]
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "READY":
                raise RuntimeError(f"a {tool} child failed to start: {child.communicate()[1][-2000:]}")
        proxy.limit("PutLogEvents" if scenario == "drain" else "CreateLogStream", per_second=rate)
        exits: list[float] = [0.0] * processes
        errors: list[str] = [""] * processes

        def reap(index: int, started: float) -> None:
            child = children[index]
            assert child.stdout is not None and child.stderr is not None
            errors[index] = child.stderr.read()
            out = child.stdout.read().split()
            child.wait(120)
            # From the moment the child's program ended (time.monotonic() is the same clock in every
            # process here) to the process's end: the exit drain.
            ending = float(out[out.index("ENDING") + 1]) if "ENDING" in out else started
            exits[index] = time.monotonic() - ending

        released = time.monotonic()
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
        reapers = [threading.Thread(target=reap, args=(index, released)) for index in range(processes)]
        for reaper in reapers:
            reaper.start()
        for reaper in reapers:
            reaper.join()
        outcome.exit_times = exits
        outcome.undelivered_lines = sum("could not be delivered" in text for text in errors)
        outcome.put_requests = proxy.op_count("PutLogEvents")
        outcome.put_delivered = proxy.op_count("PutLogEvents", "accepted")
        outcome.create_requests = proxy.op_count("CreateLogStream")
    for stream in streams:
        messages = read_messages(checker, GROUP, stream)  # a stream never created reads as []
        ids = collections.Counter(_request_id(message) for message in messages)
        outcome.stored_once += sum(1 for i in range(records) if ids.get(i, 0) >= 1)
        outcome.duplicates += sum(count - 1 for count in ids.values() if count > 1)
        outcome.missing += sum(1 for i in range(records) if i not in ids)
        outcome.minimum_calls += min_calls([len(message.encode()) for message in messages]) if messages else 1
    return outcome


def _request_id(message: str) -> int:
    if message.startswith("{"):
        return int(json.loads(message)["request_id"])
    return int(message.split()[1])


def main(argv: list[str] | None = None) -> list[Result]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--records", type=int, default=3000, help="records per child in the drain scenario")
    parser.add_argument("--start-records", type=int, default=500, help="records per child in the start scenario")
    parser.add_argument("--rate", type=float, default=4.0, help="calls a second the shared quota allows")
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenarios", default="drain,start")
    parser.add_argument("--tools", default=",".join(TOOLS))
    args = parser.parse_args(argv)
    os.environ.update(fake_aws_env())
    scenarios = [name for name in args.scenarios.split(",") if name]
    tools = [name for name in args.tools.split(",") if name]
    print(
        f"contention: {args.processes} processes behind one quota of {args.rate:g} calls/s, "
        f"shutdown_timeout={args.shutdown_timeout:g}s, {args.rounds} rounds, scenarios {scenarios}"
    )
    outcomes: dict[tuple[str, str], list[Outcome]] = collections.defaultdict(list)
    with MotoServer() as moto:
        for round_index in range(args.rounds):
            for scenario in scenarios:
                # Alternate which tool goes first, so that neither always meets a warmer machine.
                order = tools if round_index % 2 == 0 else tools[::-1]
                for tool in order:
                    moto.reset()
                    records = args.records if scenario == "drain" else args.start_records
                    outcome = run_round(
                        tool,
                        scenario,
                        moto.url,
                        args.processes,
                        records,
                        args.rate,
                        args.shutdown_timeout,
                        f"{tool}-{scenario}-{round_index}",
                    )
                    outcomes[(scenario, tool)].append(outcome)
                    print(
                        f"  round {round_index + 1} {scenario:5} {tool:17}: stored {outcome.stored_once}/"
                        f"{outcome.expected} ({100 * outcome.stored_once / outcome.expected:.1f}%), "
                        f"{outcome.duplicates} duplicates, {outcome.put_requests} PutLogEvents for "
                        f"{outcome.put_delivered} batches (minimum {outcome.minimum_calls}), "
                        f"{outcome.create_requests} CreateLogStream, exit median {median(outcome.exit_times):.1f}s "
                        f"max {max(outcome.exit_times):.1f}s",
                        flush=True,
                    )
    rows = []
    results: list[Result] = []
    for scenario in scenarios:
        for tool in tools:
            runs = outcomes[(scenario, tool)]
            stored = sum(o.stored_once for o in runs) / sum(o.expected for o in runs)
            duplicates = sum(o.duplicates for o in runs)
            per_batch = median([o.calls_per_batch for o in runs])
            exit_median = median([t for o in runs for t in o.exit_times])
            exit_max = max(t for o in runs for t in o.exit_times)
            rows.append(
                [
                    scenario,
                    tool,
                    f"{100 * stored:.1f}% ({', '.join(f'{100 * o.stored_once / o.expected:.1f}' for o in runs)})",
                    duplicates,
                    f"{per_batch:.2f}",
                    f"{median([o.put_delivered for o in runs]):.0f} (min {runs[0].minimum_calls})",
                    f"{median([o.create_requests for o in runs]):.0f}",
                    f"{exit_median:.1f} / {exit_max:.1f}",
                ]
            )
            if tool == "loguru-cloudwatch":
                results.append(
                    Result(
                        "contention",
                        f"{scenario}: records stored once, {args.processes} processes at {args.rate:g} calls/s",
                        f"{100 * stored:.1f}%, {duplicates} duplicates",
                        "100%, 0 duplicates",
                        stored == 1.0 and duplicates == 0,
                    )
                )
                results.append(
                    Result(
                        "contention",
                        f"{scenario}: slowest exit",
                        f"{exit_max:.1f} s",
                        f"<= shutdown_timeout + 1 = {args.shutdown_timeout + 1:g} s",
                        exit_max <= args.shutdown_timeout + 1,
                    )
                )
                results.append(
                    Result("contention", f"{scenario}: PutLogEvents requests per delivered batch", f"{per_batch:.2f}")
                )
    print_table(
        f"fleet of {args.processes} processes, one quota of {args.rate:g} calls/s ({args.rounds} rounds)",
        [
            "scenario",
            "tool",
            "stored once (each round)",
            "duplicates",
            "PutLogEvents per delivered batch",
            "batches delivered",
            "CreateLogStream calls",
            "exit (s) median / max",
        ],
        rows,
    )
    report(results, args.summary_json)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
