"""The broker goes away and comes back: streams stay open, /ready says so, nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssegate.devkafka import DevKafka
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster
from tests.support.quotes import QuoteFeed, assert_exactly
from tests.support.sse_client import open_stream, request

pytestmark = pytest.mark.kafka

SYMBOLS = ["AAPL", "MSFT"]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[DevKafka, Path]]:
    """A broker of this test's own, with kept data, so it can be stopped and restarted."""
    broker = DevKafka(tmp_path / "broker-home")
    data = tmp_path / "broker-data"
    broker.start(data_dir=data)
    yield broker, data
    broker.stop()


async def test_broker_restart_loses_nothing(
    own_broker: tuple[DevKafka, Path], tmp_path: Path
) -> None:
    broker, data = own_broker
    info = broker.status()
    assert info is not None
    cluster = KafkaCluster(info.bootstrap)
    topic = cluster.new_topic(partitions=3)
    gateway = GatewayProcess(
        {
            "kafka": {
                "bootstrap_servers": info.bootstrap,
                "metadata_refresh": "1s",
                "properties": {"reconnect.backoff.max.ms": 500},
            },
            "routes": [{"path": "/p", "topic": topic}],
            "sse": {"heartbeat": "1s"},
        },
        tmp_path / "gateway",
    ).start()
    try:
        streams = [await open_stream(gateway.port, "/p") for _ in range(10)]
        with QuoteFeed(info.bootstrap, topic, SYMBOLS, per_second=10) as feed:
            await asyncio.sleep(1.5)
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(7)  # the probe runs every 5 s
            ready = await request(gateway.port, "/ready")
            assert ready.status == 503
            assert b'"kafka": "unreachable' in ready.body
            await asyncio.to_thread(broker.start, port=info.port, data_dir=data)
            await asyncio.sleep(3)
            produced = feed.stop()
        expected = produced * len(SYMBOLS)
        for stream in streams:
            events = await stream.next_events(expected, timeout=60)
            assert_exactly(events, {s: range(1, produced + 1) for s in SYMBOLS})
            assert not stream.ended, "the stream stayed open through the outage"
        for _ in range(100):
            if (await request(gateway.port, "/ready")).status == 200:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("/ready did not recover")
        for stream in streams:
            await stream.close()
    finally:
        gateway.stop()
