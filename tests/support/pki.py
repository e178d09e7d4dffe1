"""Certificates for TLS tests, made by a throwaway CA (trustme), written as PEM files."""

from __future__ import annotations

import datetime
import socket
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

LOOPBACK = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class CertFiles:
    """A leaf certificate's files: `certificate` holds the leaf then its chain."""

    certificate: Path
    key: Path
    leaf: trustme.LeafCert

    def section(self, **extra: object) -> dict[str, object]:
        """The config entry naming these files (a listener's `tls` or an `sni` entry)."""
        return {"certificate": str(self.certificate), "key": str(self.key), **extra}


def issue(
    ca: trustme.CA,
    directory: Path,
    name: str,
    *identities: str,
    passphrase: bytes | None = None,
    expired: bool = False,
) -> CertFiles:
    """A certificate for `identities` (default: localhost and 127.0.0.1) in `directory`."""
    not_after = None
    not_before = None
    if expired:
        now = datetime.datetime.now(datetime.UTC)
        not_before, not_after = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
    leaf = ca.issue_cert(
        *(identities or LOOPBACK), common_name=name, not_before=not_before, not_after=not_after
    )
    directory.mkdir(parents=True, exist_ok=True)
    certificate = directory / f"{name}.crt"
    key = directory / f"{name}.key"
    certificate.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key_pem = leaf.private_key_pem.bytes()
    if passphrase is not None:
        private = serialization.load_pem_private_key(key_pem, password=None)
        key_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    key.write_bytes(key_pem)
    return CertFiles(certificate, key, leaf)


def write_ca(ca: trustme.CA, path: Path) -> Path:
    ca.cert_pem.write_to_path(str(path))
    return path


def client_context(
    ca: trustme.CA,
    *,
    cert: CertFiles | None = None,
    maximum: ssl.TLSVersion | None = None,
    check_hostname: bool = True,
    alpn: tuple[str, ...] = ("http/1.1",),
) -> ssl.SSLContext:
    """A client that trusts `ca`, offers `alpn` (http/1.1), and shows `cert` when asked."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.check_hostname = check_hostname
    context.set_alpn_protocols(list(alpn))
    if maximum is not None:
        with warnings.catch_warnings():  # offering TLS 1.1 is the point: no warning for it
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = maximum
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old versions
    if cert is not None:
        cert.leaf.configure_cert(context)
    return context


def handshake(port: int, context: ssl.SSLContext, server_name: str = "127.0.0.1") -> ssl.SSLSocket:
    """A finished TLS handshake with the listener at `port` (ssl.SSLError when refused)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(sock, server_hostname=server_name)
    except BaseException:
        sock.close()
        raise


def get(port: int, context: ssl.SSLContext, path: str = "/health") -> str:
    """`GET path` over TLS: the status line, or what ended the connection instead."""
    try:
        with handshake(port, context) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answer = tls.recv(4096)
    except (ssl.SSLError, ConnectionError) as exc:
        return f"refused: {exc}"
    if not answer:
        return "refused: closed without an answer"
    return answer.split(b"\r\n", 1)[0].decode()
