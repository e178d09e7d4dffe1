"""Delivery under stress: long catch-ups, reconnect storms, clients that never read."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable

import psutil
import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.quotes import QuoteFeed, assert_exactly, quotes, sequences
from tests.support.sse_client import metric_value, open_stream, request
from tests.support.waiting import until

SLOW_CLOSED = 'ssegate_streams_closed_total{route="/p",reason="slow_client"} 1'

pytestmark = pytest.mark.kafka

SYMBOLS = ["AAPL", "MSFT", "IBM", "KO"]


@pytest.mark.timeout(300)
async def test_catch_up_of_100k_records_then_live(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    kafka.produce(topic, quotes(SYMBOLS, 1, 25_000))  # 100,000 records
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        kafka={"bootstrap_servers": kafka.bootstrap, "ring": {"max_records": 5000}},
    )
    stream = await open_stream(gateway.port, "/p")
    with QuoteFeed(kafka.bootstrap, topic, ["LIVE"], per_second=50) as feed:
        history = await stream.next_events(100_000, timeout=120)
        # Caught up, the stream goes on live: 50 events past the history reach it.
        await until(
            lambda: metric_value(gateway.port, 'ssegate_events_delivered_total{route="/p"}'),
            30,
            message="50 live events delivered after the 100,000 of history",
            accept=lambda delivered: delivered >= 100_000 + 50,
        )
        produced = feed.stop()
    live = await stream.next_events(produced, timeout=30)
    assert_exactly(
        history + live, {**{s: range(1, 25_001) for s in SYMBOLS}, "LIVE": range(1, produced + 1)}
    )
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    assert 'ssegate_resume_total{route="/p",outcome="catchup"} 1' in metrics
    await stream.close()


@pytest.mark.timeout(300)
async def test_1000_clients_reconnect_at_once_with_ids_of_every_age(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    kafka.produce(topic, quotes(SYMBOLS, 1, 100))  # 400 records; the ring holds 100
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        kafka={
            "bootstrap_servers": kafka.bootstrap,
            "ring": {"max_records": 100},
            "max_catchup_readers": 8,
        },
    )
    reference = await open_stream(gateway.port, "/p")
    events = await reference.next_events(400)
    await reference.close()
    rng = random.Random(4)
    starts = [rng.randrange(400) for _ in range(1000)]
    streams = await asyncio.gather(
        *(
            open_stream(gateway.port, "/p", headers={"Last-Event-ID": events[i].last_event_id})
            for i in starts
        )
    )
    assert {s.response.status for s in streams} == {200}
    results = await asyncio.gather(
        *(s.next_events(399 - i, timeout=120) for s, i in zip(streams, starts, strict=True))
    )
    for i, got in zip(starts, results, strict=True):
        # Exactly the records after the id, in order per key (partitions interleave freely).
        assert sequences(got) == sequences(events[i + 1 :])
    quiet = await asyncio.gather(*(s.quiet_for(0.2) for s in streams[:50]))
    assert quiet == [[]] * 50
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    outcomes = {
        outcome: int(
            metrics.split(f'ssegate_resume_total{{route="/p",outcome="{outcome}"}} ')[1].split()[0]
        )
        for outcome in ("ring", "catchup")
    }
    # Recent ids resume from memory, old ones through catch-up readers (8 at a time); the
    # reference stream, older than the ring from its start, is one of the catch-ups.
    assert outcomes["ring"] > 0
    assert outcomes["catchup"] > 0
    assert outcomes["ring"] + outcomes["catchup"] == 1000 + 1
    for stream in streams:
        await stream.close()


@pytest.mark.timeout(240)
async def test_a_client_that_never_reads_is_dropped_while_100_others_keep_up(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        limits={"write_buffer_high_water": "1MiB"},
        kafka={"bootstrap_servers": kafka.bootstrap, "ring": {"max_records": 500}},
    )
    assert gateway.process is not None
    server = psutil.Process(gateway.process.pid)
    # The stuck client: a tiny receive buffer, and it never reads.
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", gateway.port))
    stuck.sendall(b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n")
    readers = [await open_stream(gateway.port, "/p") for _ in range(100)]
    payload = b"x" * 1000
    total = 6000  # 6 MB: far past the stuck client's buffers and the 1 MiB high-water mark
    for start in range(0, total, 500):
        await asyncio.to_thread(
            kafka.produce,
            topic,
            [Record(payload, key=str(n).encode()) for n in range(start, start + 500)],
        )
        results = await asyncio.gather(*(r.next_events(500, timeout=60) for r in readers))
        assert all(len(got) == 500 for got in results)
    # It fell behind at the high-water mark and was ended once the ring (500 records)
    # no longer held what it had not read: at the next heartbeat tick, within a second.
    metrics = await until(
        lambda: request(gateway.port, "/metrics"),
        5,
        accept=lambda answer: SLOW_CLOSED in answer.body.decode(),
        message="the stuck stream to be ended",
    )
    text = metrics.body.decode()
    assert 'ssegate_streams_fell_behind_total{route="/p"} 1' in text
    assert 'ssegate_streams_open{route="/p"} 100' in text
    # Bounded memory: the stuck client's backlog stops at the high-water mark (then it is
    # served from the ring; the connection is dropped 15 s after its end if it still does
    # not read).
    assert server.memory_info().rss < 250 * 2**20
    stuck.close()
    for reader in readers:
        await reader.close()


async def test_stream_limits_per_client_and_per_process(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        limits={"max_streams_per_ip": 3, "max_streams": 5, "keepalive_timeout": "1s"},
    )
    mine = [await open_stream(gateway.port, "/p") for _ in range(3)]
    over = await request(gateway.port, "/p")
    assert (over.status, over.body) == (429, b"127.0.0.1 holds its limit of 3 streams\n")
    assert over.header("Retry-After") == "1"
    await mine[0].close()
    # The server has seen the close (and released the address's slot with the stream).
    await until(
        lambda: metric_value(gateway.port, 'ssegate_streams_open{route="/p"}'),
        10,
        message="2 streams open after a close",
        accept=lambda open_: open_ == 2,
    )
    mine[0] = await open_stream(gateway.port, "/p")
    assert mine[0].response.status == 200
    # Another address (127.0.0.2 is loopback too) has its own allowance, but the process
    # holds at most 5.
    others = [await open_stream(gateway.port, "/p", source="127.0.0.2") for _ in range(2)]
    assert [s.response.status for s in others] == [200, 200]
    full = await request(gateway.port, "/p", source="127.0.0.2")
    assert (full.status, full.body) == (
        503,
        b"this server holds its limit of 5 streams; try again later\n",
    )
    assert full.header("Retry-After") in ("2", "3", "4")  # jittered: refused crowds spread out
    for stream in mine + others:
        await stream.close()
    # An idle keep-alive connection is closed after keepalive_timeout.
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"ok\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()


async def test_topic_readers_are_capped(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    first, second = kafka.new_topic(partitions=1), kafka.new_topic(partitions=1)
    gateway = gateways([{"path": "/t/{name}", "topic": "${params.name}"}], limits={"max_topics": 1})
    stream = await open_stream(gateway.port, f"/t/{first}")
    assert stream.response.status == 200
    again = await open_stream(gateway.port, f"/t/{first}")  # the same topic: no new reader
    assert again.response.status == 200
    refused = await request(gateway.port, f"/t/{second}")
    assert (refused.status, refused.body) == (429, b"this server reads its limit of 1 topics\n")
    await stream.close()
    await again.close()
