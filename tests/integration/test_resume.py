"""Reconnecting with the last id: exactly the rest, over the same or a new gateway process."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote as urlquote

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster
from tests.support.quotes import assert_exactly, quotes, sequences
from tests.support.sse_client import open_stream

pytestmark = pytest.mark.kafka

SYMBOLS = ["AAPL", "MSFT", "IBM"]


def _route(topic: str) -> list[dict[str, object]]:
    return [
        {"path": "/prices", "topic": topic},
        {"path": "/prices/{symbol}", "topic": topic, "filters": [{"key": "${params.symbol}"}]},
    ]


@pytest.mark.parametrize("how", ["header", "query"])
async def test_resume_gets_exactly_the_rest(
    how: str, kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways(_route(topic))
    kafka.produce(topic, quotes(SYMBOLS, 1, 10))
    first = await open_stream(gateway.port, "/prices")
    seen = await first.next_events(13)  # mid-stream, mid-partition
    await first.close()
    last_id = seen[-1].last_event_id
    kafka.produce(topic, quotes(SYMBOLS, 11, 20))

    if how == "header":
        second = await open_stream(gateway.port, "/prices", headers={"Last-Event-ID": last_id})
    else:
        second = await open_stream(gateway.port, f"/prices?lastEventId={urlquote(last_id)}")
    assert second.response.status == 200
    rest = await second.next_events(60 - 13)
    assert await second.quiet_for(0.3) == []
    await second.close()
    assert_exactly(seen + rest, {s: range(1, 21) for s in SYMBOLS})


async def test_header_wins_over_query(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways(_route(topic))
    kafka.produce(topic, quotes(SYMBOLS, 1, 10))
    stream = await open_stream(gateway.port, "/prices")
    events = await stream.next_events(30)
    await stream.close()
    early, late = events[4].last_event_id, events[19].last_event_id
    again = await open_stream(
        gateway.port, f"/prices?lastEventId={urlquote(early)}", headers={"Last-Event-ID": late}
    )
    rest = await again.next_events(10)
    await again.close()
    assert_exactly(events[:20] + rest, {s: range(1, 11) for s in SYMBOLS})


async def test_resume_on_a_new_gateway_process(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways(_route(topic))
    kafka.produce(topic, quotes(SYMBOLS, 1, 10))
    stream = await open_stream(gateway.port, "/prices/MSFT")
    seen = await stream.next_events(4)
    gateway.stop()  # SIGTERM: the stream ends cleanly with a checkpoint
    tail = await stream.read_until_end()
    assert stream.ended, "the gateway ends streams with the chunked terminator"
    seen += tail
    last_id = stream.last_event_id
    kafka.produce(topic, quotes(SYMBOLS, 11, 20))

    replacement = gateways(_route(topic), port=gateway.port)
    resumed = await open_stream(
        replacement.port, "/prices/MSFT", headers={"Last-Event-ID": last_id}
    )
    rest = await resumed.next_events(20 - len(seen))
    assert await resumed.quiet_for(0.3) == []
    await resumed.close()
    assert sequences(seen + rest) == {"MSFT": list(range(1, 21))}


async def test_checkpoint_moves_resume_point_past_filtered_records(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(_route(topic), sse={"heartbeat": "1s"})
    stream = await open_stream(gateway.port, "/prices/AAPL")
    kafka.produce(topic, quotes(["AAPL"], 1, 1) + quotes(["IBM"], 1, 5))
    (event,) = await stream.next_events(1)
    assert event.last_event_id == "AQIAAg=="  # {0: 1}
    # Five IBM records later, the heartbeat is an id-only checkpoint: no event fires, but the
    # client's Last-Event-ID now points past them.
    await stream.wait_raw(b"id:AQIADA==\n\n", timeout=5)  # {0: 6}
    assert stream.pending == []
    assert stream.last_event_id == "AQIADA=="
    await stream.close()
