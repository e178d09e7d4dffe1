"""What a client reads, byte for byte: Zilla's format and ids, tombstones, etags, key ids."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.sse_client import metric_value, open_stream, request
from tests.support.waiting import until

pytestmark = pytest.mark.kafka


async def test_exact_bytes_of_a_stream(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [
            {"path": "/etag", "topic": topic},
            {"path": "/key", "topic": topic, "event_id": "key"},
        ],
        sse={"retry": 2500},
    )
    kafka.produce(
        topic,
        [
            Record(b"Hello, world", key=b"key"),
            Record(b"Hello\nworld\n", key=b"key", headers=[("etag", b"revision=42")]),
            Record(None, key=b"key"),  # tombstone
            Record(b"", key=None),
            Record(b"a\rb\r\nc", key=b"k2"),  # a CR never reaches the wire as a line end
        ],
    )
    etag = await open_stream(gateway.port, "/etag")
    key = await open_stream(gateway.port, "/key")
    await asyncio.gather(etag.next_events(4), key.next_events(4))
    await etag.wait_raw(b"data:c\n\n")
    await key.wait_raw(b"data:c\n\n")
    assert bytes(etag.raw) == (
        b":\n\n"
        b"retry:2500\n\n"
        b"id:AQIAAg==\ndata:Hello, world\n\n"
        b"id:AQIABA==/revision=42\ndata:Hello\ndata:world\ndata:\n\n"
        b"id:AQIABg==\nevent:delete\ndata:a2V5\n\n"
        b"id:AQIACA==\ndata:\n\n"
        b"id:AQIACg==\ndata:a\ndata:b\ndata:c\n\n"
    )
    assert bytes(key.raw) == (
        b":\n\n"
        b"retry:2500\n\n"
        b'id:["a2V5","AQIAAg=="]\ndata:Hello, world\n\n'
        b'id:["a2V5","AQIABA==/revision=42"]\ndata:Hello\ndata:world\ndata:\n\n'
        b'id:["a2V5","AQIABg=="]\nevent:delete\ndata:a2V5\n\n'
        b'id:[null,"AQIACA=="]\ndata:\n\n'
        b'id:["azI=","AQIACg=="]\ndata:a\ndata:b\ndata:c\n\n'
    )
    # The key form resumes correctly (Zilla's parser drops a character here: §4.6).
    resumed = await open_stream(
        gateway.port, "/key", headers={"Last-Event-ID": '["a2V5","AQIABg=="]'}
    )
    rest = await resumed.next_events(2)
    assert [e.data for e in rest] == ["", "a\nb\nc"]
    for stream in (etag, key, resumed):
        await stream.close()


async def test_earliest_and_latest(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways(
        [
            {"path": "/earliest", "topic": topic},
            {"path": "/latest", "topic": topic, "start": "latest"},
        ]
    )
    kafka.produce(topic, [Record(f"old-{i}".encode(), key=str(i).encode()) for i in range(9)])
    earliest = await open_stream(gateway.port, "/earliest")
    assert len(await earliest.next_events(9)) == 9
    latest = await open_stream(gateway.port, "/latest")
    # The stream has taken its start (the ends as of now) before the new records exist.
    await until(
        lambda: metric_value(gateway.port, 'ssegate_resume_total{route="/latest",outcome="fresh"}'),
        10,
        message="the /latest stream to start",
    )
    kafka.produce(topic, [Record(f"new-{i}".encode(), key=str(i).encode()) for i in range(6)])
    got = await latest.next_events(6)
    assert sorted(e.data for e in got) == sorted(f"new-{i}" for i in range(6))
    assert await latest.quiet_for(0.3) == []
    assert sorted(e.data for e in await earliest.next_events(6)) == sorted(
        f"new-{i}" for i in range(6)
    )
    await earliest.close()
    await latest.close()


async def test_topic_that_does_not_exist_yet(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = f"late-{kafka.new_topic(partitions=1)}"  # a name no one created
    gateway = gateways(
        [{"path": "/late", "topic": topic}],
        wait_ready=False,
        kafka={"bootstrap_servers": kafka.bootstrap, "metadata_refresh": "1s"},
    )
    stream = await open_stream(gateway.port, "/late")
    assert stream.response.status == 200
    await stream.wait_raw(b":\n\n")
    # The reader finds the topic missing at its first metadata look (metadata_refresh 1s).
    await until(
        lambda: request(gateway.port, "/ready"),
        15,
        message=f"/ready to answer 503, {topic} missing",
        accept=lambda r: r.status == 503 and f'"{topic}": "missing"'.encode() in r.body,
    )
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    assert f'ssegate_topic_missing{{topic="{topic}"}} 1' in metrics

    from ssegate.devkafka.topics import create_topic

    create_topic(kafka.bootstrap, topic, partitions=2)
    kafka.produce(topic, [Record(b"first", key=b"k")])
    (event,) = await stream.next_events(1, timeout=15)
    assert event.data == "first"
    assert (await request(gateway.port, "/ready")).status == 200
    await stream.close()
