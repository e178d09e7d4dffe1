"""Start everything the demo needs, serve until Ctrl-C, then stop everything it started."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ssegate.demo.producer import PriceFeed
from ssegate.devkafka import DevKafka, default_home
from ssegate.devkafka.topics import create_topic
from ssegate.server import run
from ssegate.wiring import load

TOPIC = "events"


def _say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def run_demo(config_path: Path, *, port: int | None = None) -> int:
    if not config_path.is_file():
        _say(f"{config_path} not found; run the demo from the repository root (make demo)")
        return 2
    broker = DevKafka(default_home().parent / "demo-kafka", progress=lambda m: _say(f"kafka: {m}"))
    info = broker.start(port=port)
    feed: PriceFeed | None = None
    try:
        create_topic(info.bootstrap, TOPIC, partitions=3, exist_ok=True)
        os.environ["KAFKA_BOOTSTRAP"] = info.bootstrap
        compiled = load(config_path)
        feed = PriceFeed(info.bootstrap, TOPIC)
        feed.start()
        _say(f"producing stock prices to topic {TOPIC!r} at {info.bootstrap}")

        def listening(addresses: list[tuple[str, int]]) -> None:
            host, http_port = addresses[0]
            base = f"http://{host}:{http_port}"
            _say(f"open {base}/ in a browser, or try:")
            print(f"  curl -N {base}/events/AAPL/nasdaq", flush=True)
            _say("Ctrl-C stops everything")

        run(compiled, on_listening=listening)
    finally:
        if feed is not None:
            feed.stop()
        broker.stop()
        _say("stopped")
    return 0
