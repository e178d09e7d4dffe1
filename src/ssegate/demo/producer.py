"""A small producer of live stock prices for the demo (and for trying things by hand)."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

logger = logging.getLogger("ssegate.demo")

# symbol -> (exchange, opening price)
SYMBOLS: dict[str, tuple[str, float]] = {
    "AAPL": ("nasdaq", 189.50),
    "MSFT": ("nasdaq", 411.20),
    "GOOG": ("nasdaq", 172.80),
    "AMZN": ("nasdaq", 181.10),
    "NVDA": ("nasdaq", 118.60),
    "IBM": ("nyse", 169.30),
    "KO": ("nyse", 62.40),
}


@dataclass
class PriceFeed:
    """Publishes one price per symbol per `interval` seconds to `topic`.

    Key: the symbol. Header `exchange`. Value: JSON with a per-symbol sequence number
    (`seq`, from 1), so a client can see that nothing was lost or repeated.
    """

    bootstrap: str
    topic: str = "events"
    interval: float = 1.0
    # How a quote becomes a record value: compact JSON, or (the Avro demo) Avro framed
    # with its registry id (`ssegate.demo.avro`).
    encode: Callable[[dict[str, Any]], bytes] = field(default=lambda quote: _json(quote))

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-producer", daemon=True)
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        prices = {symbol: price for symbol, (_, price) in SYMBOLS.items()}
        sequence = dict.fromkeys(SYMBOLS, 0)
        rng = random.Random(7114)  # noqa: S311 - a demo's prices, not a secret
        while not self._stop.is_set():
            for symbol, (exchange, _) in SYMBOLS.items():
                prices[symbol] = round(max(prices[symbol] * (1 + rng.gauss(0, 0.002)), 0.01), 2)
                sequence[symbol] += 1
                value = {
                    "symbol": symbol,
                    "price": prices[symbol],
                    "seq": sequence[symbol],
                    "ts": int(time.time() * 1000),
                }
                producer.produce(
                    self.topic,
                    self.encode(value),
                    symbol.encode(),
                    headers=[("exchange", exchange.encode())],
                )
                self.sent += 1
            producer.poll(0)
            self._stop.wait(self.interval)
        producer.flush(5)


def _json(quote: dict[str, Any]) -> bytes:
    return json.dumps(quote, separators=(",", ":")).encode()
