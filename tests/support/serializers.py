"""Producing schema-framed records for tests, as real producers write them.

- `compile_protos`: .proto texts (by import path) compiled by grpcio-tools' protoc in a child
  process into a DescriptorPool of their own; `message_class` gives a generated-like class
  of it (what confluent-kafka's ProtobufSerializer needs: a `Message` subclass with a
  DESCRIPTOR whose file and dependencies are the compiled ones).
- `confluent_frame`: 0x00, the 4-byte big-endian schema id, then (Protobuf) the message
  indexes as Confluent writes them (the single byte 0x00 for the first message, else a
  zig-zag varint count and zig-zag varint indexes), then the payload.
- `apicurio_frame`: 0x00 and the id as 8-byte (Apicurio's default) or 4-byte big-endian.
- `avro_binary`: a record in Avro's binary encoding without any prefix (fastavro).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fastavro

# protobuf ships no type information; its objects are typed as Any.
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)


def compile_protos(files: Mapping[str, str], main: str) -> Any:
    """A DescriptorPool holding `main` and everything it imports (`files` maps an import
    path such as `common/venue.proto` to its text; Google's well-known types come with
    protoc). Raises AssertionError with protoc's message when they do not compile."""
    with tempfile.TemporaryDirectory(prefix="proto-") as directory:
        root = Path(directory, "src")
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        output = Path(directory, "set.pb")
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "--proto_path=.",
            f"--descriptor_set_out={output}",
            "--include_imports",
            main,
        ]
        result = subprocess.run(command, cwd=root, capture_output=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
        file_set = descriptor_pb2.FileDescriptorSet.FromString(output.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in file_set.file:  # dependencies come first in protoc's output
        pool.Add(file)
    return pool


def message_class(pool: Any, full_name: str) -> Any:
    """The message class of `full_name` in `pool` (`example.Quote.Leg` for a nested one)."""
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


def _zigzag_varint(value: int) -> bytes:
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def message_indexes(indexes: Sequence[int]) -> bytes:
    """Confluent's message indexes: `[0]` as the single byte 0x00, others as a count and
    the indexes, each a zig-zag varint."""
    if list(indexes) == [0]:
        return b"\x00"
    return _zigzag_varint(len(indexes)) + b"".join(_zigzag_varint(i) for i in indexes)


def confluent_frame(schema_id: int, payload: bytes, indexes: Sequence[int] | None = None) -> bytes:
    """A Confluent-framed value: magic byte, 4-byte id, (Protobuf) message indexes, payload."""
    prefix = b"\x00" + schema_id.to_bytes(4, "big")
    if indexes is not None:
        prefix += message_indexes(indexes)
    return prefix + payload


def apicurio_frame(schema_id: int, payload: bytes, width: int = 8) -> bytes:
    """An Apicurio-framed value: magic byte, the global or content id in `width` bytes."""
    return b"\x00" + schema_id.to_bytes(width, "big") + payload


def avro_binary(schema: Mapping[str, Any] | str, record: Mapping[str, Any]) -> bytes:
    """`record` in Avro's binary encoding, no prefix (what a plain Avro producer writes)."""
    document: dict[str, Any] = json.loads(schema) if isinstance(schema, str) else dict(schema)
    parsed = fastavro.parse_schema(document)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, dict(record))
    return buffer.getvalue()
