"""Stock-quote records with per-key sequence numbers, and the checks that go with them."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence

from ssegate.sse.wire import Event
from tests.support.kafka import Record


def quote(symbol: str, seq: int, exchange: str = "nasdaq", partition: int | None = None) -> Record:
    value = json.dumps({"symbol": symbol, "seq": seq}, separators=(",", ":")).encode()
    return Record(
        value, key=symbol.encode(), headers=[("exchange", exchange.encode())], partition=partition
    )


def quotes(symbols: Sequence[str], first: int, last: int, exchange: str = "nasdaq") -> list[Record]:
    """seq first..last for every symbol, interleaved."""
    return [quote(s, n, exchange) for n in range(first, last + 1) for s in symbols]


def sequences(events: Iterable[Event]) -> dict[str, list[int]]:
    """symbol -> the seq numbers received, in arrival order."""
    out: dict[str, list[int]] = defaultdict(list)
    for event in events:
        body = json.loads(event.data)
        out[body["symbol"]].append(body["seq"])
    return dict(out)


def assert_exactly(events: Iterable[Event], expected: dict[str, range]) -> None:
    """Every expected seq once, in order per symbol, nothing else."""
    got = sequences(events)
    assert got == {symbol: list(numbers) for symbol, numbers in expected.items()}


class QuoteFeed:
    """Produces quotes for `symbols` continuously, seq 1, 2, ... per symbol, until stopped."""

    def __init__(self, bootstrap: str, topic: str, symbols: Sequence[str], per_second: float):
        import threading

        self._bootstrap = bootstrap
        self._topic = topic
        self._symbols = list(symbols)
        self._interval = 1 / per_second
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.produced = 0  # rounds completed: every symbol has seq 1..produced

    def __enter__(self) -> QuoteFeed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.produced

    def _run(self) -> None:
        import logging

        from confluent_kafka import Producer

        producer = Producer(
            {
                "bootstrap.servers": self._bootstrap,
                "linger.ms": 2,
                "logger": logging.getLogger("tests.producer"),
            }
        )
        seq = 0
        while not self._stop.is_set():
            seq += 1
            for record in (quote(s, seq) for s in self._symbols):
                producer.produce(
                    self._topic, record.value, record.key, headers=list(record.headers)
                )
            producer.poll(0)
            producer.flush(10)
            self.produced = seq
            self._stop.wait(self._interval)
        producer.flush(10)
