"""The Avro demo's records: the stock quotes of `make demo`, written as Avro with Confluent's
framing (0x00, the schema's 4-byte registry id, the Avro binary), the schema registered in
the demo's own registry (`ssegate.devregistry`) under `<topic>-value`, as a Confluent
serializer would."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from typing import Any

import fastavro

from ssegate.devregistry import DevRegistry

QUOTE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Quote",
    "namespace": "ssegate.demo",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "seq", "type": "long"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def avro_encoder(
    registry: DevRegistry, topic: str
) -> tuple[int, Callable[[dict[str, Any]], bytes]]:
    """Register the quote schema; its id and a function that frames a quote as Avro."""
    schema_id = registry.register_ccompat(f"{topic}-value", json.dumps(QUOTE_SCHEMA))
    parsed = fastavro.parse_schema(QUOTE_SCHEMA)  # `ts` may be given as milliseconds
    prefix = b"\x00" + struct.pack(">I", schema_id)

    def encode(quote: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(prefix)
        fastavro.schemaless_writer(out, parsed, quote)
        return out.getvalue()

    return schema_id, encode
