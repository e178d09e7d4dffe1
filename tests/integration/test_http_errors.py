"""Every rejected request gets its exact status and message, and other streams keep flowing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.sse_client import SseStream, open_stream, request

pytestmark = pytest.mark.kafka


class Witness:
    """A stream that must keep receiving while others misbehave."""

    def __init__(self, kafka: KafkaCluster, topic: str, stream: SseStream) -> None:
        self.kafka, self.topic, self.stream, self.count = kafka, topic, stream, 0

    async def still_flowing(self) -> None:
        self.count += 1
        self.kafka.produce(self.topic, [Record(f"ping-{self.count}".encode(), key=b"w")])
        (event,) = await self.stream.next_events(1)
        assert event.data == f"ping-{self.count}"


@pytest.fixture
async def setup(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> AsyncIterator[tuple[GatewayProcess, Witness]]:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [{"path": "/events/{name}", "topic": "${params.name}"}, {"path": "/w", "topic": topic}],
        limits={"request_timeout": "1s", "max_header_bytes": 4096},
    )
    stream = await open_stream(gateway.port, "/w")
    witness = Witness(kafka, topic, stream)
    await witness.still_flowing()
    yield gateway, witness
    await stream.close()


def _text(body: str) -> list[tuple[str, str]]:
    return [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]


async def test_unknown_path_is_404(setup: tuple[GatewayProcess, Witness]) -> None:
    gateway, witness = setup
    response = await request(gateway.port, "/nothing/here")
    assert (response.status, response.body) == (404, b"no route for /nothing/here\n")
    assert response.headers == [*_text("no route for /nothing/here\n"), ("Connection", "close")]
    await witness.still_flowing()


async def test_parameter_that_is_no_topic_is_404(setup: tuple[GatewayProcess, Witness]) -> None:
    gateway, witness = setup
    response = await request(gateway.port, "/events/__consumer_offsets")
    assert response.status == 404
    assert response.body == b"'__consumer_offsets' is not a topic this route serves\n"
    await witness.still_flowing()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
async def test_other_methods_are_405(method: str, setup: tuple[GatewayProcess, Witness]) -> None:
    gateway, witness = setup
    response = await request(gateway.port, "/w", method=method)
    assert response.status == 405
    assert response.header("Allow") == "GET, OPTIONS"
    if method != "HEAD":
        assert response.body == f"{method} is not allowed on an event stream; use GET\n".encode()
    await witness.still_flowing()


async def test_last_event_id_over_254_bytes_is_400(setup: tuple[GatewayProcess, Witness]) -> None:
    gateway, witness = setup
    response = await request(gateway.port, "/w", headers={"Last-Event-ID": "a" * 255})
    assert (response.status, response.body) == (
        400,
        b"Last-Event-ID is 255 bytes; the limit is 254\n",
    )
    multibyte = "\u00e9" * 128  # 256 UTF-8 bytes in 128 characters
    response = await request(gateway.port, "/w", headers={"Last-Event-ID": multibyte})
    assert response.status == 400
    response = await request(gateway.port, "/w?lastEventId=" + "b" * 255)
    assert (response.status, response.body) == (
        400,
        b"Last-Event-ID is 255 bytes; the limit is 254\n",
    )
    # 254 bytes is within the limit: an id that does not decode starts per the route's policy.
    stream = await open_stream(gateway.port, "/w", headers={"Last-Event-ID": "c" * 254})
    assert stream.response.status == 200
    await stream.close()
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    assert 'ssegate_resume_total{route="/w",outcome="invalid"} 1' in metrics
    await witness.still_flowing()


async def test_headers_too_large_is_431(setup: tuple[GatewayProcess, Witness]) -> None:
    gateway, witness = setup
    response = await request(gateway.port, "/w", headers={"X-Big": "x" * 5000})
    assert (response.status, response.body) == (431, b"request headers exceed 4096 bytes\n")
    await witness.still_flowing()


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /w HTTP/1.1\r\nHost a\r\n\r\n",
        b"GET /w HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
    ],
)
async def test_malformed_request_is_400(raw: bytes, setup: tuple[GatewayProcess, Witness]) -> None:
    gateway, witness = setup
    response = await request(gateway.port, "", raw=raw)
    assert response.status == 400
    assert response.body.startswith(b"malformed HTTP request: ")
    await witness.still_flowing()


async def test_incomplete_request_times_out_with_408(
    setup: tuple[GatewayProcess, Witness],
) -> None:
    gateway, witness = setup
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"GET /w HTTP/1.1\r\nHost: x\r\n")  # never finished
    head = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert head.endswith(b"\r\n\r\nrequest not received within 1s\n")
    await witness.still_flowing()


async def test_body_too_large_is_413(setup: tuple[GatewayProcess, Witness]) -> None:
    gateway, witness = setup
    body = b"x" * 70_000
    raw = b"POST /w HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    response = await request(gateway.port, "", raw=raw)
    assert (response.status, response.body) == (413, b"request body exceeds 65536 bytes\n")
    await witness.still_flowing()


async def test_foreign_origin_is_403_under_same_origin(
    setup: tuple[GatewayProcess, Witness],
) -> None:
    gateway, witness = setup
    response = await request(gateway.port, "/w", headers={"Origin": "https://evil.example"})
    assert (response.status, response.body) == (
        403,
        b"origin https://evil.example is not allowed\n",
    )
    own = await open_stream(
        gateway.port, "/w", headers={"Origin": f"http://127.0.0.1:{gateway.port}"}
    )
    assert own.response.status == 200
    assert own.response.header("Access-Control-Allow-Origin") is None
    await own.close()
    await witness.still_flowing()


async def test_keep_alive_for_plain_requests(setup: tuple[GatewayProcess, Witness]) -> None:
    gateway, witness = setup
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    for _ in range(3):
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close" not in head
        assert await reader.readexactly(3) == b"ok\n"
    writer.close()
    await witness.still_flowing()


async def test_cross_origin_policy(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [{"path": "/w", "topic": topic}],
        cors={
            "policy": "cross-origin",
            "allow": {"origins": ["https://app.example"], "credentials": True},
            "max_age": 600,
        },
    )
    preflight = await request(
        gateway.port,
        "/w",
        method="OPTIONS",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        },
    )
    assert preflight.status == 204
    assert preflight.headers == [
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "GET"),
        ("Access-Control-Allow-Headers", "last-event-id"),
        ("Access-Control-Max-Age", "600"),
        ("Allow", "GET, OPTIONS"),
        ("Content-Length", "0"),
        ("Connection", "close"),
    ]
    stream = await open_stream(gateway.port, "/w", headers={"Origin": "https://app.example"})
    assert stream.response.status == 200
    assert stream.response.header("Access-Control-Allow-Origin") == "https://app.example"
    assert stream.response.header("Access-Control-Allow-Credentials") == "true"
    await stream.close()
    denied = await request(gateway.port, "/w", headers={"Origin": "https://other.example"})
    assert denied.status == 403
    denied = await request(
        gateway.port,
        "/w",
        method="OPTIONS",
        headers={"Origin": "https://other.example", "Access-Control-Request-Method": "GET"},
    )
    assert denied.status == 403


async def test_errors_of_the_route_space_carry_cors_headers(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    """A cross-origin page sees why it failed (404, 405, 400), as with Zilla; an origin
    that is not allowed gets no CORS headers on any answer."""
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [{"path": "/w", "topic": topic}],
        cors={"policy": "cross-origin", "allow": {"origins": ["https://app.example"]}},
    )
    app = {"Origin": "https://app.example"}
    allowed = [("Access-Control-Allow-Origin", "https://app.example"), ("Vary", "Origin")]
    missing = await request(gateway.port, "/nothing", headers=app)
    assert (missing.status, missing.body) == (404, b"no route for /nothing\n")
    assert [
        h for h in missing.headers if h[0] in ("Access-Control-Allow-Origin", "Vary")
    ] == allowed
    for method, status in (("POST", 405), ("DELETE", 405)):
        answer = await request(gateway.port, "/w", method=method, headers=app)
        assert answer.status == status
        assert answer.header("Access-Control-Allow-Origin") == "https://app.example"
    bad_since = await request(gateway.port, "/w?since=yesterday", headers=app)
    assert bad_since.status == 400
    assert bad_since.header("Access-Control-Allow-Origin") == "https://app.example"
    other = await request(gateway.port, "/nothing", headers={"Origin": "https://other.example"})
    assert other.status == 404
    assert other.header("Access-Control-Allow-Origin") is None
