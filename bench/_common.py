"""Shared machinery of the benchmarks: the moto server they use, a counting recorder, statistics, tables.

Every benchmark talks to a real moto server over HTTP, started with ``python -m moto.server`` in a
separate process (so its CPU is not the benchmark's), or reuses the one named by ``BENCH_MOTO_URL``
(``python -m bench`` starts one for the whole run). What the test-suite has too comes from
``tests/support``: the fake AWS environment, ``REGION``, creating and reading back streams
(``tests.support.aws``), the moto process and ``free_port`` (``tests.support.moto_server``), hooks on
every new logs client (``tests.support.recorders.attaching_to_new_logs_clients``). The benchmarks
import those from there; what is only theirs is here.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tests.support.aws import REGION, fake_aws_env, read_messages
from tests.support.moto_server import MotoProcess

IP = "203.0.113.7"
MIB = 1024 * 1024

#: The log call every benchmark measures (the issue's example).
LOG_CALL = 'logger.bind(request_id=i).info("user {} logged in from {}", i, ip)'


# --------------------------------------------------------------------------- moto server and clients


class MotoServer(MotoProcess):
    """``python -m moto.server`` in its own process, with the fake AWS environment, or the server already
    running at ``url`` or ``BENCH_MOTO_URL`` (``python -m bench`` starts one for the whole run)."""

    def __init__(self, url: str | None = None) -> None:
        super().__init__(url or os.environ.get("BENCH_MOTO_URL"), env=fake_aws_env())


def logs_client(url: str, **kwargs: Any) -> Any:
    """A boto3 logs client as an application (or watchtower) makes it: the default session and settings
    (unlike ``tests.support.aws.make_logs_client``, whose retries and timeouts are the tests' own)."""
    import boto3

    return boto3.client("logs", endpoint_url=url, region_name=REGION, **kwargs)


def stored_bytes(client: Any, group: str, stream: str) -> int:
    """moto's storedBytes of a stream (the sum of the stored messages' lengths in characters)."""
    streams = client.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]
    return sum(s.get("storedBytes", 0) for s in streams if s["logStreamName"] == stream)


def request_ids(messages: Sequence[str]) -> list[int]:
    """The ``i`` of each stored message of the benchmark log call (JSON documents or plain text)."""
    ids = []
    for message in messages:
        if message.startswith("{"):
            ids.append(int(json.loads(message)["request_id"]))
        else:
            ids.append(int(message.split()[1]))
    return ids


def check_all_delivered(client: Any, group: str, stream: str, n: int, what: str) -> None:
    """Raise unless the stream holds exactly the records 0..n-1, each once."""
    ids = request_ids(read_messages(client, group, stream))
    if sorted(ids) != list(range(n)):
        missing = n - len(set(ids) & set(range(n)))
        raise AssertionError(f"{what}: {len(ids)} events stored for {n} records ({missing} missing)")


# --------------------------------------------------------------------------- counting what the sink sends


