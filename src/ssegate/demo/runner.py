"""Start everything the demo needs, serve until Ctrl-C, then stop everything it started."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from ssegate.demo.avro import avro_encoder
from ssegate.demo.issuer import AUDIENCE, USERS, DemoIssuer
from ssegate.demo.localca import ensure_local_tls
from ssegate.demo.producer import PriceFeed
from ssegate.devkafka import DevKafka, default_home
from ssegate.devkafka.topics import create_topic
from ssegate.devregistry import DevRegistry
from ssegate.errors import ConfigError
from ssegate.server import run
from ssegate.wiring import CompiledConfig, load, parse

TOPIC = "events"
# A guard whose issuer is a plain-HTTP loopback URL gets the demo's own token issuer on
# that port (`ssegate.demo.issuer`); a real identity provider is never on such a URL.
DEMO_ISSUER_PREFIX = "http://127.0.0.1:"
# Likewise a schema-registry catalog at http://127.0.0.1:<port>/apis/ccompat/v7 gets the
# demo's own registry on that port (`ssegate.devregistry`), and the quotes are Avro.
DEMO_REGISTRY_PATH = "/apis/ccompat/v7"


def _say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def run_demo(config_path: Path, *, port: int | None = None, tls: bool = False) -> int:
    if not config_path.is_file():
        _say(f"{config_path} not found; run the demo from the repository root (make demo)")
        return 2
    state = default_home().parent
    broker = DevKafka(state / "demo-kafka", progress=lambda m: _say(f"kafka: {m}"))
    info = broker.start(port=port)
    feed: PriceFeed | None = None
    issuers: list[DemoIssuer] = []
    registry: DevRegistry | None = None
    try:
        create_topic(info.bootstrap, TOPIC, partitions=3, exist_ok=True)
        os.environ["KAFKA_BOOTSTRAP"] = info.bootstrap
        ca: Path | None = None
        if tls:
            compiled, ca = _over_https(config_path, state / "demo-tls")
        else:
            compiled = load(config_path)
        issuers = _start_issuers(compiled)
        registry = _start_registry(compiled, state / "demo-registry")
        feed = PriceFeed(info.bootstrap, TOPIC)
        if registry is not None:
            schema_id, feed.encode = avro_encoder(registry, TOPIC)
            _say(f"quotes are Avro, schema id {schema_id} (subject {TOPIC}-value)")
        feed.start()
        _say(f"producing stock prices to topic {TOPIC!r} at {info.bootstrap}")

        def listening(addresses: list[tuple[str, int]]) -> None:
            host, http_port = addresses[0]
            # Over HTTPS, the name the certificate is for, and the CA a client must trust.
            base = f"http://{host}:{http_port}" if ca is None else f"https://localhost:{http_port}"
            browser, curl = ("", "") if ca is None else (f" that trusts {ca}", f"--cacert {ca} ")
            _say(f"open {base}/ in a browser{browser}, or try:")
            if issuers:
                _how_to_get_a_token(issuers[0], f"{curl}{base}")
            else:
                print(f"  curl -N {curl}{base}/events/AAPL/nasdaq", flush=True)
            _say("Ctrl-C stops everything")

        run(compiled, on_listening=listening)
    finally:
        if feed is not None:
            feed.stop()
        for issuer in issuers:
            issuer.stop()
        if registry is not None:
            registry.stop()
        broker.stop()
        _say("stopped")
    return 0


def _over_https(config_path: Path, directory: Path) -> tuple[CompiledConfig, Path]:
    """The demo's configuration with every listener on HTTPS, with a certificate from a
    local CA made for the demo (`ssegate.demo.localca`); and that CA's file."""
    local = ensure_local_tls(directory)
    document = yaml.safe_load(config_path.read_text())
    for listener in document.setdefault("listeners", [{}]):
        listener["tls"] = {"certificate": str(local.certificate), "key": str(local.key)}
    text = yaml.safe_dump(document, sort_keys=False)
    compiled = parse(text, source=f"{config_path} (over HTTPS)", base_dir=config_path.parent)
    _say(f"HTTPS with a certificate from the demo's own CA: {local.ca}")
    return compiled, local.ca


def _start_issuers(compiled: CompiledConfig) -> list[DemoIssuer]:
    """The demo's token issuer for each guard that names one (DEMO_ISSUER_PREFIX)."""
    issuers = []
    for name, guard in compiled.config.guards.items():
        if not guard.issuer.startswith(DEMO_ISSUER_PREFIX):
            continue
        port = guard.issuer.removeprefix(DEMO_ISSUER_PREFIX).rstrip("/")
        if not port.isdigit() or guard.audience != AUDIENCE:
            raise ConfigError(
                f"guards.{name}: the demo serves tokens for issuer {DEMO_ISSUER_PREFIX}<port>"
                f" and audience {AUDIENCE}; this guard names {guard.issuer} and {guard.audience}"
            )
        issuer = DemoIssuer(port=int(port))
        issuer.start()
        issuers.append(issuer)
        users = ", ".join(f"{n} ({u.scope or 'no roles'}, desk {u.desk})" for n, u in USERS.items())
        _say(f"token issuer {issuer.issuer} for guard {name!r}; users: {users}")
    return issuers


def _start_registry(compiled: CompiledConfig, data: Path) -> DevRegistry | None:
    """The demo's registry, when a catalog names one (DEMO_REGISTRY_PATH); at most one."""
    for name, catalog in compiled.config.catalogs.items():
        url = catalog.url or ""
        if catalog.type != "schema-registry" or not url.startswith(DEMO_ISSUER_PREFIX):
            continue
        port = url.removeprefix(DEMO_ISSUER_PREFIX).removesuffix(DEMO_REGISTRY_PATH)
        if not port.isdigit():
            raise ConfigError(
                f"catalogs.{name}: the demo serves a registry at {DEMO_ISSUER_PREFIX}<port>"
                f"{DEMO_REGISTRY_PATH}; this catalog names {url}"
            )
        _say(f"starting a schema registry (Apicurio) for catalog {name!r} on port {port}")
        registry = DevRegistry(data, port=int(port))
        registry.start()
        _say(f"schema registry ready at {url}")
        return registry
    return None


def _how_to_get_a_token(issuer: DemoIssuer, base: str) -> None:
    """What a reader of the console types: a token from the issuer, then a stream with it."""
    print(
        f"  TOKEN=$(curl -s -d grant_type=client_credentials -u alice:alice {issuer.issuer}/token"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        flush=True,
    )
    print(f'  curl -N -H "Authorization: Bearer $TOKEN" {base}/quotes/AAPL', flush=True)
