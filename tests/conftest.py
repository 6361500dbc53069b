"""Shared fixtures: a moto server, a hermetic AWS environment, recorders and fault injection."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from loguru import logger

from loguru_cloudwatch import _retry
from loguru_cloudwatch._sink import live_sinks
from tests.support.aws import fake_aws_variables, make_logs_client
from tests.support.faults import FaultInjector
from tests.support.moto_server import MotoServerInfo, reset_moto, threaded_moto_server
from tests.support.problems import Problems
from tests.support.proxy import FaultProxy
from tests.support.recorders import ApiCallRecorder, PutLogEventsRecorder, attach_to_new_logs_clients


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServerInfo]:
    """One moto server on a free loopback port for the whole session."""
    with threaded_moto_server() as server:
        yield server


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and nothing from the real machine's AWS configuration."""
    # Drop every AWS_* variable (endpoint overrides, retry settings, container/web
    # identity credentials...), not just the well-known ones.
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    # Config and credentials files that do not exist: nothing can be read from them.
    variables = fake_aws_variables(
        "testing", str(tmp_path / "no-such-aws-config"), str(tmp_path / "no-such-aws-credentials")
    )
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    # boto3's default session caches credentials/region across tests.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture(autouse=True)
def reset_logger() -> Iterator[None]:
    """Every test starts and ends with no loguru handlers (as loguru's own suite does)."""
    logger.remove()
    yield
    logger.remove()


@pytest.fixture(autouse=True)
def stop_leftover_sinks(reset_logger: None) -> Iterator[None]:
    """Every sink a test made is stopped when it ends, also one never added to loguru (or no longer in it).

    Otherwise its worker would go on running into later tests: sending to a server that is gone, looking
    for credentials, holding records that a module-level ``force_flush()`` would wait for.
    """
    before = {id(sink) for sink in live_sinks()}
    yield
    for sink in live_sinks():
        if id(sink) not in before:
            sink.stop()


@pytest.fixture
def endpoint(moto_server: MotoServerInfo) -> str:
    """The moto URL, with all moto state wiped before the test."""
    status = reset_moto(moto_server.url, timeout=10)
    assert status == 200, status
    return moto_server.url


@pytest.fixture
def logs_client(endpoint: str) -> Iterator[Any]:
    """A boto3 logs client on moto, for setting up and reading back."""
    client = make_logs_client(endpoint)
    yield client
    client.close()


@pytest.fixture
def put_recorder(monkeypatch: pytest.MonkeyPatch) -> PutLogEventsRecorder:
    """Records PutLogEvents params of every logs client created after this fixture.

    Clients created earlier can be added with ``put_recorder.attach(client)``.
    """
    recorder = PutLogEventsRecorder()
    attach_to_new_logs_clients(monkeypatch, recorder.attach)
    return recorder


@pytest.fixture
def fault_injector(monkeypatch: pytest.MonkeyPatch) -> FaultInjector:
    """A FaultInjector (empty schedule) on every logs client created after this fixture.

    Use ``fault_injector.set_schedule([...])``; ``fault_injector.attach(client)`` for
    clients created earlier.
    """
    injector = FaultInjector()
    attach_to_new_logs_clients(monkeypatch, injector.attach)
    return injector


@pytest.fixture
def fault_proxy(endpoint: str) -> Iterator[FaultProxy]:
    """A started FaultProxy in front of moto (empty schedule: forwards everything)."""
    with FaultProxy(endpoint) as proxy:
        yield proxy


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> ApiCallRecorder:
    """Every logs API call and HTTP attempt of the clients created from now on."""
    return ApiCallRecorder().install(monkeypatch)


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full jitter picks uniform(0, ceiling): take the ceiling, so backoff delays become exact."""
    monkeypatch.setattr(_retry, "random", SimpleNamespace(uniform=lambda low, high: high))


@pytest.fixture
def problems() -> Problems:
    """What the sink under test reported: pass it as ``on_error``."""
    return Problems()
