"""HTTP/2 as clients see it: httpx, curl and a hand-driven h2 client over TLS (ALPN h2) and
cleartext prior knowledge; many streams on one connection, a stream that is not read,
floods, drain, and the h2spec conformance suite."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trustme
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hpack import Encoder

from tests.support.gateway import GatewayProcess
from tests.support.h2_client import H2Client, frame
from tests.support.h2spec import run_h2spec
from tests.support.kafka import KafkaCluster, Record
from tests.support.pki import CertFiles, client_context, write_ca
from tests.support.sse_client import request

pytestmark = pytest.mark.kafka

Gateways = Callable[..., GatewayProcess]

H2 = ("h2", "http/1.1")


def h2_gateway(
    gateways: Gateways,
    routes: list[dict[str, object]],
    ca: trustme.CA,
    cert: CertFiles,
    **sections: object,
) -> GatewayProcess:
    return gateways(routes, tls=cert.section(), client_tls=client_context(ca), **sections)


async def metrics(gateway: GatewayProcess, ca: trustme.CA) -> str:
    answer = await request(gateway.port, "/metrics", tls=client_context(ca))
    return answer.body.decode()


async def test_httpx_and_curl_read_and_resume_streams_over_h2(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    topic = kafka.new_topic(partitions=1)
    kafka.produce(topic, [Record(b"one"), Record(b"two"), Record(b"three")])
    gateway = h2_gateway(gateways, [{"path": "/p", "topic": topic}], ca, server_cert)
    verify = client_context(ca, alpn=H2)

    async with httpx.AsyncClient(verify=verify, http2=True) as http:
        async with http.stream("GET", f"{gateway.base}/p") as response:
            assert (response.http_version, response.status_code) == ("HTTP/2", 200)
            assert response.headers["content-type"] == "text/event-stream"
            assert response.headers["cache-control"] == "no-cache"
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if body.count(b"data:") == 3:
                    break
        assert (
            body
            == b":\n\nid:AQIAAg==\ndata:one\n\nid:AQIABA==\ndata:two\n\nid:AQIABg==\ndata:three\n\n"
        )

        resumed = b""
        headers = {"Last-Event-ID": "AQIAAg=="}
        async with http.stream("GET", f"{gateway.base}/p", headers=headers) as response:
            async for chunk in response.aiter_bytes():
                resumed += chunk
                if resumed.count(b"data:") == 2:
                    break
        assert resumed == b":\n\nid:AQIABA==\ndata:two\n\nid:AQIABg==\ndata:three\n\n"

        # Statuses and CORS hold per stream, as over HTTP/1.1.
        missing = await http.get(f"{gateway.base}/nowhere")
        assert (missing.http_version, missing.status_code) == ("HTTP/2", 404)
        assert missing.text == "no route for /nowhere\n"
        foreign = await http.get(f"{gateway.base}/p", headers={"Origin": "https://evil.test"})
        assert (foreign.status_code, foreign.text) == (
            403,
            "origin https://evil.test is not allowed\n",
        )
        head = await http.head(f"{gateway.base}/health")
        assert (head.status_code, head.headers["content-length"], head.content) == (200, "3", b"")

    ca_file = write_ca(ca, server_cert.certificate.parent / "ca.pem")
    curl = await asyncio.to_thread(
        subprocess.run,
        [
            "curl",
            "-sS",
            "-N",
            "--http2",
            "--cacert",
            str(ca_file),
            "--max-time",
            "3",
            "-w",
            "\\nversion=%{http_version}",
            f"{gateway.base}/p?lastEventId=AQIABA==",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert curl.returncode == 28, curl.stderr  # --max-time ends the endless stream
    assert curl.stdout == ":\n\nid:AQIABg==\ndata:three\n\n\nversion=2"


async def test_fifty_filtered_streams_share_one_connection_exactly(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    topic = kafka.new_topic(partitions=3)
    route = {"path": "/key/{k}", "topic": topic, "filters": [{"key": "${params.k}"}]}
    gateway = h2_gateway(gateways, [route], ca, server_cert)
    client = await H2Client.connect(gateway.port, tls=client_context(ca, alpn=H2))
    keys = [f"k{n}" for n in range(50)]
    streams = {key: await client.get(f"/key/{key}") for key in keys}
    await client.read_until(lambda: all(s.headers for s in client.streams.values()))
    assert {state.status for state in client.streams.values()} == {200}

    records = [Record(f"{key}-{i}".encode(), key=key.encode()) for i in range(5) for key in keys]
    await asyncio.to_thread(kafka.produce, topic, records)

    def all_arrived() -> bool:
        return all(len(client.streams[s].events()) == 5 for s in streams.values())

    await client.read_until(all_arrived, timeout=30)
    for key, stream_id in streams.items():
        events = client.streams[stream_id].events()
        assert [e.data for e in events] == [f"{key}-{i}" for i in range(5)]
    await client.close()


async def test_a_stream_that_is_not_read_falls_behind_without_stalling_the_others(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = h2_gateway(
        gateways,
        [{"path": "/p", "topic": topic}],
        ca,
        server_cert,
        limits={"write_buffer_high_water": "64KiB"},
    )
    client = await H2Client.connect(gateway.port, tls=client_context(ca, alpn=H2))
    stuck = await client.get("/p")
    reading = await client.get("/p")
    await client.read_until(lambda: all(s.headers for s in client.streams.values()))
    client.held.add(stuck)  # no WINDOW_UPDATE for it: its 64 KiB window closes

    total = 2000
    payload = "x" * 200
    records = [Record(f"{n}:{payload}".encode()) for n in range(total)]
    await asyncio.to_thread(kafka.produce, topic, records)
    await client.read_until(lambda: len(client.streams[reading].events()) == total, timeout=30)
    assert len(client.streams[stuck].data) <= 65535  # what its window let through

    text = await metrics(gateway, ca)
    # The stuck one fell behind (the other may have too, for a moment: the socket's unsent
    # bytes count for every stream of the connection); neither was closed.
    fell_behind = re.search(r'ssegate_streams_fell_behind_total\{route="/p"\} (\d+)', text)
    assert fell_behind is not None
    assert int(fell_behind.group(1)) >= 1
    assert 'ssegate_streams_open{route="/p"} 2' in text

    # It reads again: everything arrives, in order, once (replayed from the ring).
    client.held.discard(stuck)
    client.h2.acknowledge_received_data(len(client.streams[stuck].data), stuck)
    await client.flush()
    await client.read_until(lambda: len(client.streams[stuck].events()) == total, timeout=30)
    expected = [f"{n}:{payload}" for n in range(total)]
    assert [e.data for e in client.streams[stuck].events()] == expected
    assert [e.data for e in client.streams[reading].events()] == expected
    await client.close()


async def test_rapid_reset_and_continuation_floods_are_cut_off_while_others_flow(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = h2_gateway(gateways, [{"path": "/p", "topic": topic}], ca, server_cert)
    tls = client_context(ca, alpn=H2)
    watcher = await H2Client.connect(gateway.port, tls=tls)
    watched = await watcher.get("/p")
    await watcher.read_until(lambda: bool(watcher.streams[watched].headers))

    # Rapid reset: open a stream and reset it, a thousand times, without waiting.
    attacker = await H2Client.connect(gateway.port, tls=tls)
    encoder = Encoder()
    block = encoder.encode(
        [(":method", "GET"), (":path", "/p"), (":scheme", "https"), (":authority", "127.0.0.1")]
    )
    burst = b"".join(
        frame(0x1, 0x5, n, block) + frame(0x3, 0, n, b"\0\0\0\x08") for n in range(1, 2001, 2)
    )
    await attacker.write_raw(burst)
    await attacker.read_until(lambda: attacker.terminated is not None or attacker.closed)
    assert attacker.terminated is not None
    assert attacker.terminated.error_code == ErrorCodes.ENHANCE_YOUR_CALM

    # CONTINUATION flood: a header block that never ends.
    flooder = await H2Client.connect(gateway.port, tls=tls)
    await flooder.write_raw(frame(0x1, 0x1, 1, block))
    continuation = frame(0x9, 0, 1, b"\x40\x01a\x7f\x00" + b"a" * 16000)
    with contextlib.suppress(ConnectionError):  # the server may hang up mid-write
        await flooder.write_raw(continuation * 10)
    await flooder.read_until(lambda: flooder.terminated is not None or flooder.closed)
    assert flooder.terminated is not None
    assert flooder.terminated.error_code == ErrorCodes.ENHANCE_YOUR_CALM

    # The watcher's stream went on all along.
    await asyncio.to_thread(kafka.produce, topic, [Record(b"after")])
    await watcher.read_until(lambda: len(watcher.streams[watched].events()) == 1)
    text = await metrics(gateway, ca)
    assert 'ssegate_http_protocol_errors_total{protocol="h2",reason="rapid_reset"} 1' in text
    assert (
        'ssegate_http_protocol_errors_total{protocol="h2",reason="header_block_too_large"} 1'
        in text
    )
    await watcher.close()
    await attacker.close()
    await flooder.close()


async def test_sigterm_sends_goaway_and_ends_each_stream_with_a_checkpoint(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    topic = kafka.new_topic(partitions=1)
    kafka.produce(topic, [Record(b"one")])
    gateway = h2_gateway(gateways, [{"path": "/p", "topic": topic}], ca, server_cert)
    client = await H2Client.connect(gateway.port, tls=client_context(ca, alpn=H2))
    ids = [await client.get("/p") for _ in range(3)]
    await client.read_until(lambda: all(len(client.streams[i].events()) == 1 for i in ids))
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGTERM)
    await client.read_until(lambda: client.closed, timeout=15)
    assert client.terminated is not None
    assert (client.terminated.error_code, client.terminated.last_stream_id) == (0, ids[-1])
    for stream_id in ids:
        state = client.streams[stream_id]
        assert state.ended, state
        assert state.data.endswith(b"id:AQIAAg==\n\n")  # a checkpoint: resume after "one"
    assert await asyncio.to_thread(gateway.process.wait, 15) == 0


async def test_max_concurrent_streams_is_configurable(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        tls=server_cert.section(),
        client_tls=client_context(ca),
        http2={"max_concurrent_streams": 5},
    )
    client = await H2Client.connect(gateway.port, tls=client_context(ca, alpn=H2))
    await client.get("/health")
    await client.read_until(lambda: client.streams[1].ended)
    assert client.h2.remote_settings.max_concurrent_streams == 5
    assert client.h2.remote_settings.max_header_list_size == 16 * 1024
    await client.close()


async def test_cleartext_http2_by_prior_knowledge_only_when_enabled(
    kafka: KafkaCluster, gateways: Gateways
) -> None:
    topic = kafka.new_topic(partitions=1)
    kafka.produce(topic, [Record(b"one")])
    routes = [{"path": "/p", "topic": topic}]
    plain = gateways(routes)
    h2c = gateways(routes, http2={"cleartext": True})

    async def curl(port: int) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [
                "curl",
                "-sS",
                "-N",
                "--http2-prior-knowledge",
                "--max-time",
                "3",
                "-w",
                "\\nversion=%{http_version}",
                f"http://127.0.0.1:{port}/p",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    spoken = await curl(h2c.port)
    assert spoken.stdout == ":\n\nid:AQIAAg==\ndata:one\n\n\nversion=2", spoken.stderr
    refused = await curl(plain.port)  # HTTP/1.1 answers the preface with a 400 and closes
    assert refused.returncode != 0
    assert "version=2" not in refused.stdout
    # HTTP/1.1 still works on the h2c listener.
    answer = await request(h2c.port, "/health")
    assert (answer.status, answer.body) == (200, b"ok\n")
    client = await H2Client.connect(h2c.port, settings={SettingCodes.ENABLE_PUSH: 0})
    stream_id = await client.get("/health")
    await client.read_until(lambda: client.streams[stream_id].ended)
    assert client.streams[stream_id].data == b"ok\n"
    await client.close()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
async def test_h2spec_conformance(
    kafka: KafkaCluster,
    gateways: Gateways,
    ca: trustme.CA,
    server_cert: CertFiles,
    tmp_path: Path,
    tls: bool,
) -> None:
    topic = kafka.new_topic(partitions=1)
    routes = [{"path": "/p", "topic": topic}]
    if tls:
        gateway = h2_gateway(gateways, routes, ca, server_cert)
    else:
        gateway = gateways(routes, http2={"cleartext": True})
    # /metrics: a body of a few KiB, which the flow-control cases need.
    outcome = await asyncio.to_thread(
        run_h2spec, gateway.port, tls=tls, path="/metrics", report=tmp_path / "h2spec.xml"
    )
    # On a cleartext listener that serves HTTP/1.1 too, bytes that are not the HTTP/2
    # preface are an HTTP/1.1 request: h2spec's invalid preface gets HTTP/1.1's 400 and a
    # close, not an HTTP/2 GOAWAY. Over TLS, ALPN has chosen h2 first: it gets the GOAWAY.
    not_applicable = [] if tls else ["http2/3.5: Sends invalid connection preface"]
    assert outcome.failed == not_applicable
    assert outcome.skipped == []
    assert len(outcome.passed) == 146 - len(not_applicable)
    assert gateway.process is not None
    assert gateway.process.poll() is None  # it served every case and stayed up
