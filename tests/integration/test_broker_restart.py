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
from tests.support.sse_client import metric_value, open_stream, request
from tests.support.waiting import until

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
            # Records flow to every stream before the outage: 5 rounds each, at least.
            await until(
                lambda: metric_value(gateway.port, 'ssegate_events_delivered_total{route="/p"}'),
                30,
                message="50 events delivered to each of the 10 streams before the outage",
                accept=lambda delivered: delivered >= 10 * 5 * len(SYMBOLS),
            )
            await asyncio.to_thread(broker.stop)
            # The probe asks every 2 s (PROBE_INTERVAL) and gives up after 2 s more.
            await until(
                lambda: request(gateway.port, "/ready"),
                30,
                message="/ready to answer 503, Kafka unreachable",
                accept=lambda r: r.status == 503 and b'"kafka": "unreachable' in r.body,
            )
            await asyncio.to_thread(broker.start, port=info.port, data_dir=data)
            # Delivery resumes: every stream gets 10 rounds produced after the restart (the
            # producer and the gateway's reader each reconnect with their own backoff).
            after = 10 * len(SYMBOLS) * (feed.produced + 10)
            await until(
                lambda: metric_value(gateway.port, 'ssegate_events_delivered_total{route="/p"}'),
                60,
                message=f"{after} events delivered, 10 rounds past the restart",
                accept=lambda delivered: delivered >= after,
            )
            produced = feed.stop()
        expected = produced * len(SYMBOLS)
        for stream in streams:
            events = await stream.next_events(expected, timeout=60)
            assert_exactly(events, {s: range(1, produced + 1) for s in SYMBOLS})
            assert not stream.ended, "the stream stayed open through the outage"
        await until(
            lambda: request(gateway.port, "/ready"),
            30,
            message="/ready to recover",
            accept=lambda r: r.status == 200,
        )
        for stream in streams:
            await stream.close()
    finally:
        gateway.stop()
