"""The records the benchmarks produce, and how a client finds their fields again.

Every record value is one JSON object of exactly `RECORD_BYTES` bytes whose first fields are
fixed, so a client can pull them out of a whole read with one regular expression instead of
decoding JSON per event:

    {"k":"<key>","s":<per-key sequence>,"t":<producer wall clock, ns>,"p":"xxx..."}

`s` counts from 0 per key: a client that sees every key's sequence advance by exactly one
knows it lost nothing and got nothing twice. `t` is `time.time_ns()` when the producer
handed the record over (Kafka `produce()`, or the nchan POST being written); producer and
clients share the machine's clock, so `receive time - t` is the produce-to-receive latency.

The `schemas` scenario also writes the same records as Avro (`make_avro_record`): the bare
binary encoding (no framing) of a record of `AVRO_SCHEMA`, fields k, s, t, p in that order
with the same values, so ssegate's Avro-to-JSON conversion writes exactly the JSON record
above and the clients read it unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

RECORD_BYTES = 256

# `data:` or `data: ` (nchan and sse-starlette write the space); after a line break, which
# an `id:` line (or a chunk-size line) always puts before it.
DATA_PATTERN = re.compile(rb'\ndata: ?\{"k":"([^"]*)","s":(\d+),"t":(\d+)')


AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "BenchRecord",
    "namespace": "ssegate.bench",
    "fields": [
        {"name": "k", "type": "string"},
        {"name": "s", "type": "long"},
        {"name": "t", "type": "long"},
        {"name": "p", "type": "string"},
    ],
}
AVRO_SCHEMA_TEXT = json.dumps(AVRO_SCHEMA, separators=(",", ":"))


def _head(key: str, seq: int, now_ns: int) -> tuple[str, int]:
    """The JSON record's text up to its padding, and the padding's length."""
    head = f'{{"k":"{key}","s":{seq},"t":{now_ns},"p":"'
    pad = RECORD_BYTES - len(head) - 2
    if pad < 0:
        raise ValueError(f"key {key!r} is too long for a {RECORD_BYTES}-byte record")
    return head, pad


def make_record(key: str, seq: int, now_ns: int) -> bytes:
    """One record value of exactly `RECORD_BYTES` bytes."""
    head, pad = _head(key, seq, now_ns)
    return (head + "x" * pad + '"}').encode()


def _avro_long(value: int) -> bytes:
    """Avro's `long`: zig-zag, then a little-endian base-128 varint."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def make_avro_record(key: str, seq: int, now_ns: int) -> bytes:
    """The record `make_record` writes, as the Avro binary of `AVRO_SCHEMA` (no framing)."""
    _, pad = _head(key, seq, now_ns)
    encoded_key = key.encode()
    return b"".join(
        (
            _avro_long(len(encoded_key)),
            encoded_key,
            _avro_long(seq),
            _avro_long(now_ns),
            _avro_long(pad),
            b"x" * pad,
        )
    )


def _read_avro_long(value: bytes, at: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        byte = value[at]
        at += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (n >> 1) ^ -(n & 1), at
        shift += 7


def avro_timestamp(value: bytes) -> int | None:
    """`t` of an Avro record of `AVRO_SCHEMA` (the Kafka probe's), None if it is not one."""
    try:
        length, at = _read_avro_long(value, 0)
        _, at = _read_avro_long(value, at + length)
        now_ns, _ = _read_avro_long(value, at)
    except IndexError:
        return None
    return now_ns


ENCODINGS: dict[str, Callable[[str, int, int], bytes]] = {
    "json": make_record,
    "avro": make_avro_record,
}


def record_encoder(encoding: str) -> Callable[[str, int, int], bytes]:
    """`make_record` or `make_avro_record`, by the name a target's `encoding` gives."""
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ValueError(f"unknown record encoding {encoding!r}") from None


def key_names(count: int, prefix: str = "k") -> list[str]:
    """`count` distinct keys: k0000, k0001, ..."""
    width = max(4, len(str(count - 1)))
    return [f"{prefix}{index:0{width}d}" for index in range(count)]
