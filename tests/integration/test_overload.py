"""Beyond capacity, as a client sees it: a stream that falls behind gets what it missed on
the same connection, at its own pace; one that falls behind the ring ends with what it was
sent and a jittered `retry:`; a stuck one is dropped; resumes into a full gateway are
deferred."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable

import pytest

from ssegate.sse.wire import Decoder
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.sse_client import adopt_stream, metric_value, open_stream, request
from tests.support.waiting import until

pytestmark = pytest.mark.kafka

PAD = b"x" * 990
SLOW_CLOSED = 'ssegate_streams_closed_total{route="/p",reason="slow_client"} 1'
FELL_BEHIND = 'ssegate_streams_fell_behind_total{route="/p"}'
# A ring this small is passed by a client that stops reading after a few hundred records:
# then it is ended, as one that fell behind the default ring would be.
SMALL_RING = {"ring": {"max_records": 200}}


def small_ring_gateway(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess], topic: str
) -> GatewayProcess:
    """A gateway on `/p` whose streams fall behind at 64 KiB and off a 200-record ring."""
    return gateways(
        [{"path": "/p", "topic": topic}],
        limits={"write_buffer_high_water": "64KiB"},
        kafka={"bootstrap_servers": kafka.bootstrap, **SMALL_RING},
    )


def numbered(start: int, count: int) -> list[Record]:
    return [Record(b"%06d" % n + PAD) for n in range(start, start + count)]


def stuck_client(port: int, path: str) -> socket.socket:
    """A stream request from a client with a tiny receive buffer that does not read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


async def metrics(port: int) -> str:
    return (await request(port, "/metrics")).body.decode()


