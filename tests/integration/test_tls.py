"""HTTPS listeners as clients see them: events and resumes over TLS, the versions and
ciphers a client may use, the certificate SNI picks, and client certificates (mTLS)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.gateway import GatewayProcess
from tests.support.h2_client import H2Client
from tests.support.kafka import KafkaCluster, Record
from tests.support.pki import CertFiles, client_context, get, handshake, issue, write_ca
from tests.support.sse_client import open_stream, request
from tests.support.waiting import until

pytestmark = pytest.mark.kafka

Gateways = Callable[..., GatewayProcess]


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


def common_name(port: int, ca: trustme.CA) -> str:
    """The CN of the certificate a new connection gets."""
    with handshake(port, client_context(ca)) as tls_socket:
        subject = dict(item for rdn in tls_socket.getpeercert()["subject"] for item in rdn)
    return str(subject["commonName"])


def install(cert: CertFiles, certificate: Path, key: Path) -> None:
    """Put `cert` where the gateway reads its files, as a renewal tool does: the key, then
    the certificate, each file replaced whole."""
    for source, target in ((cert.key, key), (cert.certificate, certificate)):
        staged = target.with_suffix(".new")
        shutil.copyfile(source, staged)
        os.replace(staged, target)


def rotating_gateway(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, tmp_path: Path, reload_check: object
) -> tuple[GatewayProcess, str, tuple[Path, Path]]:
    """A gateway serving a certificate with CN `first` from files the test may replace."""
    directory = tmp_path / "pki"
    certificate, key = directory / "live.crt", directory / "live.key"
    install(issue(ca, directory, "first"), certificate, key)
    topic = kafka.new_topic(partitions=1)
    tls = {"certificate": str(certificate), "key": str(key), "reload_check": reload_check}
    return https_gateway(gateways, topic, ca, tls), topic, (certificate, key)


async def test_certificates_rotated_on_disk_reach_new_connections_and_streams_stay(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, tmp_path: Path
) -> None:
    gateway, topic, (certificate, key) = rotating_gateway(
        kafka, gateways, ca, tmp_path, reload_check="200ms"
    )
    directory = certificate.parent
    client = client_context(ca)
    streams = [await open_stream(gateway.port, "/p", tls=client) for _ in range(100)]
    assert common_name(gateway.port, ca) == "first"

    install(issue(ca, directory, "second"), certificate, key)
    await until(lambda: common_name(gateway.port, ca), 10, accept=lambda cn: cn == "second")
    await asyncio.to_thread(kafka.produce, topic, [Record(b"after the rotation")])
    for stream in streams:
        (event,) = await stream.next_events(1)
        assert event.data == "after the rotation"
        await stream.close()
    assert "listeners[0]: certificates reloaded" in gateway.log()


async def test_sighup_reloads_and_a_broken_rotation_keeps_the_previous_certificate(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, tmp_path: Path
) -> None:
    gateway, _, (certificate, key) = rotating_gateway(kafka, gateways, ca, tmp_path, reload_check=0)
    directory = certificate.parent
    assert gateway.process is not None

    install(issue(ca, directory, "second"), certificate, key)
    await asyncio.sleep(1.0)
    assert common_name(gateway.port, ca) == "first", "reload_check 0: files are not watched"
    gateway.process.send_signal(signal.SIGHUP)
    await until(lambda: common_name(gateway.port, ca), 10, accept=lambda cn: cn == "second")

    third = issue(ca, directory, "third")
    shutil.copyfile(third.certificate, certificate)  # a certificate without its key
    gateway.process.send_signal(signal.SIGHUP)
    await until(
        lambda: gateway.log(),
        10,
        accept=lambda log: "listeners[0]: certificates not reloaded" in log,
    )
    assert "the key does not match the certificate" in gateway.log()
    assert common_name(gateway.port, ca) == "second"
    assert gateway.process.poll() is None


async def test_client_certificate_names_select_what_a_stream_gets(
    kafka: KafkaCluster, gateways: Gateways, ca: trustme.CA, server_cert: CertFiles
) -> None:
    directory = server_cert.certificate.parent
    client_ca = trustme.CA()
    alice = issue(client_ca, directory, "alice", "alice.example")
    bob = issue(client_ca, directory, "bob", "bob.example")
    ca_file = write_ca(client_ca, directory / "clients-ca.pem")
    topic = kafka.new_topic(partitions=2)
    routes = [
        {"path": "/mine", "topic": topic, "filters": [{"key": "${tls.client.cn}"}]},
        {"path": "/by-mail", "topic": topic, "filters": [{"key": "${tls.client.email}"}]},
    ]
    gateway = gateways(
        routes,
        tls=server_cert.section(client_auth="optional", client_ca=str(ca_file)),
        client_tls=client_context(ca, cert=alice),
    )
    records = [Record(b"for alice 1", key=b"alice"), Record(b"for bob", key=b"bob")]
    kafka.produce(topic, [*records, Record(b"for alice 2", key=b"alice")])

    # HTTP/1.1 with alice's certificate: her records only.
    mine = await open_stream(gateway.port, "/mine", tls=client_context(ca, cert=alice))
    assert [e.data for e in await mine.next_events(2)] == ["for alice 1", "for alice 2"]
    await mine.close()
    # HTTP/2 with bob's: his.
    h2 = client_context(ca, cert=bob, alpn=("h2",))
    client = await H2Client.connect(gateway.port, tls=h2)
    stream_id = await client.get("/mine")
    await client.read_until(lambda: len(client.streams[stream_id].events()) == 1)
    assert [e.data for e in client.streams[stream_id].events()] == ["for bob"]
    await client.close()
    # No certificate (allowed by `optional`), or one without the field the route uses.
    none = await request(gateway.port, "/mine", tls=client_context(ca))
    assert (none.status, none.body) == (
        403,
        b"this stream needs a client certificate (mutual TLS)\n",
    )
    no_mail = await request(gateway.port, "/by-mail", tls=client_context(ca, cert=alice))
    assert (no_mail.status, no_mail.body) == (
        403,
        b"the client certificate has no value for ${tls.client.email}\n",
    )
