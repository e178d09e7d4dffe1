"""Session-wide fixtures: one real Kafka broker for the whole run, and no silent skips."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ssegate.devkafka import DevKafka
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """A skipped test proves nothing, so a skip fails the run (xfail stays strict)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped ({report.longrepr}); skips are failures here"


def _progress(message: str) -> None:
    print(f"devkafka: {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """The broker for this run: $KAFKA_BOOTSTRAP when set, else one started here."""
    external = os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        yield KafkaCluster(external)
        return
    home: Path = tmp_path_factory.mktemp("devkafka")
    broker = DevKafka(home, progress=_progress)
    info = broker.start()
    try:
        yield KafkaCluster(info.bootstrap)
    finally:
        broker.stop()


@pytest.fixture
def gateways(tmp_path: Path, kafka: KafkaCluster) -> Iterator[Callable[..., GatewayProcess]]:
    """Start `ssegate run` processes against the session's broker; all stopped at the end."""
    started: list[GatewayProcess] = []

    def start(
        routes: list[dict[str, Any]],
        *,
        wait_ready: bool = True,
        port: int | None = None,
        args: tuple[str, ...] = (),
        tls: dict[str, Any] | None = None,
        client_tls: ssl.SSLContext | None = None,
        http2: dict[str, Any] | None = None,
        log_level: str = "INFO",
        **sections: Any,
    ) -> GatewayProcess:
        config: dict[str, Any] = {"kafka": {"bootstrap_servers": kafka.bootstrap}, "routes": routes}
        for name, value in sections.items():
            config[name] = value
        directory = tmp_path / f"gateway-{len(started)}"
        gateway = GatewayProcess(
            config,
            directory,
            port=port,
            args=args,
            tls=tls,
            client_tls=client_tls,
            http2=http2,
            log_level=log_level,
        )
        started.append(gateway)
        return gateway.start(wait_ready=wait_ready)

    yield start
    for gateway in started:
        gateway.stop()
