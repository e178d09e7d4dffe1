"""ssegate itself: `ssegate run [--workers N] FILE`, with a YAML the harness writes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.certificates import server_certificate
from benchmarks.records import AVRO_SCHEMA_TEXT
from benchmarks.system import free_port, wait_http
from benchmarks.targets.base import Feed, Target

AVRO_CATALOG = "bench"  # the inline catalog of an Avro target's routes (docs/schemas.md)
MAX_STREAMS = 120_000  # above every scenario's load: the limit is not what is measured
LISTEN_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn


def ssegate_command() -> list[str]:
    script = Path(sys.executable).with_name("ssegate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ssegate"]


def workers_supported() -> str | None:
    """None when `ssegate run --workers N` exists, else why the scenario cannot run."""
    done = subprocess.run(
        [*ssegate_command(), "run", "--help"], capture_output=True, text=True, timeout=60
    )
    if "--workers" in done.stdout:
        return None
    return "`ssegate run --help` has no --workers option yet"


class Ssegate(Target):
    name = "ssegate"
    label = "ssegate"
    id_kind = "ssegate"
    terminator = b"\n\n"
    listen_backlog = LISTEN_BACKLOG

    def __init__(
        self,
        *args: Any,
        ring_records: int = 100_000,
        properties: dict[str, Any] | None = None,
        tls: bool = False,
        guard: bool = False,
        avro: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.tls = tls
        # Avro records (records.py), each route reading them with an inline Avro model:
        # subject `<topic>-value`, framing `none`, so the records are the bare Avro binary.
        if avro:
            self.encoding = "avro"
            self.name = "ssegate_avro"
            self.label = "ssegate, Avro topic, inline Avro model"
        # A JWT guard on every route; each stream sends its own RS256 token (its own `sub`).
        self.guard = BenchGuard() if guard else None
        if guard:
            self.name = "ssegate_guard"
            self.label = "ssegate, JWT guard (RS256, a token per stream)"
        if tls:
            self.name = "ssegate_tls"
            self.label = "ssegate, TLS"
        self.ring_records = ring_records
        self.properties = dict(properties or {})
        if self.properties:
            self.name = "ssegate_tuned"
            self.label = "ssegate, " + ", ".join(f"{k}={v}" for k, v in self.properties.items())
        self.runs = 0

    def config(self, feeds: list[Feed]) -> dict[str, Any]:
        routes: list[dict[str, Any]] = []
        for feed in feeds:
            if feed.filtered:
                routes.append(
                    {
                        "path": f"/k/{feed.topic}/{{key}}",
                        "topic": feed.topic,
                        "filters": [{"key": "${params.key}"}],
                        "start": feed.start,
                    }
                )
            else:
                routes.append(
                    {"path": f"/f/{feed.topic}", "topic": feed.topic, "start": feed.start}
                )
        if self.guard is not None:
            for route in routes:
                route["guarded"] = {"bench": ["read"]}
        if self.encoding == "avro":
            for route in routes:
                route["value"] = {"model": "avro", "catalog": AVRO_CATALOG}
        config: dict[str, Any] = {
            "kafka": {
                "bootstrap_servers": self.context.bootstrap,
                "ring": {"max_records": self.ring_records},
                "properties": self.properties,
            },
            "listeners": self.listeners(),
            "limits": {"max_streams": MAX_STREAMS, "write_buffer_high_water": "1MiB"},
            "routes": routes,
        }
        if self.guard is not None:
            config["guards"] = {"bench": self.guard.config()}
        if self.encoding == "avro":
            subjects = {
                f"{feed.topic}-value": {"type": "avro", "schema": AVRO_SCHEMA_TEXT}
                for feed in feeds
            }
            config["catalogs"] = {AVRO_CATALOG: {"type": "inline", "subjects": subjects}}
        return config

    def listeners(self) -> list[dict[str, Any]]:
        streams: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "backlog": LISTEN_BACKLOG,
        }
        if not self.tls:
            return [streams]
        certificate, key = server_certificate(self.context.run_dir / "tls")
        streams["tls"] = {"certificate": str(certificate), "key": str(key)}
        return [{"host": "127.0.0.1", "port": self.control_port}, streams]

    def start(self, feeds: list[Feed], workers: int = 1) -> None:
        self.port = free_port()
        self.control_port = free_port() if self.tls else self.port
        self.runs += 1
        directory = self.context.run_dir / f"ssegate-{self.runs}"
        directory.mkdir(parents=True, exist_ok=True)
        config_file = directory / "ssegate.yaml"
        config_file.write_text(yaml.safe_dump(self.config(feeds), sort_keys=False))
        self.log_path = directory / "gateway.log"
        command = [*ssegate_command(), "--log-level", "WARNING", "run", str(config_file)]
        if workers > 1:
            command[-1:-1] = ["--workers", str(workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{self.control_port}/ready", 60, alive=self.alive)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"ssegate did not get ready: {exc}\n{self.log_tail()}") from exc

    def stream_headers(self, index: int) -> str:
        if self.guard is None:
            return ""
        return f"Authorization: Bearer {self.guard.token(index)}\r\n"

    def path(self, feed: Feed, key: str | None = None) -> str:
        if feed.filtered:
            assert key is not None
            return f"/k/{feed.topic}/{key}"
        return f"/f/{feed.topic}"


class BenchGuard:
    """The guard of a guarded benchmark target: one RSA key, a token per stream index."""

    ISSUER = "https://issuer.bench"
    AUDIENCE = "https://ssegate.bench"

    def __init__(self) -> None:
        from joserfc.jwk import RSAKey

        self.key = RSAKey.generate_key(2048, parameters={"kid": "bench", "alg": "RS256"})
        self.tokens: dict[int, str] = {}
        self.expires = int(time.time()) + 6 * 3600  # outlives any run

    def config(self) -> dict[str, Any]:
        return {
            "type": "jwt",
            "issuer": self.ISSUER,
            "audience": self.AUDIENCE,
            "algorithms": ["RS256"],
            "keys": [self.key.as_dict(private=False)],
        }

    def token(self, index: int) -> str:
        token = self.tokens.get(index)
        if token is None:
            from joserfc import jwt

            claims = {
                "iss": self.ISSUER,
                "aud": self.AUDIENCE,
                "sub": f"user-{index}",
                "exp": self.expires,
                "scope": "read",
            }
            token = self.tokens[index] = jwt.encode(
                {"alg": "RS256", "kid": "bench"}, claims, self.key
            )
        return token
