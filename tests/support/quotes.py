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
