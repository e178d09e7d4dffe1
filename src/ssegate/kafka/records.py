"""A Kafka message as the fan-out keeps it: a `Record` of plain values, read once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssegate.sources.record import Record

if TYPE_CHECKING:
    from confluent_kafka import Message


def record_from_message(message: Message) -> Record:
    """Copy what the gateway needs out of a librdkafka message."""
    raw_headers = message.headers()
    headers: list[tuple[str, bytes]] | None = None
    if raw_headers:
        pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
        headers = [(name, _as_bytes(value)) for name, value in pairs]
    timestamp = message.timestamp()[1]
    return Record(
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
