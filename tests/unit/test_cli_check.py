"""`ssegate check` as an operator sees it: what it prints, and its exit status, for TLS
listeners whose certificates are fine, about to expire, expired or not yet valid."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import trustme
import yaml

from ssegate.cli import main
from ssegate.http.tls import validity_notice
from tests.support.pki import CertFiles, issue

NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def config_file(directory: Path, cert: CertFiles) -> Path:
    path = directory / "ssegate.yaml"
    document = {
        "kafka": {"bootstrap_servers": "localhost:9092"},
        "listeners": [
            {"host": "127.0.0.1", "port": 8443, "tls": cert.section()},
            {"host": "127.0.0.1", "port": 7114},
        ],
        "routes": [{"path": "/p", "topic": "t"}],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def dated(ca: trustme.CA, directory: Path, *, start: int, end: int) -> CertFiles:
    """A certificate valid from `start` to `end` days from now."""
    leaf = ca.issue_cert(
        "localhost",
        not_before=NOW + datetime.timedelta(days=start),
        not_after=NOW + datetime.timedelta(days=end, hours=1),
    )
    certificate, key = directory / "dated.crt", directory / "dated.key"
    certificate.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return CertFiles(certificate, key, leaf)


def test_a_good_certificate(
    ca: trustme.CA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, issue(ca, tmp_path, "server"))
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}: ok (1 routes; listening on https://127.0.0.1:8443, http://127.0.0.1:7114)\n"
        "  /p -> topic t\n"
    )


def test_one_about_to_expire_is_a_warning(
    ca: trustme.CA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = dated(ca, tmp_path, start=-60, end=5)
    path = config_file(tmp_path, cert)
    assert main(["check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith(
        f"  warning: listeners[0].tls: {cert.certificate}: the certificate expires on "
    )
    assert lines[-1].endswith(" UTC, in 5 days")


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [(-60, -2, "expired on"), (3, 90, "is valid only from")],
)
def test_one_clients_refuse_fails_the_check(
    ca: trustme.CA,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    start: int,
    end: int,
    problem: str,
) -> None:
    cert = dated(ca, tmp_path, start=start, end=end)
    path = config_file(tmp_path, cert)
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    prefix = f"ssegate: error: {path}: listeners[0].tls: {cert.certificate}: the certificate "
    assert captured.err.startswith(prefix + problem + " ")
    assert captured.err.endswith(" UTC\n")


def test_the_notice_names_the_day(ca: trustme.CA, tmp_path: Path) -> None:
    cert = dated(ca, tmp_path, start=-60, end=-1)
    notice = validity_notice(cert.certificate, NOW)
    assert notice is not None
    assert notice.unusable
    day = (NOW - datetime.timedelta(days=1) + datetime.timedelta(hours=1)).strftime("%Y-%m-%d")
    assert notice.message.startswith(f"{cert.certificate}: the certificate expired on {day} ")
    month_ago = NOW - datetime.timedelta(days=30)
    assert validity_notice(cert.certificate, month_ago) is None, "then it had 29 days left"
