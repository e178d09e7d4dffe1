"""A server certificate for the TLS benchmarks, from a throwaway CA (trustme): for
`localhost` and 127.0.0.1, ECDSA P-256 as browsers and ACME issuers default to."""

from __future__ import annotations

from pathlib import Path

import trustme


def server_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate chain, key) files in `directory`, made once per directory."""
    certificate, key = directory / "server.crt", directory / "server.key"
    if not certificate.exists():
        directory.mkdir(parents=True, exist_ok=True)
        leaf = trustme.CA().issue_cert("localhost", "127.0.0.1")
        certificate.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
    return certificate, key