async def produce_until_slow_closed(kafka: KafkaCluster, topic: str, port: int) -> int:
    """Produce numbered records in batches until the stream fell behind the ring and was
    closed; how many were produced."""
    total = 0
    while SLOW_CLOSED not in await metrics(port):
        assert total < 20_000, "the stream was never closed for slowness"
        await asyncio.to_thread(kafka.produce, topic, numbered(total, 500))
        total += 500
        await asyncio.sleep(0.2)  # let the gateway write the batch before the next check
    return total


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The payload of a chunked body, and whether it ended with the last chunk."""
    payload = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(payload), True
        payload += rest[:size]
        body = rest[size + 2 :]
    return bytes(payload), False


@pytest.mark.timeout(120)
async def test_a_stream_behind_the_ring_ends_after_what_it_was_sent_with_a_jittered_retry(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = small_ring_gateway(kafka, gateways, topic)
    slow = stuck_client(gateway.port, "/p")
    total = await produce_until_slow_closed(kafka, topic, gateway.port)
    # Now the client reads: everything it was sent, then the end (within the 15 s it has).
    reader, writer = await asyncio.open_connection(sock=slow)
    received = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    payload, ended = dechunk(body)
    assert ended, "the stream was cut off instead of ended"
    events = Decoder().feed(payload)
    assert len(events) > 0
    # Every record from the first, in order, none missing: what was sent was not thrown away.
    assert [event.data[:6] for event in events] == [f"{n:06d}" for n in range(len(events))]
    # Then an id-only checkpoint and the retry, as the last bytes before the end.
    tail = re.search(rb"\n\nid:([A-Za-z0-9+/=_-]+)\n\nretry:(\d+)\n\n$", payload)
    assert tail is not None, payload[-200:]
    assert 1000 <= int(tail[2]) <= 5000
    last_id = tail[1].decode()
    # Resuming with that id continues at the next record: nothing lost, nothing repeated.
    resumed = await open_stream(gateway.port, "/p", headers={"Last-Event-ID": last_id})
    assert resumed.response.status == 200
    await asyncio.to_thread(kafka.produce, topic, numbered(total, 3))
    following = await resumed.next_events(3, timeout=20)
    first = len(events)
    assert [event.data[:6] for event in following] == [f"{n:06d}" for n in range(first, first + 3)]
    await resumed.close()


@pytest.mark.timeout(120)
async def test_a_client_that_stalls_gets_what_it_missed_on_the_same_connection(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    """It stops reading until its stream fell behind, while another client keeps up; when
    it reads again it gets every event the other got, with the same ids, then live ones."""
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [{"path": "/p", "topic": topic}], limits={"write_buffer_high_water": "64KiB"}
    )
    stalled = stuck_client(gateway.port, "/p")
    keeping_up = await open_stream(gateway.port, "/p")
    seen = []
    total = 0
    while await metric_value(gateway.port, FELL_BEHIND) < 1:
        assert total < 20_000, "the stalled stream never fell behind"
        await asyncio.to_thread(kafka.produce, topic, numbered(total, 500))
        total += 500
        seen += await keeping_up.next_events(500, timeout=30)
    await asyncio.to_thread(kafka.produce, topic, numbered(total, 500))  # while it is behind
    total += 500
    seen += await keeping_up.next_events(500, timeout=30)

    resumed = await adopt_stream(stalled)
    assert resumed.response.status == 200
    got = await resumed.next_events(total, timeout=60)
    assert [(e.last_event_id, e.data) for e in got] == [(e.last_event_id, e.data) for e in seen]
    await asyncio.to_thread(kafka.produce, topic, numbered(total, 3))
    live = await resumed.next_events(3, timeout=20)
    assert [e.data[:6] for e in live] == [f"{n:06d}" for n in range(total, total + 3)]
    assert [e.last_event_id for e in live] == [
        e.last_event_id for e in await keeping_up.next_events(3, timeout=20)
    ]
    assert SLOW_CLOSED not in await metrics(gateway.port)
    await resumed.close()
    await keeping_up.close()


@pytest.mark.timeout(120)
async def test_a_stream_that_does_not_read_its_end_is_dropped(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = small_ring_gateway(kafka, gateways, topic)
    stuck = stuck_client(gateway.port, "/p")
    await produce_until_slow_closed(kafka, topic, gateway.port)
    # Only the /metrics request's own connection remains once the stuck one is dropped
    # (15 s after its end was written).
    await until(
        lambda: metrics(gateway.port),
        30,
        accept=lambda text: re.search(r"^ssegate_connections_open 1$", text, re.M),
        message="the stuck connection to be dropped",
    )
    stuck.close()


async def test_a_resume_into_a_full_gateway_is_deferred_and_a_new_stream_refused(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways([{"path": "/p", "topic": topic}], limits={"max_streams": 1})
    kafka.produce(topic, numbered(0, 3))
    holder = await open_stream(gateway.port, "/p")
    events = await holder.next_events(3)
    # A reconnecting client: 200, told to come back in 2 to 4 s, and the body ends at once.
    deferred = await request(gateway.port, "/p", headers={"Last-Event-ID": events[0].last_event_id})
    assert deferred.status == 200
    assert deferred.header("Content-Type") == "text/event-stream"
    assert re.fullmatch(rb"retry:(2000|3000|4000)\n\n", deferred.body), deferred.body
    # A new client: 503, with a Retry-After in the same range.
    refused = await request(gateway.port, "/p")
    assert (refused.status, refused.body) == (
        503,
        b"this server holds its limit of 1 streams; try again later\n",
    )
    assert refused.header("Retry-After") in ("2", "3", "4")
    text = await metrics(gateway.port)
    assert 'ssegate_streams_deferred_total{route="/p"} 1' in text
    # Once there is room, the deferred client's id resumes exactly after its event.
    await holder.close()
    await until(
        lambda: metrics(gateway.port),
        10,
        accept=lambda text: 'ssegate_streams_open{route="/p"} 0' in text,
        message="the first stream to close",
    )
    resumed = await open_stream(
        gateway.port, "/p", headers={"Last-Event-ID": events[0].last_event_id}
    )
    assert resumed.response.status == 200
    assert [e.data for e in await resumed.next_events(2)] == [e.data for e in events[1:]]
    await resumed.close()
