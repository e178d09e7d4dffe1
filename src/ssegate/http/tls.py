"""TLS for a listener: the server's `ssl.SSLContext`, built once from its configuration.

Rules:

1. TLS 1.2 at least (1.3 when `min_version: "1.3"`); OpenSSL prefers 1.3 when both sides
   have it. TLS 1.2 is limited to forward-secret AEAD suites (ECDHE with AES-GCM or
   ChaCha20-Poly1305); TLS 1.3's suites are all of that kind. No compression, no
   renegotiation; the server's cipher order wins.
2. ALPN offers `h2` then `http/1.1` (only `http/1.1` with `http2.enabled: false`).
3. `certificate` is a PEM file with the server's certificate first, then its chain;
   `key` its private key, encrypted or not (`key_passphrase`, typically
   `${env.NAME}`: it is never logged or printed).
4. `sni` maps host names to other certificates: the name a client asks for (SNI) picks
   one, exactly or by a wildcard name (`*.example.com` matches `a.example.com`, not
   `example.com` nor `a.b.example.com`); a client that names none of them, or none at
   all, gets the listener's own certificate.
5. `client_auth: optional | required` asks for a client certificate signed by a CA of
   `client_ca` (`required`: the handshake fails without one; `optional`: a client
   without one is served, one with a bad one is refused).
6. Certificates and keys are loaded again, into the live contexts, when their files change
   (`ServerTls.changed`, polled by the server) or on SIGHUP: new handshakes get the new
   certificate, established connections keep theirs. All or nothing: every file is loaded
   into a scratch context first, and a problem (a key written after its certificate, say)
   leaves the previous certificates in place until the files change again.

Every problem with a file (unreadable, not PEM, a key that does not match its
certificate, a wrong passphrase) is a `TlsConfigError` naming the file and the reason.
`ServerTls.validity` says which certificates are expired, not valid yet, or expire within
`EXPIRY_WARNING` (OpenSSL loads those without a word; clients refuse them).
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from cryptography import x509

from ssegate.errors import ConfigError

# TLS 1.2 suites: ECDHE key exchange (forward secrecy) and an AEAD cipher, in this order.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!SHA1"
# Where the fields of `routing.router.CLIENT_FIELDS` come from.
_SUBJECT_FIELDS = {"commonName": "cn", "organizationName": "o", "organizationalUnitName": "ou"}
_SAN_FIELDS = {"DNS": "dns", "email": "email", "URI": "uri"}

# HTTP/2 first: a browser that speaks it carries all its streams on one connection.
ALPN = ("h2", "http/1.1")
# A certificate that expires sooner than this is worth a warning: renewals run 30 days
# ahead (ACME clients), so one this close to its end means the renewal is failing.
EXPIRY_WARNING = datetime.timedelta(days=14)


class TlsConfigError(ConfigError):
    """A listener's TLS files cannot be used; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """A certificate (with its chain) and its private key, resolved to paths."""

    certificate: Path
    key: Path
    passphrase: str | None = None


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """One listener's TLS, with every path resolved (`ssegate.wiring` builds it)."""

    default: CertificateFiles
    sni: Mapping[str, CertificateFiles]
    client_auth: str = "none"  # none | optional | required
    client_ca: Path | None = None
    min_version: str = "1.2"  # 1.2 | 1.3
    reload_check: float = 5.0  # seconds between looks at the files; 0: only on SIGHUP
    alpn: tuple[str, ...] = ALPN  # the protocols offered, preferred first


class ServerTls:
    """A listener's TLS: the context it wraps connections in (rules 1-5), and its
    certificates reloaded in place (rule 6)."""

    def __init__(self, settings: TlsSettings) -> None:
        self.settings = settings
        self._loaded: list[tuple[ssl.SSLContext, CertificateFiles]] = []
        self.context = self._context(settings.default)
        by_name = {name.lower(): self._context(files) for name, files in settings.sni.items()}
        if by_name:
            self.context.sni_callback = _sni_callback(by_name)
        self._stamps = self._stamp()

    def _context(self, files: CertificateFiles) -> ssl.SSLContext:
        context = _new_context(self.settings, files)
        self._loaded.append((context, files))
        return context

    def changed(self) -> bool:
        """Whether a certificate or key file changed since the last call (or since the
        certificates were loaded): its modification time, size or inode (a renewal that
        replaces a symlink)."""
        stamps = self._stamp()
        if stamps == self._stamps:
            return False
        self._stamps = stamps
        return True

    def reload(self) -> None:
        """Load every certificate and key again (rule 6); TlsConfigError changes nothing.
        Either way `changed` compares with the files as they are now."""
        self._stamps = self._stamp()
        for _, files in self._loaded:
            load_certificate(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), files)
        for context, files in self._loaded:
            load_certificate(context, files)

    def validity(self, now: datetime.datetime) -> list[CertificateNotice]:
        """What is wrong or about to be with the served certificates' validity dates."""
        notices = []
        for _, files in self._loaded:
            notice = validity_notice(files.certificate, now)
            if notice is not None:
                notices.append(notice)
        return notices

    def _stamp(self) -> tuple[tuple[int, int, int] | None, ...]:
        stamps: list[tuple[int, int, int] | None] = []
        for _, files in self._loaded:
            for path in (files.certificate, files.key):
                try:
                    info = path.stat()
                except OSError:
                    stamps.append(None)
                else:
                    stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
        return tuple(stamps)


