"""Clients older than the ring are served from Kafka, then join live with no seam."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster
from tests.support.quotes import assert_exactly, quotes
from tests.support.sse_client import open_stream, request

pytestmark = pytest.mark.kafka

SYMBOLS = ["AAPL", "MSFT", "IBM", "KO"]


def _small_ring(kafka: KafkaCluster, catchup: int = 8) -> dict[str, object]:
    return {
        "bootstrap_servers": kafka.bootstrap,
        "ring": {"max_records": 20},
        "max_catchup_readers": catchup,
    }


async def test_earliest_beyond_the_ring_then_live(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    kafka.produce(topic, quotes(SYMBOLS, 1, 100))  # 400 records; the ring keeps 20
    gateway = gateways([{"path": "/p", "topic": topic}], kafka=_small_ring(kafka))
    stream = await open_stream(gateway.port, "/p")
    history = await stream.next_events(400, timeout=30)
    kafka.produce(topic, quotes(SYMBOLS, 101, 110))
    live = await stream.next_events(40)
    assert_exactly(history + live, {s: range(1, 111) for s in SYMBOLS})
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    assert 'ssegate_resume_total{route="/p",outcome="catchup"} 1' in metrics
    assert "ssegate_catchup_readers 0" in metrics
    await stream.close()


async def test_resume_from_an_old_id_while_records_keep_coming(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways([{"path": "/p", "topic": topic}], kafka=_small_ring(kafka))
    kafka.produce(topic, quotes(SYMBOLS, 1, 5))
    first = await open_stream(gateway.port, "/p")
    seen = await first.next_events(20)
    await first.close()
    kafka.produce(topic, quotes(SYMBOLS, 6, 80))  # the client's position leaves the ring

    resumed = await open_stream(
        gateway.port, "/p", headers={"Last-Event-ID": seen[-1].last_event_id}
    )

    async def produce_more() -> None:
        for start in range(81, 121, 10):
            await asyncio.to_thread(kafka.produce, topic, quotes(SYMBOLS, start, start + 9))

    producing = asyncio.create_task(produce_more())
    rest = await resumed.next_events(4 * 115, timeout=30)
    await producing
    assert await resumed.quiet_for(0.3) == []
    assert_exactly(seen + rest, {s: range(1, 121) for s in SYMBOLS})
    await resumed.close()


async def test_catchup_readers_are_bounded_and_the_rest_wait(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=2)
    kafka.produce(topic, quotes(SYMBOLS, 1, 50))
    gateway = gateways([{"path": "/p", "topic": topic}], kafka=_small_ring(kafka, catchup=1))
    streams = await asyncio.gather(*(open_stream(gateway.port, "/p") for _ in range(4)))
    results = await asyncio.gather(*(s.next_events(200, timeout=30) for s in streams))
    for events in results:
        assert_exactly(events, {s: range(1, 51) for s in SYMBOLS})
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    assert 'ssegate_resume_total{route="/p",outcome="catchup"} 4' in metrics
    for stream in streams:
        await stream.close()
