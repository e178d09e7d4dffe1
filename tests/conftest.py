"""Session-wide fixtures: one real Kafka broker for the whole run, and no silent skips."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from ssegate.devkafka import DevKafka
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
