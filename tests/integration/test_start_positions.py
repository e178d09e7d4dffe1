"""Where streams start: ?since=, compacted topics, retention gaps, partitions added live."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote as urlquote

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record, add_partitions, delete_records_before
from tests.support.quotes import assert_exactly, quote, quotes, sequences
from tests.support.sse_client import open_stream, request

pytestmark = pytest.mark.kafka


async def test_since_epoch_millis_and_iso(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways([{"path": "/p", "topic": topic}])
    kafka.produce(topic, quotes(["AAPL", "MSFT"], 1, 5))
    await asyncio.sleep(0.05)
    boundary = time.time_ns() // 1_000_000
    await asyncio.sleep(0.05)
    kafka.produce(topic, quotes(["AAPL", "MSFT"], 6, 9))
    iso = datetime.fromtimestamp(boundary / 1000, UTC).isoformat()
    for target in (f"/p?since={boundary}", f"/p?since={urlquote(iso)}"):
        stream = await open_stream(gateway.port, target)
        assert stream.response.status == 200
        assert_exactly(await stream.next_events(8), {"AAPL": range(6, 10), "MSFT": range(6, 10)})
        assert await stream.quiet_for(0.3) == []
        await stream.close()
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    assert 'ssegate_resume_total{route="/p",outcome="since"} 2' in metrics


async def test_since_is_ignored_with_a_valid_id_and_checked_otherwise(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways([{"path": "/p", "topic": topic}])
    kafka.produce(topic, quotes(["AAPL"], 1, 4))
    stream = await open_stream(gateway.port, "/p")
    events = await stream.next_events(4)
    await stream.close()
    resumed = await open_stream(
        gateway.port, "/p?since=0", headers={"Last-Event-ID": events[1].last_event_id}
    )
    assert sequences(await resumed.next_events(2)) == {"AAPL": [3, 4]}
    await resumed.close()
    for bad in ("yesterday", "2026-13-45", "-5", "1e9"):
        response = await request(gateway.port, f"/p?since={bad}")
        assert response.status == 400
        assert response.body == (
            f"since: expected epoch milliseconds or an ISO-8601 time, got {bad!r}\n".encode()
        )
    # An id that does not decode does not hide a bad since.
    response = await request(gateway.port, "/p?since=nope", headers={"Last-Event-ID": "x"})
    assert response.status == 400


async def test_compacted_start_gives_the_latest_value_of_each_key_then_live(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=2, config={"cleanup.policy": "compact"})
    gateway = gateways(
        [
            {"path": "/state", "topic": topic, "start": "compacted"},
            {
                "path": "/state/{exchange}",
                "topic": topic,
                "start": "compacted",
                "filters": [{"headers": {"exchange": "${params.exchange}"}}],
            },
        ]
    )
    kafka.produce(
        topic,
        [
            quote("AAPL", 1),
            quote("IBM", 1, "nyse"),
            quote("AAPL", 2),
            quote("MSFT", 1),
            quote("IBM", 2, "nyse"),
            quote("AAPL", 3),
            Record(None, key=b"MSFT"),  # MSFT was deleted
            quote("KO", 1, "nyse"),
        ],
    )
    stream = await open_stream(gateway.port, "/state")
    snapshot = await stream.next_events(3)
    assert sorted(sequences(snapshot).items()) == [("AAPL", [3]), ("IBM", [2]), ("KO", [1])]
    kafka.produce(topic, [quote("AAPL", 4), Record(None, key=b"KO")])
    live = await stream.next_events(2)
    assert sequences(live[:1]) == {"AAPL": [4]}
    assert (live[1].type, live[1].data) == ("delete", "S08=")
    nyse = await open_stream(gateway.port, "/state/nyse")
    assert sequences(await nyse.next_events(1)) == {"IBM": [2]}  # KO is gone by now
    assert await nyse.quiet_for(0.3) == []
    # Resuming from an id inside the live part is an ordinary, exact resume.
    await stream.close()
    again = await open_stream(
        gateway.port, "/state", headers={"Last-Event-ID": live[0].last_event_id}
    )
    (event,) = await again.next_events(1)
    assert event.type == "delete"
    await again.close()
    await nyse.close()


async def test_resume_into_deleted_records_reports_one_gap(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=2)
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        kafka={"bootstrap_servers": kafka.bootstrap, "ring": {"max_records": 10}},
    )
    kafka.produce(topic, [quote("AAPL", n, partition=0) for n in range(1, 11)])
    kafka.produce(topic, [quote("MSFT", n, partition=1) for n in range(1, 11)])
    stream = await open_stream(gateway.port, "/p")
    seen = await stream.next_events(3)
    await stream.close()
    last = seen[-1].last_event_id
    kafka.produce(topic, [quote("AAPL", n, partition=0) for n in range(11, 41)])
    # Retention takes partition 0 up to offset 25; partition 1 keeps everything.
    delete_records_before(kafka.bootstrap, topic, {0: 25})
    from ssegate.kafka.eventid import parse_event_id

    position = parse_event_id(last).progress
    resumed = await open_stream(gateway.port, "/p", headers={"Last-Event-ID": last})
    gap, *rest = await resumed.next_events(1 + 15 + (10 - position[1]))
    assert gap.type == "gap"
    assert json.loads(gap.data) == {
        "topic": topic,
        "partitions": [{"partition": 0, "from": position[0], "to": 25, "lost": 25 - position[0]}],
    }
    got = sequences(rest)
    assert got["AAPL"] == list(range(26, 41))
    assert got["MSFT"] == list(range(position[1] + 1, 11))
    assert await resumed.quiet_for(0.3) == []
    # The gap event's id is past the gap: resuming from it reports nothing again.
    again = await open_stream(gateway.port, "/p", headers={"Last-Event-ID": gap.last_event_id})
    first = await again.next_events(1)
    assert first[0].type == "message"
    await resumed.close()
    await again.close()


async def test_partitions_added_while_streams_are_open(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        kafka={"bootstrap_servers": kafka.bootstrap, "metadata_refresh": "1s"},
    )
    stream = await open_stream(gateway.port, "/p")
    kafka.produce(topic, [quote("AAPL", 1, partition=0)])
    await stream.next_events(1)
    add_partitions(kafka.bootstrap, topic, 3)
    kafka.produce(topic, [quote("MSFT", 1, partition=2), quote("IBM", 1, partition=1)])
    got = await stream.next_events(2, timeout=20)
    assert sorted(sequences(got).items()) == [("IBM", [1]), ("MSFT", [1])]
    from ssegate.kafka.eventid import parse_event_id

    assert set(parse_event_id(stream.last_event_id).progress) == {0, 1, 2}
    await stream.close()
