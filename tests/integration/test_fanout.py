"""Many clients, one route: everyone gets every record once, in order per key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ssegate.kafka.eventid import parse_event_id
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster
from tests.support.quotes import assert_exactly, quotes
from tests.support.sse_client import open_stream, request

pytestmark = pytest.mark.kafka

SYMBOLS = ["AAPL", "MSFT", "GOOG", "IBM", "KO"]


async def test_200_clients_get_every_record_once(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways([{"path": "/prices", "topic": topic}])
    streams = await asyncio.gather(*(open_stream(gateway.port, "/prices") for _ in range(200)))
    try:
        first = streams[0].response
        assert (first.status, first.reason) == (200, "OK")
        assert first.headers == [
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
            ("Transfer-Encoding", "chunked"),
        ]
        assert all(s.response.status == 200 for s in streams)
        delivered = kafka.produce(topic, quotes(SYMBOLS, 1, 60))
        per_partition: dict[int, int] = {}
        for d in delivered:
            per_partition[d.partition] = max(per_partition.get(d.partition, 0), d.offset + 1)

        results = await asyncio.gather(*(s.next_events(300, timeout=30) for s in streams))
        for events in results:
            assert_exactly(events, {s: range(1, 61) for s in SYMBOLS})
            assert parse_event_id(events[-1].last_event_id).progress == per_partition
            assert all(e.type == "message" for e in events)
        assert await streams[0].quiet_for(0.5) == []

        metrics = (await request(gateway.port, "/metrics")).body.decode()
        assert 'ssegate_streams_open{route="/prices"} 200' in metrics
        assert 'ssegate_events_delivered_total{route="/prices"} 60000' in metrics
        assert 'ssegate_resume_total{route="/prices",outcome="fresh"} 200' in metrics
    finally:
        await asyncio.gather(*(s.close() for s in streams))


async def test_filtered_routes_get_exactly_their_records(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways(
        [
            {"path": "/key/{symbol}", "topic": topic, "filters": [{"key": "${params.symbol}"}]},
            {
                "path": "/exchange/{exchange}",
                "topic": topic,
                "filters": [{"headers": {"exchange": "${params.exchange}"}}],
            },
            {
                "path": "/both/{symbol}/{exchange}",
                "topic": topic,
                "filters": [
                    {"key": "${params.symbol}", "headers": {"exchange": "${params.exchange}"}}
                ],
            },
            {
                "path": "/several",
                "topic": topic,
                "filters": [{"key": "AAPL"}, {"headers": {"exchange": "nyse"}}],
            },
        ]
    )
    records = (
        quotes(["AAPL", "MSFT"], 1, 10, "nasdaq")
        + quotes(["IBM"], 1, 10, "nyse")
        + quotes(["AAPL"], 11, 15, "nyse")  # AAPL also listed elsewhere: tells key from key+header
    )
    targets = {
        "/key/AAPL": {"AAPL": range(1, 16)},
        "/key/IBM": {"IBM": range(1, 11)},
        "/exchange/nasdaq": {"AAPL": range(1, 11), "MSFT": range(1, 11)},
        "/exchange/nyse": {"IBM": range(1, 11), "AAPL": range(11, 16)},
        "/both/AAPL/nasdaq": {"AAPL": range(1, 11)},
        "/both/AAPL/nyse": {"AAPL": range(11, 16)},
        "/several": {"AAPL": range(1, 16), "IBM": range(1, 11)},
    }
    streams = {t: await open_stream(gateway.port, t) for t in targets}
    try:
        kafka.produce(topic, records)
        for target, expected in targets.items():
            count = sum(len(r) for r in expected.values())
            events = await streams[target].next_events(count)
            assert_exactly(events, expected)
            assert await streams[target].quiet_for(0.2) == [], target
    finally:
        for stream in streams.values():
            await stream.close()
