"""Fixtures of the integration tests: a CA the clients trust and a server certificate from it
for 127.0.0.1 and localhost (TLS), and the session's real Apicurio Registry (schemas)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from tests.support.apicurio import apicurio_registry  # noqa: F401 (session fixture)
from tests.support.pki import CertFiles, issue


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_cert(ca: trustme.CA, tmp_path: Path) -> CertFiles:
    return issue(ca, tmp_path / "pki", "server")
