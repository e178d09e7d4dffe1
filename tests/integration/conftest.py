"""Fixtures of the integration tests that speak TLS: a CA the clients trust, and a server
certificate from it for 127.0.0.1 and localhost."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from tests.support.pki import CertFiles, issue


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_cert(ca: trustme.CA, tmp_path: Path) -> CertFiles:
    return issue(ca, tmp_path / "pki", "server")
