"""A Kafka record as the gateway keeps it: plain values, read once from librdkafka."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka import Message

Headers = Sequence[tuple[str, bytes]]

# Bytes of bookkeeping per record beyond key, value and headers, for ring accounting:
# roughly what CPython spends on the object, its slots and the bytes objects' headers.
RECORD_OVERHEAD = 200


class KafkaRecord:
    """One record of one partition. `value is None` is a tombstone.

    `seq` orders records of one topic in the order the reader handed them over, across
    partitions. The `cached_*` slots let the fan-out encode a record once per batch however
    many subscription groups deliver it.
    """

    __slots__ = (
        "cached_data",
        "etag",
        "headers",
        "key",
        "offset",
        "partition",
        "seq",
        "size",
        "timestamp",
        "value",
    )

    def __init__(
        self,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        timestamp: int = 0,
    ) -> None:
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
        self.seq = 0
        self.etag: bytes | None = None
        size = RECORD_OVERHEAD + len(key or b"") + len(value or b"")
        if headers:
            for name, header_value in headers:
                size += len(name) + len(header_value or b"")
                if name == "etag":  # Zilla: the header named exactly `etag`, byte match
                    self.etag = header_value
        self.size = size
        self.cached_data: bytes | None = None

    def __repr__(self) -> str:
        return f"<KafkaRecord p{self.partition}@{self.offset} key={self.key!r} seq={self.seq}>"


def record_from_message(message: Message) -> KafkaRecord:
    """Copy what the gateway needs out of a librdkafka message."""
    raw_headers = message.headers()
    headers: list[tuple[str, bytes]] | None = None
    if raw_headers:
        pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
        headers = [(name, _as_bytes(value)) for name, value in pairs]
    timestamp = message.timestamp()[1]
    return KafkaRecord(
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        headers,
        timestamp,
    )


def _as_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value
