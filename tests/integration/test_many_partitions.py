"""A topic of 1,000 partitions: ids stay under 254 bytes and resume without loss."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ssegate.kafka.eventid import MAX_ID_BYTES, parse_event_id
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster
from tests.support.quotes import quote, sequences
from tests.support.sse_client import open_stream

pytestmark = pytest.mark.kafka

PARTITIONS = 1000


def _spread(symbol: str, first: int, last: int) -> list:  # type: ignore[type-arg]
    """seq first..last of `symbol`, each on its own partition (high-numbered ones too)."""
    return [quote(symbol, n, partition=(n * 37) % PARTITIONS) for n in range(first, last + 1)]


@pytest.mark.timeout(240)
async def test_compact_ids_resume_without_loss(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=PARTITIONS)
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        kafka={
            "bootstrap_servers": kafka.bootstrap,
            "metadata_refresh": "1s",
            "compact_id_margin": "500ms",
        },
        sse={"heartbeat": "1s"},
    )
    kafka.produce(topic, _spread("AAPL", 1, 40))
    stream = await open_stream(gateway.port, "/p")
    first = await stream.next_events(40, timeout=60)
    assert sorted(sequences(first)["AAPL"]) == list(range(1, 41))
    for event in first:
        assert len(event.last_event_id.encode()) <= MAX_ID_BYTES
        assert parse_event_id(event.last_event_id).compact is not None

    # Resume from the middle: everything after is delivered; what is repeated is bounded.
    middle = first[19].last_event_id
    resumed = await open_stream(gateway.port, "/p", headers={"Last-Event-ID": middle})
    seen_after = sequences(await resumed.quiet_for(4))["AAPL"]
    await resumed.close()
    before = set(sequences(first[:20])["AAPL"])
    assert set(range(1, 41)) - before <= set(seen_after), "nothing after the id is lost"
    assert len(seen_after) <= 40, "at most what the margin covers is repeated"

    # Idle for a while: heartbeat checkpoints move the time bound forward, so a resume from
    # the latest id repeats nothing and loses nothing.
    await stream.quiet_for(3.5)
    checkpoint = stream.last_event_id
    assert parse_event_id(checkpoint).compact is not None
    await stream.close()
    kafka.produce(topic, _spread("AAPL", 41, 60))
    again = await open_stream(gateway.port, "/p", headers={"Last-Event-ID": checkpoint})
    rest = await again.next_events(20, timeout=30)
    assert sorted(sequences(rest)["AAPL"]) == list(range(41, 61))
    assert await again.quiet_for(1) == []
    await again.close()
    await asyncio.sleep(0)
