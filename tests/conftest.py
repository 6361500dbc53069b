"""Shared fixtures: a moto server, a hermetic AWS environment, recorders and fault injection."""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from loguru import logger
from moto.server import ThreadedMotoServer

from loguru_cloudwatch import _retry
from loguru_cloudwatch._sink import live_sinks
from tests.helpers import (
    REGION,
    ApiCallRecorder,
    FaultInjector,
    PutLogEventsRecorder,
    attach_to_new_logs_clients,
    make_logs_client,
)
from tests.proxy import FaultProxy


@dataclass(frozen=True)
class MotoServerInfo:
    url: str
    host: str
    port: int


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServerInfo]:
    """One moto server on a free loopback port for the whole session."""
    # werkzeug logs every request at INFO to stderr; only problems are interesting.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # port=0 is supported: the bound port is read back from the werkzeug server.
    host, port = server.get_host_and_port()
    try:
        yield MotoServerInfo(url=f"http://{host}:{port}", host=host, port=port)
    finally:
        server.stop()
        # stop() only shuts the serve loop down; close the listening socket too.
        if server._server is not None:
            server._server.server_close()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and nothing from the real machine's AWS configuration."""
    # Drop every AWS_* variable (endpoint overrides, retry settings, container/web
    # identity credentials...), not just the well-known ones.
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-such-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-aws-credentials"))
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
    request = urllib.request.Request(f"{moto_server.url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status
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