@dataclass(frozen=True, slots=True)
class CertificateNotice:
    """A served certificate outside its validity dates (`unusable`) or close to the end."""

    message: str
    unusable: bool


def validity_notice(path: Path, now: datetime.datetime) -> CertificateNotice | None:
    """The notice for the first (the server's) certificate of `path`, if any."""
    try:
        certificate = x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError, IndexError):
        return None  # loading the context already said what is wrong with the file
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now >= end:
        return CertificateNotice(f"{path}: the certificate expired on {_day(end)}", True)
    if now < start:
        return CertificateNotice(f"{path}: the certificate is valid only from {_day(start)}", True)
    if end - now < EXPIRY_WARNING:
        days = (end - now).days
        message = f"{path}: the certificate expires on {_day(end)}, in {days} days"
        return CertificateNotice(message, False)
    return None


def _day(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def match_server_name(server_name: str, names: Mapping[str, ssl.SSLContext]) -> str | None:
    """Which configured name `server_name` selects (rule 4): itself, or its wildcard."""
    name = server_name.lower().rstrip(".")
    if name in names:
        return name
    _, dot, parent = name.partition(".")
    if dot and parent and f"*.{parent}" in names:
        return f"*.{parent}"
    return None


SniCallback = Callable[[ssl.SSLObject, str | None, ssl.SSLContext], None]


def _sni_callback(names: Mapping[str, ssl.SSLContext]) -> SniCallback:
    def choose(connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if server_name is None:
            return  # no SNI: the listener's own certificate
        chosen = match_server_name(server_name, names)
        if chosen is not None:
            connection.context = names[chosen]

    return choose


def _new_context(settings: TlsSettings, files: CertificateFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if settings.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(list(settings.alpn))
    load_certificate(context, files)
    if settings.client_auth != "none":
        assert settings.client_ca is not None  # config.checks requires it
        try:
            context.load_verify_locations(cafile=str(settings.client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"{settings.client_ca}: cannot load client CA certificates: {_reason(exc)}"
            ) from None
        context.verify_mode = (
            ssl.CERT_REQUIRED if settings.client_auth == "required" else ssl.CERT_OPTIONAL
        )
    return context


def load_certificate(context: ssl.SSLContext, files: CertificateFiles) -> None:
    """Load a certificate chain and its key into `context`; TlsConfigError naming the
    file and the reason (never the passphrase)."""
    texts = []
    for path in (files.certificate, files.key):
        try:
            texts.append(path.read_bytes())
        except OSError as exc:
            raise TlsConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    certificate, key = texts
    # OpenSSL says only "PEM lib" for most of these: tell them apart by what the files hold.
    if b"-----BEGIN CERTIFICATE-----" not in certificate:
        raise TlsConfigError(f"{files.certificate}: not a PEM certificate")
    if b"PRIVATE KEY-----" not in key:
        raise TlsConfigError(f"{files.key}: not a PEM private key")
    try:
        context.load_cert_chain(str(files.certificate), str(files.key), password=_password(files))
    except ssl.SSLError as exc:
        problem = _key_problem(exc, encrypted=b"ENCRYPTED" in key)
        raise TlsConfigError(f"{files.certificate} with key {files.key}: {problem}") from None


def _password(files: CertificateFiles) -> str:
    # An empty password makes OpenSSL fail at once on an encrypted key rather than prompt
    # on the terminal for one.
    return files.passphrase if files.passphrase is not None else ""


def _key_problem(exc: ssl.SSLError, *, encrypted: bool) -> str:
    if "KEY_VALUES_MISMATCH" in (exc.reason or "").upper():
        return "the key does not match the certificate"
    if encrypted:
        return "cannot decrypt the key (wrong or missing key_passphrase)"
    return f"OpenSSL cannot load them: {_reason(exc)}"


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def client_certificate_values(ssl_object: ssl.SSLObject | None) -> dict[str, str] | None:
    """The verified client certificate's fields as `tls.client.<field>` (CLIENT_FIELDS):
    the subject's first CN, O and OU, the first DNS, email and URI names, the serial
    number (hex) and the SHA-256 fingerprint (hex) of the certificate. None without one.
    A field the certificate lacks is absent."""
    if ssl_object is None:
        return None
    info = ssl_object.getpeercert()
    if not info:
        return None  # none shown (client_auth: optional), or TLS without client_auth
    values: dict[str, str] = {}
    # The decoded form: subject = ((("commonName", "alice"),), ...), subjectAltName =
    # (("DNS", "a.example"), ...); typeshed types them loosely.
    subject = cast(tuple[tuple[tuple[str, str], ...], ...], info.get("subject", ()))
    for relative_name in subject:
        for attribute, value in relative_name:
            field = _SUBJECT_FIELDS.get(attribute)
            if field is not None:
                values.setdefault(f"tls.client.{field}", value)
    names = cast(tuple[tuple[str, str], ...], info.get("subjectAltName", ()))
    for kind, value in names:
        field = _SAN_FIELDS.get(kind)
        if field is not None:
            values.setdefault(f"tls.client.{field}", value)
    serial = info.get("serialNumber")
    if isinstance(serial, str):
        values["tls.client.serial"] = serial
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        values["tls.client.fingerprint"] = hashlib.sha256(der).hexdigest()
    return values
