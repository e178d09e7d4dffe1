"""Read the prefix a serializer puts before a record's payload: which schema, and (Protobuf)
which message (sans-I/O).

Rules:

1. Four framings (`Framing`), chosen per topic by configuration, never guessed per record:
   - `confluent`: magic byte 0x00, then the schema id as a 4-byte big-endian unsigned
     integer (Confluent Schema Registry, Karapace, Apicurio's ccompat API);
   - `apicurio`: magic byte 0x00, then an 8-byte big-endian global or content id
     (Apicurio's own serdes, its default `id-encoding`);
   - `apicurio-4`: magic byte 0x00, then a 4-byte id: Apicurio's legacy id encoding. It is
     `confluent` byte for byte; the name keeps configurations readable. Zilla's bug #1202
     (reading 8 bytes where the producer wrote 4) is why both widths exist;
   - `none`: no prefix; the schema is named by configuration (subject and version), and the
     payload starts at byte 0.
2. `read_schema_id` returns the id (None for `none`) and the offset where the payload
   starts. An empty value, or one shorter than its prefix, is `InvalidRecord("truncated")`;
   a first byte other than 0x00 is `InvalidRecord("magic-byte")`.
3. Protobuf adds message indexes after the id (Confluent's framing): a zig-zag varint count,
   then that many zig-zag varints, each an index into the file's messages, then into that
   message's nested messages. The count 0 (a single 0x00 byte, the common case) means
   `(0,)`, the file's first message. `read_message_indexes` returns the indexes and the
   offset after them. A varint longer than 5 bytes (Java writes 32-bit varints) or cut off
   by the end of the value is `InvalidRecord("truncated")`; a negative count or index, or a
   count above `MAX_MESSAGE_INDEXES`, is `InvalidRecord("message-index")`.
4. Zero-copy: both functions read the caller's `bytes` at offsets and return offsets; the
   payload is never sliced here.

Sans-I/O: no logging, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Literal

from ssegate.schemas.schema import InvalidRecord

__all__ = [
    "FRAMINGS",
    "MAX_MESSAGE_INDEXES",
    "Framing",
    "SchemaIdReader",
    "read_message_indexes",
    "read_schema_id",
    "schema_id_reader",
]

Framing = Literal["confluent", "apicurio", "apicurio-4", "none"]
FRAMINGS: tuple[Framing, ...] = ("confluent", "apicurio", "apicurio-4", "none")

# Protobuf parsers stop at 100 levels of nesting, so no message path is longer; the bound
# also caps the work a hostile count can ask for.
MAX_MESSAGE_INDEXES = 100

SchemaIdReader = Callable[[bytes], tuple[int | None, int]]

_ID4 = struct.Struct(">I").unpack_from
_ID8 = struct.Struct(">Q").unpack_from


def _short(value: bytes, width: int) -> InvalidRecord:
    if value and value[0] != 0:
        return _bad_magic(value)
    return InvalidRecord(
        "truncated",
        f"the value has {len(value)} bytes, fewer than the {width}-byte schema id prefix",
    )


def _bad_magic(value: bytes) -> InvalidRecord:
    return InvalidRecord(
        "magic-byte",
        f"the value starts with byte 0x{value[0]:02x}, not the magic byte 0x00 of a "
        "schema-registry framing",
    )


def _confluent(value: bytes) -> tuple[int | None, int]:
    if len(value) < 5:
        raise _short(value, 5)
    if value[0]:
        raise _bad_magic(value)
    return _ID4(value, 1)[0], 5


def _apicurio(value: bytes) -> tuple[int | None, int]:
    if len(value) < 9:
        raise _short(value, 9)
    if value[0]:
        raise _bad_magic(value)
    return _ID8(value, 1)[0], 9


def _none(value: bytes) -> tuple[int | None, int]:
    return None, 0


_READERS: dict[Framing, SchemaIdReader] = {
    "confluent": _confluent,
    "apicurio": _apicurio,
    "apicurio-4": _confluent,
    "none": _none,
}


def schema_id_reader(framing: Framing) -> SchemaIdReader:
    """The function that reads `framing`'s prefix (rule 2): pick it once per topic."""
    try:
        return _READERS[framing]
    except KeyError:
        raise ValueError(f"unknown framing {framing!r}; one of {FRAMINGS}") from None


def read_schema_id(value: bytes, framing: Framing) -> tuple[int | None, int]:
    """The schema id in `value`'s prefix (None for `none`) and where the payload starts."""
    return schema_id_reader(framing)(value)


def _varint(value: bytes, pos: int) -> tuple[int, int]:
    """One zig-zag varint of at most 5 bytes at `value[pos]`: (signed value, next offset)."""
    result = 0
    shift = 0
    end = len(value)
    while shift < 35:
        if pos >= end:
            raise InvalidRecord("truncated", "the value ends inside the message indexes")
        byte = value[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise InvalidRecord("truncated", "a message index varint is longer than 5 bytes")


def read_message_indexes(value: bytes, start: int) -> tuple[tuple[int, ...], int]:
    """The Protobuf message indexes at `value[start]` (rule 3) and the offset after them."""
    if start < len(value) and value[start] == 0:  # the common case: the first message
        return (0,), start + 1
    count, pos = _varint(value, start)
    if count < 0 or count > MAX_MESSAGE_INDEXES:
        raise InvalidRecord(
            "message-index",
            f"the message index count is {count}, not between 0 and {MAX_MESSAGE_INDEXES}",
        )
    if count == 0:  # a zero count written in more than one byte
        return (0,), pos
    indexes: list[int] = []
    for _ in range(count):
        index, pos = _varint(value, pos)
        if index < 0:
            raise InvalidRecord("message-index", f"a message index is negative ({index})")
        indexes.append(index)
    return tuple(indexes), pos
