"""Start everything the demo needs, serve until Ctrl-C, then stop everything it started."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from ssegate.demo.localca import ensure_local_tls
from ssegate.demo.producer import PriceFeed
from ssegate.devkafka import DevKafka, default_home
from ssegate.devkafka.topics import create_topic
from ssegate.server import run
from ssegate.wiring import CompiledConfig, load, parse

TOPIC = "events"


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
    try:
        create_topic(info.bootstrap, TOPIC, partitions=3, exist_ok=True)
        os.environ["KAFKA_BOOTSTRAP"] = info.bootstrap
        ca: Path | None = None
        if tls:
            compiled, ca = _over_https(config_path, state / "demo-tls")
        else:
            compiled = load(config_path)
        feed = PriceFeed(info.bootstrap, TOPIC)
        feed.start()
        _say(f"producing stock prices to topic {TOPIC!r} at {info.bootstrap}")

        def listening(addresses: list[tuple[str, int]]) -> None:
            host, http_port = addresses[0]
            # Over HTTPS, the name the certificate is for, and the CA a client must trust.
            base = f"http://{host}:{http_port}" if ca is None else f"https://localhost:{http_port}"
            browser, curl = ("", "") if ca is None else (f" that trusts {ca}", f"--cacert {ca} ")
            _say(f"open {base}/ in a browser{browser}, or try:")
            print(f"  curl -N {curl}{base}/events/AAPL/nasdaq", flush=True)
            _say("Ctrl-C stops everything")

        run(compiled, on_listening=listening)
    finally:
        if feed is not None:
            feed.stop()
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
