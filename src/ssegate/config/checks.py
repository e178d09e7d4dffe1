"""What types cannot say, checked on the `Config` alone: ranges, duplicates, origins, files.

`check_config` raises a `ConfigProblem` for the first problem, checking sections in the
order `kafka`, `listeners`, `sse`, `cors`, `limits`, `server`, `static`. Checks that need
compiled routes (built-in endpoints, routes that shadow each other, a static URL a route
also matches) belong to the wiring (`ssegate.wiring`), which runs after these.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import NoReturn

from ssegate.config.guard_checks import check_guards
from ssegate.config.problems import ConfigPath, ConfigProblem
from ssegate.config.schema import Config, Http2Config, TlsConfig
from ssegate.config.schema_checks import check_schemas

__all__ = ["check_config"]

_ORIGIN = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::(\d{1,5}))?"
)


def check_config(config: Config, base_dir: Path) -> None:
    """Check `config`, whose static files resolve against `base_dir`; ConfigProblem."""
    _check_kafka(config)
    _check_listeners(config, base_dir)
    _check_sse(config)
    _check_cors(config)
    _check_limits(config)
    _check_server(config)
    _check_static(config, base_dir)
    check_guards(config)
    check_schemas(config, base_dir)


def _fail(path: ConfigPath, message: str) -> NoReturn:
    raise ConfigProblem(path, message)


def _at_least(path: ConfigPath, value: int, minimum: int) -> None:
    if value < minimum:
        _fail(path, f"must be at least {minimum}, got {value}")


def _positive_duration(path: ConfigPath, value: float) -> None:
    if not value > 0:
        _fail(path, f"must be greater than 0, got {_seconds(value)}")


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _check_kafka(config: Config) -> None:
    kafka = config.kafka
    if not kafka.bootstrap_servers.strip():
        _fail(("kafka", "bootstrap_servers"), "must not be empty")
    _at_least(("kafka", "ring", "max_records"), kafka.ring.max_records, 1)
    _at_least(("kafka", "ring", "max_bytes"), kafka.ring.max_bytes, 1)
    _positive_duration(("kafka", "metadata_refresh"), kafka.metadata_refresh)
    _at_least(("kafka", "max_catchup_readers"), kafka.max_catchup_readers, 1)
    if kafka.compact_id_margin < 0:
        _fail(
            ("kafka", "compact_id_margin"),
            f"must be at least 0, got {_seconds(kafka.compact_id_margin)}",
        )


def _check_listeners(config: Config, base_dir: Path) -> None:
    if not config.listeners:
        _fail(("listeners",), "at least one listener is required")
    seen: dict[tuple[str, int], int] = {}
    for index, listener in enumerate(config.listeners):
        if not listener.host.strip():
            _fail(("listeners", index, "host"), "must not be empty")
        if listener.tls is not None:
            _check_tls(("listeners", index, "tls"), listener.tls, base_dir)
        if not 0 <= listener.port <= 65535:
            _fail(("listeners", index, "port"), f"{listener.port} is out of range (0 to 65535)")
        _at_least(("listeners", index, "backlog"), listener.backlog, 1)
        _check_http2(("listeners", index, "http2"), listener.http2, tls=listener.tls is not None)
        if listener.port == 0:  # ephemeral: every one gets its own port
            continue
        address = (listener.host.strip().lower(), listener.port)
        if address in seen:
            host = f"[{listener.host}]" if ":" in listener.host else listener.host
            _fail(
                ("listeners", index),
                f"duplicates listeners[{seen[address]}] ({host}:{listener.port})",
            )
        seen[address] = index


# RFC 9113 §6.5.2: a stream count is 31 bits.
MAX_STREAMS_SETTING = 2**31 - 1


def _check_http2(path: ConfigPath, http2: Http2Config, *, tls: bool) -> None:
    _at_least((*path, "max_concurrent_streams"), http2.max_concurrent_streams, 1)
    if http2.max_concurrent_streams > MAX_STREAMS_SETTING:
        _fail(
            (*path, "max_concurrent_streams"),
            f"must be at most {MAX_STREAMS_SETTING}, got {http2.max_concurrent_streams}",
        )
    if http2.cleartext and tls:
        _fail(
            (*path, "cleartext"),
            "applies to listeners without tls (over TLS, HTTP/2 is chosen by ALPN)",
        )
    if http2.cleartext and not http2.enabled:
        _fail((*path, "cleartext"), "needs http2.enabled")


TLS_VERSIONS = ("1.2", "1.3")


def tls_version(value: str | float) -> str:
    """`min_version` as written ("1.2", 1.2 or 1.3), as "1.2" or "1.3"; ValueError."""
    text = f"{value:g}" if isinstance(value, float) else value.strip()
    if text not in TLS_VERSIONS:
        raise ValueError(f'must be "1.2" or "1.3", got {value!r}')
    return text


def _sni_name(name: str) -> bool:
    """A host name, or `*.` and a host name."""
    label, dot, rest = name.partition(".")
    if label == "*":
        return bool(dot) and _sni_name(rest) and "*" not in rest
    return bool(name) and "*" not in name and not any(c.isspace() for c in name)


def _check_tls(where: ConfigPath, tls: TlsConfig, base_dir: Path) -> None:
    _check_file((*where, "certificate"), base_dir / tls.certificate)
    _check_file((*where, "key"), base_dir / tls.key)
    try:
        tls_version(tls.min_version)
    except ValueError as exc:
        _fail((*where, "min_version"), str(exc))
    if tls.reload_check < 0:
        _fail((*where, "reload_check"), f"must be at least 0, got {_seconds(tls.reload_check)}")
    names: set[str] = set()
    for name, other in tls.sni.items():
        at = (*where, "sni", name)
        if not _sni_name(name):
            _fail(at, f"{name!r} is not a host name (a wildcard is a first label: *.example.com)")
        if name.lower() in names:
            _fail(at, f"{name!r} is named twice")
        names.add(name.lower())
        _check_file((*at, "certificate"), base_dir / other.certificate)
        _check_file((*at, "key"), base_dir / other.key)
    if tls.client_auth != "none" and tls.client_ca is None:
        _fail((*where, "client_ca"), f"client_auth: {tls.client_auth} needs the CA certificates")
    if tls.client_ca is not None:
        if tls.client_auth == "none":
            _fail(
                (*where, "client_auth"),
                "is none, so client_ca would not be used: say optional or required",
            )
        _check_file((*where, "client_ca"), base_dir / tls.client_ca)


def _check_sse(config: Config) -> None:
    _positive_duration(("sse", "heartbeat"), config.sse.heartbeat)
    if not 0 <= config.sse.max_delay <= 1:
        _fail(
            ("sse", "max_delay"),
            f"must be between 0 and 1s, got {_seconds(config.sse.max_delay)}",
        )
    if config.sse.retry is not None:
        _at_least(("sse", "retry"), config.sse.retry, 0)


def _check_cors(config: Config) -> None:
    for index, origin in enumerate(config.cors.allow.origins or ()):
        found = _ORIGIN.fullmatch(origin)
        if origin != "*" and (found is None or int(found.group(1) or 0) > 65535):
            _fail(
                ("cors", "allow", "origins", index),
                f"{origin!r} is not an origin (write scheme://host[:port], or *)",
            )
    if config.cors.max_age is not None and config.cors.max_age < 0:
        _fail(("cors", "max_age"), f"must be at least 0, got {_seconds(config.cors.max_age)}")


def _check_limits(config: Config) -> None:
    limits = config.limits
    _at_least(("limits", "max_streams"), limits.max_streams, 1)
    _at_least(("limits", "max_streams_per_ip"), limits.max_streams_per_ip, 0)
    _at_least(("limits", "max_topics"), limits.max_topics, 1)
    _at_least(("limits", "reconnect_budget"), limits.reconnect_budget, 0)
    if limits.max_loop_lag < 0:
        _fail(("limits", "max_loop_lag"), f"must be 0 (off) or more, got {limits.max_loop_lag:g}s")
    _at_least(("limits", "max_header_bytes"), limits.max_header_bytes, 1)
    _positive_duration(("limits", "request_timeout"), limits.request_timeout)
    _positive_duration(("limits", "keepalive_timeout"), limits.keepalive_timeout)
    _positive_duration(("limits", "write_timeout"), limits.write_timeout)
    _at_least(("limits", "write_buffer_high_water"), limits.write_buffer_high_water, 1)


def _check_server(config: Config) -> None:
    _at_least(("server", "workers"), config.server.workers, 1)
    _positive_duration(("server", "shutdown_timeout"), config.server.shutdown_timeout)


def _check_static(config: Config, base_dir: Path) -> None:
    for url, file in config.static.items():
        where: ConfigPath = ("static", url)
        if not url.startswith("/"):
            _fail(where, f"the URL path {url!r} must start with '/'")
        if "?" in url or "#" in url:
            _fail(where, f"the URL path {url!r} cannot hold '?' or '#'")
        _check_file(where, base_dir / file)


def _check_file(where: ConfigPath, target: Path) -> None:
    try:
        mode = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the name
        _fail(where, f"no such file: {target}")
    except OSError as exc:
        _fail(where, f"cannot use {target}: {exc.strerror or exc}")
    if not stat.S_ISREG(mode):
        _fail(where, f"not a regular file: {target}")
    if not os.access(target, os.R_OK):
        _fail(where, f"cannot read {target}: permission denied")
