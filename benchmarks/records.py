"""The records the benchmarks produce, and how a client finds their fields again.

Every record value is one JSON object of exactly `RECORD_BYTES` bytes whose first fields are
fixed, so a client can pull them out of a whole read with one regular expression instead of
decoding JSON per event:

    {"k":"<key>","s":<per-key sequence>,"t":<producer wall clock, ns>,"p":"xxx..."}

`s` counts from 0 per key: a client that sees every key's sequence advance by exactly one
knows it lost nothing and got nothing twice. `t` is `time.time_ns()` when the producer
handed the record over (Kafka `produce()`, or the nchan POST being written); producer and
clients share the machine's clock, so `receive time - t` is the produce-to-receive latency.
"""

from __future__ import annotations

import re

RECORD_BYTES = 256

# `data:` or `data: ` (nchan and sse-starlette write the space); after a line break, which
# an `id:` line (or a chunk-size line) always puts before it.
DATA_PATTERN = re.compile(rb'\ndata: ?\{"k":"([^"]*)","s":(\d+),"t":(\d+)')


def make_record(key: str, seq: int, now_ns: int) -> bytes:
    """One record value of exactly `RECORD_BYTES` bytes."""
    head = f'{{"k":"{key}","s":{seq},"t":{now_ns},"p":"'
    pad = RECORD_BYTES - len(head) - 2
    if pad < 0:
        raise ValueError(f"key {key!r} is too long for a {RECORD_BYTES}-byte record")
    return (head + "x" * pad + '"}').encode()


def key_names(count: int, prefix: str = "k") -> list[str]:
    """`count` distinct keys: k0000, k0001, ..."""
    width = max(4, len(str(count - 1)))
    return [f"{prefix}{index:0{width}d}" for index in range(count)]
