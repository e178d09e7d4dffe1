"""HTTPS listeners as clients see them: events and resumes over TLS, the versions and
ciphers a client may use, the certificate SNI picks, and client certificates (mTLS)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.pki import CertFiles, client_context, get, handshake, issue, write_ca
from tests.support.sse_client import open_stream, request

pytestmark = pytest.mark.kafka

Gateways = Callable[..., GatewayProcess]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_cert(ca: trustme.CA, tmp_path: Path) -> CertFiles:
    return issue(ca, tmp_path / "pki", "server")


def https_gateway(
    gateways: Gateways, topic: str, ca: trustme.CA, tls: dict[str, object]
) -> GatewayProcess:
    return gateways([{"path": "/p", "topic": topic}], tls=tls, client_tls=client_context(ca))


async def test_events_and_resumes_over_tls(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    topic = kafka.new_topic(partitions=1)
    kafka.produce(topic, [Record(b"one"), Record(b"two"), Record(b"three")])
    gateway = https_gateway(gateways, topic, ca, server_cert.section())
    client = client_context(ca)

    stream = await open_stream(gateway.port, "/p", tls=client)
    assert stream.response.status == 200
    connection = stream.writer.get_extra_info("ssl_object")
    assert (connection.version(), connection.selected_alpn_protocol()) == ("TLSv1.3", "http/1.1")
    events = await stream.next_events(3)
    assert [e.data for e in events] == ["one", "two", "three"]
    await stream.close()

    resumed = await open_stream(
        gateway.port, "/p", headers={"Last-Event-ID": events[0].last_event_id}, tls=client
    )
    assert [e.data for e in await resumed.next_events(2)] == ["two", "three"]
    await resumed.close()

    # Same-origin CORS compares with the https origin now.
    origin = f"https://127.0.0.1:{gateway.port}"
    same = await request(gateway.port, "/p", headers={"Origin": origin}, tls=client, timeout=2)
    assert same.status == 200
    plain = f"http://127.0.0.1:{gateway.port}"
    other = await request(gateway.port, "/p", headers={"Origin": plain}, tls=client)
    assert (other.status, other.body) == (403, f"origin {plain} is not allowed\n".encode())

    # Other clients: httpx trusting the CA, curl with --cacert.
    async with httpx.AsyncClient(verify=client) as http:
        answer = await http.get(f"{gateway.base}/health")
    assert (answer.status_code, answer.text) == (200, "ok\n")
    ca_file = write_ca(ca, server_cert.certificate.parent / "ca.pem")
    curl = await asyncio.to_thread(
        subprocess.run,
        ["curl", "-sS", "--cacert", str(ca_file), f"{gateway.base}/health"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (curl.returncode, curl.stdout) == (0, "ok\n"), curl.stderr
    # Plain HTTP to the TLS port is not served.
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError, TimeoutError)):
        await request(gateway.port, "/health", timeout=5)


async def test_tls_1_2_at_least_with_forward_secret_aead_ciphers(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = https_gateway(gateways, topic, ca, server_cert.section())
    # The server refused (uvloop hangs up rather than sending the protocol-version alert),
    # not a client that could not offer the version (that fails before connecting).
    refused = "ALERT_PROTOCOL_VERSION|UNEXPECTED_EOF"
    with pytest.raises(ssl.SSLError, match=refused):
        handshake(gateway.port, client_context(ca, maximum=ssl.TLSVersion.TLSv1_1))
    with handshake(gateway.port, client_context(ca, maximum=ssl.TLSVersion.TLSv1_2)) as tls12:
        cipher = tls12.cipher()
        assert cipher is not None
        name, version, _ = cipher
        assert version == "TLSv1.2"
        assert name.startswith("ECDHE-"), name
        assert "GCM" in name or "CHACHA20" in name, name

    only_13 = https_gateway(gateways, topic, ca, server_cert.section(min_version="1.3"))
    with pytest.raises(ssl.SSLError, match=refused):
        handshake(only_13.port, client_context(ca, maximum=ssl.TLSVersion.TLSv1_2))
    with handshake(only_13.port, client_context(ca)) as tls13:
        assert tls13.version() == "TLSv1.3"


async def test_sni_picks_the_certificate_by_name_or_wildcard(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    directory = server_cert.certificate.parent
    wildcard = issue(ca, directory, "wildcard", "*.example.test")
    exact = issue(ca, directory, "exact", "exact.test")
    topic = kafka.new_topic(partitions=1)
    tls = server_cert.section(
        sni={"*.example.test": wildcard.section(), "EXACT.test": exact.section()}
    )
    gateway = https_gateway(gateways, topic, ca, tls)

    def names_in_certificate(server_name: str) -> list[str]:
        context = client_context(ca, check_hostname=False)
        with handshake(gateway.port, context, server_name) as tls_socket:
            peer = tls_socket.getpeercert()
        return [value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS"]

    assert names_in_certificate("a.example.test") == ["*.example.test"]
    assert names_in_certificate("exact.test") == ["exact.test"]
    assert names_in_certificate("Exact.Test") == ["exact.test"], "names are case-insensitive"
    for other in ("example.test", "a.b.example.test", "elsewhere.test"):
        assert names_in_certificate(other) == ["localhost"], other
    # With hostname checks on, a browser-like client accepts what SNI chose.
    with handshake(gateway.port, client_context(ca), "b.example.test"):
        pass


@pytest.mark.parametrize("mode", ["required", "optional"])
async def test_client_certificates(
    kafka: KafkaCluster,
    gateways: Gateways,
    ca: trustme.CA,
    server_cert: CertFiles,
    mode: str,
) -> None:
    directory = server_cert.certificate.parent
    client_ca = trustme.CA()
    stranger_ca = trustme.CA()
    good = issue(client_ca, directory, "alice", "alice.example")
    expired = issue(client_ca, directory, "old", "old.example", expired=True)
    stranger = issue(stranger_ca, directory, "mallory", "mallory.example")
    ca_file = write_ca(client_ca, directory / "clients-ca.pem")
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [{"path": "/p", "topic": topic}],
        tls=server_cert.section(client_auth=mode, client_ca=str(ca_file)),
        client_tls=client_context(ca, cert=good),
    )
    port = gateway.port
    assert get(port, client_context(ca, cert=good)) == "HTTP/1.1 200 OK"
    assert get(port, client_context(ca, cert=stranger)).startswith("refused"), "another CA"
    assert get(port, client_context(ca, cert=expired)).startswith("refused"), "expired"
    without = get(port, client_context(ca))
    if mode == "required":
        assert without.startswith("refused"), without
    else:
        assert without == "HTTP/1.1 200 OK"
