"""A listener's `tls` section: every mistake is one line naming the field or the file and
why (and never the key's passphrase); a good one gives the listener its SSL context."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from ssegate import wiring
from ssegate.config.problems import format_path
from ssegate.errors import ConfigError
from ssegate.http.tls import TlsConfigError, match_server_name
from tests.support.pki import CertFiles, issue, write_ca

SOURCE = "ssegate.yaml"
SECRET = "correct horse battery staple"
AT = f"{SOURCE}: listeners[0].tls"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert(ca: trustme.CA, tmp_path: Path) -> CertFiles:
    return issue(ca, tmp_path, "server")


def document(tls: dict[str, Any], http2: dict[str, Any] | None = None) -> str:
    listener: dict[str, Any] = {"port": 8443, "tls": tls}
    if http2 is not None:
        listener["http2"] = http2
    return yaml.safe_dump(
        {
            "kafka": {"bootstrap_servers": "localhost:9092"},
            "listeners": [listener],
            "routes": [{"path": "/p", "topic": "t"}],
        },
        sort_keys=False,
    )


def compiled(tls: dict[str, Any], base_dir: Path, **environ: str) -> wiring.CompiledConfig:
    return wiring.parse(document(tls), source=SOURCE, base_dir=base_dir, environ=environ)


def context_of(config: wiring.CompiledConfig) -> ssl.SSLContext:
    (tls,) = config.tls
    assert tls is not None
    return tls.context


def error_of(tls: dict[str, Any], base_dir: Path, **environ: str) -> str:
    with pytest.raises(ConfigError) as caught:
        compiled(tls, base_dir, **environ)
    message = str(caught.value)
    assert "\n" not in message
    assert SECRET not in message
    return message


def test_a_good_section_gives_the_listener_its_context(cert: CertFiles, tmp_path: Path) -> None:
    context = context_of(compiled(cert.section(), tmp_path))
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_NONE
    plain = wiring.parse(
        "kafka: {bootstrap_servers: x}\nroutes: [{path: /p, topic: t}]\n", source=SOURCE
    )
    assert plain.tls == (None,)


def test_files_resolve_against_the_config_files_directory(cert: CertFiles) -> None:
    relative = {"certificate": cert.certificate.name, "key": cert.key.name}
    assert compiled(relative, cert.certificate.parent).tls[0] is not None


def test_unreadable_or_missing_files(cert: CertFiles, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.key"
    assert error_of(cert.section(key=str(missing)), tmp_path) == (
        f"{AT}.key: no such file: {missing}"
    )
    assert error_of(cert.section(certificate=str(tmp_path)), tmp_path) == (
        f"{AT}.certificate: not a regular file: {tmp_path}"
    )


def test_a_key_that_is_not_the_certificates(
    ca: trustme.CA, cert: CertFiles, tmp_path: Path
) -> None:
    other = issue(ca, tmp_path, "other")
    assert error_of(cert.section(key=str(other.key)), tmp_path) == (
        f"{AT}: {cert.certificate} with key {other.key}: the key does not match the certificate"
    )


def test_not_pem(cert: CertFiles, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert error_of(cert.section(certificate=str(junk)), tmp_path) == (
        f"{AT}: {junk}: not a PEM certificate"
    )
    assert error_of(cert.section(key=str(cert.certificate)), tmp_path) == (
        f"{AT}: {cert.certificate}: not a PEM private key"
    )


def test_an_encrypted_key_with_its_passphrase_from_the_environment(
    ca: trustme.CA, tmp_path: Path
) -> None:
    locked = issue(ca, tmp_path, "locked", passphrase=SECRET.encode())
    section = locked.section(key_passphrase="${env.KEY_PASSPHRASE}")
    assert compiled(section, tmp_path, KEY_PASSPHRASE=SECRET).tls[0] is not None
    expected = (
        f"{AT}: {locked.certificate} with key {locked.key}: "
        "cannot decrypt the key (wrong or missing key_passphrase)"
    )
    assert error_of(section, tmp_path, KEY_PASSPHRASE="wrong " + SECRET) == expected
    assert error_of(locked.section(), tmp_path) == expected


def test_client_auth_needs_its_ca_and_the_ca_needs_client_auth(
    ca: trustme.CA, cert: CertFiles, tmp_path: Path
) -> None:
    assert error_of(cert.section(client_auth="required"), tmp_path) == (
        f"{AT}.client_ca: client_auth: required needs the CA certificates"
    )
    ca_file = write_ca(ca, tmp_path / "ca.pem")
    assert error_of(cert.section(client_ca=str(ca_file)), tmp_path) == (
        f"{AT}.client_auth: is none, so client_ca would not be used: say optional or required"
    )
    optional = compiled(cert.section(client_auth="optional", client_ca=str(ca_file)), tmp_path)
    assert context_of(optional).verify_mode is ssl.CERT_OPTIONAL
    assert error_of(cert.section(client_auth="sometimes"), tmp_path) == (
        f"{AT}.client_auth: 'sometimes' is not one of none, optional, required"
    )


@pytest.mark.parametrize(
    ("written", "version"), [("1.3", "TLSv1_3"), (1.3, "TLSv1_3"), (1.2, "TLSv1_2")]
)
def test_min_version_quoted_or_not(
    cert: CertFiles, tmp_path: Path, written: object, version: str
) -> None:
    context = context_of(compiled(cert.section(min_version=written), tmp_path))
    assert context.minimum_version is ssl.TLSVersion[version]


def test_min_version_other_than_1_2_or_1_3(cert: CertFiles, tmp_path: Path) -> None:
    assert error_of(cert.section(min_version=1.1), tmp_path) == (
        f'{AT}.min_version: must be "1.2" or "1.3", got 1.1'
    )


@pytest.mark.parametrize("name", ["*", "a.*.example", "*example.com", "**.example", "a b"])
def test_sni_names_must_be_host_names(cert: CertFiles, tmp_path: Path, name: str) -> None:
    where = format_path(("listeners", 0, "tls", "sni", name))
    assert error_of(cert.section(sni={name: cert.section()}), tmp_path) == (
        f"{SOURCE}: {where}: {name!r} is not a host name "
        "(a wildcard is a first label: *.example.com)"
    )


def test_sni_names_are_case_insensitive(cert: CertFiles, tmp_path: Path) -> None:
    twice = {"a.example": cert.section(), "A.Example": cert.section()}
    where = format_path(("listeners", 0, "tls", "sni", "A.Example"))
    assert error_of(cert.section(sni=twice), tmp_path) == (
        f"{SOURCE}: {where}: 'A.Example' is named twice"
    )


def test_a_server_name_picks_its_own_entry_or_one_wildcard_label() -> None:
    names = dict.fromkeys(
        ["exact.test", "*.example.test", "localhost"], ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    )
    assert match_server_name("EXACT.test.", names) == "exact.test"
    assert match_server_name("localhost", names) == "localhost"
    assert match_server_name("a.example.test", names) == "*.example.test"
    assert match_server_name("example.test", names) is None
    assert match_server_name("a.b.example.test", names) is None


def test_reload_check_is_a_duration_of_at_least_zero(cert: CertFiles, tmp_path: Path) -> None:
    assert error_of(cert.section(reload_check=-1), tmp_path) == (
        f"{AT}.reload_check: must be at least 0, got -1s"
    )
    assert compiled(cert.section(reload_check=0), tmp_path).tls[0] is not None


def test_reload_is_all_or_nothing(ca: trustme.CA, cert: CertFiles, tmp_path: Path) -> None:
    """A certificate replaced without its key: nothing changes, and a later fix loads."""
    tls = compiled(cert.section(), tmp_path).tls[0]
    assert tls is not None
    assert not tls.changed()
    other = issue(ca, tmp_path / "other", "other")
    cert.certificate.write_bytes(other.certificate.read_bytes())
    assert tls.changed()
    with pytest.raises(TlsConfigError, match="the key does not match the certificate"):
        tls.reload()
    assert not tls.changed(), "the same files are not tried again until they change"
    cert.key.write_bytes(other.key.read_bytes())
    assert tls.changed()
    tls.reload()


def test_alpn_offers_h2_unless_http2_is_off(cert: CertFiles, tmp_path: Path) -> None:
    (tls,) = compiled(cert.section(), tmp_path).tls
    assert tls is not None
    assert tls.settings.alpn == ("h2", "http/1.1")
    off = wiring.parse(
        document(cert.section(), {"enabled": False}), source=SOURCE, base_dir=tmp_path
    )
    (tls,) = off.tls
    assert tls is not None
    assert tls.settings.alpn == ("http/1.1",)


def test_cleartext_http2_is_for_listeners_without_tls(cert: CertFiles, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        wiring.parse(
            document(cert.section(), {"cleartext": True}), source=SOURCE, base_dir=tmp_path
        )
    assert str(caught.value) == (
        f"{SOURCE}: listeners[0].http2.cleartext: applies to listeners without tls "
        "(over TLS, HTTP/2 is chosen by ALPN)"
    )


def test_a_route_using_the_client_certificate_needs_a_listener_that_asks_for_one(
    ca: trustme.CA, cert: CertFiles, tmp_path: Path
) -> None:
    def config(tls: dict[str, Any]) -> str:
        return yaml.safe_dump(
            {
                "kafka": {"bootstrap_servers": "localhost:9092"},
                "listeners": [{"port": 8443, "tls": tls}],
                "routes": [
                    {"path": "/mine", "topic": "t", "filters": [{"key": "${tls.client.cn}"}]}
                ],
            }
        )

    with pytest.raises(ConfigError) as caught:
        wiring.parse(config(cert.section()), source=SOURCE, base_dir=tmp_path)
    assert str(caught.value) == (
        f"{SOURCE}: routes[0]: uses the client certificate (${{tls.client.<field>}}), but no "
        "listener asks for one (listeners[].tls.client_auth)"
    )
    ca_file = write_ca(ca, tmp_path / "clients.pem")
    asks = cert.section(client_auth="optional", client_ca=str(ca_file))
    (route,) = wiring.parse(config(asks), source=SOURCE, base_dir=tmp_path).routes
    assert route.client_certificate
