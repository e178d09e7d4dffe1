"""The HTTPS demo's local CA: made once, reused while good, made again before it expires."""

from __future__ import annotations

import datetime
import ssl
import stat
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from ssegate.demo.localca import ensure_local_tls


def not_after(path: Path) -> datetime.datetime:
    return x509.load_pem_x509_certificates(path.read_bytes())[0].not_valid_after_utc


def test_made_once_then_reused(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path / "tls")
    assert stat.S_IMODE(first.key.stat().st_mode) == 0o600
    made = {path: path.read_bytes() for path in (first.ca, first.certificate, first.key)}
    again = ensure_local_tls(tmp_path / "tls")
    assert {path: path.read_bytes() for path in (again.ca, again.certificate, again.key)} == made
    left = not_after(first.certificate) - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < left <= datetime.timedelta(days=30)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> None:
    """A complete TLS handshake in memory; ssl.SSLError when the client refuses."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, to_server, server_hostname=name)
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    done: set[str] = set()
    for _ in range(10):
        for label, side in (("client", client_side), ("server", server_side)):
            if label in done:
                continue
            try:
                side.do_handshake()
                done.add(label)
            except ssl.SSLWantReadError:
                pass
        if done == {"client", "server"}:
            return
    raise AssertionError("the handshake did not finish")


def test_a_client_trusting_its_ca_accepts_localhost_and_loopback(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.certificate, files.key)
    client = ssl.create_default_context(cafile=str(files.ca))
    for name in ("localhost", "127.0.0.1", "::1"):
        handshake(server, client, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, client, "example.com")


def test_made_again_when_about_to_expire(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    ca = trustme.CA()
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
    leaf = ca.issue_cert("localhost", not_after=soon)
    files.certificate.write_bytes(leaf.cert_chain_pems[0].bytes())
    renewed = ensure_local_tls(tmp_path)
    assert not_after(renewed.certificate) - soon > datetime.timedelta(days=29)