class PutRecorder:
    """Counts PutLogEvents calls and HTTP attempts, and keeps the events of each call (unless told not to).

    Lighter than the tests' ``PutLogEventsRecorder`` (no copies, no per-attempt bodies), and it notes when
    the last call completed. The sink builds its own client in its worker thread: attach with
    ``tests.support.recorders.attaching_to_new_logs_clients(recorder.attach)``, which reaches it without
    changing any sink option.
    """

    def __init__(self, keep_events: bool = True) -> None:
        self.keep_events = keep_events
        self.calls = 0
        self.attempts = 0
        self.batches: list[list[dict[str, Any]]] = []
        self.last_completed = 0.0
        self.completed = threading.Event()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        events = client.meta.events
        # before-call sees the serialized body as it will be sent (the sink builds it itself with orjson
        # and passes botocore an empty logEvents list, so the API parameters would show nothing).
        events.register("before-call.cloudwatch-logs.PutLogEvents", self._on_call)
        events.register("before-send.cloudwatch-logs.PutLogEvents", self._on_send)
        events.register("after-call.cloudwatch-logs.PutLogEvents", self._on_done)

    def _on_call(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls += 1
            if self.keep_events:
                self.batches.append(json.loads(params["body"])["logEvents"])

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1

    def _on_done(self, **_: Any) -> None:
        self.last_completed = time.perf_counter()
        self.completed.set()


# --------------------------------------------------------------------------- statistics and output


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> str:
    """min-max of a series, for the reader to judge the noise."""
    return f"{min(values):.3g}-{max(values):.3g}"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def fmt_mib(size: float) -> str:
    return f"{size / MIB:.1f} MiB"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


@dataclass
class Result:
    """One line of the suite's summary."""

    benchmark: str
    metric: str
    value: str
    target: str = ""
    passed: bool | None = None  # None: informational, no target

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


def report(results: Sequence[Result], summary_json: str | None) -> None:
    """Print the targets with PASS/FAIL and, for ``python -m bench``, append them to a JSON file."""
    for result in results:
        if result.passed is not None:
            print(f"target: {result.metric} {result.target} -> {result.value}: {result.verdict}")
    if summary_json:
        path = Path(summary_json)
        existing = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else []
        existing.extend(asdict(result) for result in results)
        path.write_text(json.dumps(existing, indent=1))
    sys.stdout.flush()


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--summary-json", help=argparse.SUPPRESS)
    return parser


@contextlib.contextmanager
def gc_quiet() -> Iterator[None]:
    """Start a timed region from a collected heap, like timeit does not (the sink and loguru allocate)."""
    gc.collect()
    yield


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def min_calls(sizes: Sequence[int], max_events: int = 10_000, max_bytes: int = 1_048_576) -> int:
    """The fewest PutLogEvents calls that carry these events in order: greedy packing (optimal for
    contiguous batches) under the event-count limit and the byte limit (message bytes + 26 each)."""
    calls = 0
    count = 0
    size = 0
    for message_bytes in sizes:
        cost = message_bytes + 26
        if count and (count >= max_events or size + cost > max_bytes):
            calls += 1
            count = 0
            size = 0
        count += 1
        size += cost
    return calls + (1 if count else 0)


def wait4_rusage(process: subprocess.Popen[Any], timeout: float) -> tuple[int, float, float]:
    """Reap a child with ``os.wait4``: (exit code, user seconds, system seconds) of that child alone."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_utime, usage.ru_stime
        if time.monotonic() > deadline:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            raise TimeoutError(f"child {process.args!r} did not finish within {timeout}s")
        time.sleep(0.005)


#: A child process logging ``n`` records through one variant, then removing its handler (everything
#: delivered): ``noop`` (a no-op sink), ``sink`` (CloudWatchSink), ``spool`` (CloudWatchSink with a spool in
#: a new directory), ``watchtower``. argv: variant, n, endpoint URL, group, stream. Prints the sink's
#: sent / dropped / abandoned as JSON ({} for the others), for ``child_cpu``.
LOGGING_CHILD = r"""
import json, sys, tempfile
variant, n, url, group, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
from loguru import logger
logger.remove()
ip = "203.0.113.7"
out = {}
if variant == "noop":
    handler_id = logger.add(lambda m: None)
elif variant in ("sink", "spool"):
    from loguru_cloudwatch import CloudWatchSink
    spool = {"spool_dir": tempfile.mkdtemp()} if variant == "spool" else {}
    sink = CloudWatchSink(group, stream, endpoint_url=url, region_name="us-east-1", shutdown_timeout=120, **spool)
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
if variant in ("sink", "spool"):
    stats = sink.stats
    out = {"sent": stats.sent, "dropped": stats.dropped, "abandoned": stats.abandoned}
elif variant == "watchtower":
    for thread in handler.threads:
        thread.join(120)  # watchtower's close() returns before its last batch is sent
print(json.dumps(out))
"""


def child_cpu(code: str, args: Sequence[str], timeout: float = 300) -> tuple[float, Any]:
    """Run ``python -c code *args`` from the repository root with the fake AWS environment: the CPU seconds
    (user + system, every thread) of that child alone, and the JSON of the last line it printed."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=out,
            env=fake_aws_env(),
            cwd=Path(__file__).resolve().parent.parent,
        )
        code_, user, system = wait4_rusage(process, timeout)
        out.seek(0)
        text = out.read()
    if code_ != 0:
        raise RuntimeError(f"child {args!r} failed ({code_}): {text}")
    return user + system, json.loads(text.strip().splitlines()[-1])


def isclose_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"
