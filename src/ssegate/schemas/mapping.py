"""How a model turns a record into the JSON a stream sends: the options, the interface and
the JSON forms the models share.

Rules every model (`schemas.avro`, `schemas.protobuf`, `schemas.jsonschema`) follows:

1. A model compiles a `Schema` once into a `Decoder` (`compile_decoder`), raising
   `SchemaError` when the schema does not parse or compile. One decoder serves every record
   that names the schema, from any thread: decoders keep no per-record state.
2. `Decoder.to_json(value, start, indexes)` reads the record that begins at `value[start]`
   (after the framing, `schemas.framing`) and returns one JSON text as UTF-8 bytes: what a
   stream sends as `data:`. Models write compact JSON without line breaks; the SSE encoder
   splits `data:` on line breaks anyway, so JSON passed through unchanged may contain them.
3. Any failure is an `InvalidRecord` with a fixed `reason` (a metric label and log key) and a
   message that never quotes the record. No other exception leaves `to_json`, for any bytes.
   Reasons used by the models: `magic-byte`, `truncated`, `message-index` (framing), and
   `schema-mismatch`, `not-json`, `too-deep` (decoding).
4. `JsonMapping` holds the few choices where JSON has no single right answer for a schema
   type (docs/schemas.md, "JSON mapping"). Each model documents how it reads each option.
5. Avro and Protobuf write the same text for the same value: floats through `json_double`
   and `json_float32`, times through `json_datetime` and `json_clock`.

Sans-I/O: no logging, no clock.
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass
from typing import Literal, Protocol

from ssegate.schemas.schema import Schema, SchemaError, SchemaReference

__all__ = [
    "DEFAULT_MAPPING",
    "DIGITS3",
    "Decoder",
    "FieldNames",
    "Int64Mapping",
    "JsonMapping",
    "UnionMapping",
    "describe_schema",
    "flatten_references",
    "json_clock",
    "json_datetime",
    "json_double",
    "json_float32",
]

Int64Mapping = Literal["number", "string"]
UnionMapping = Literal["plain", "tagged"]
FieldNames = Literal["proto", "json"]

_INT64: tuple[Int64Mapping | None, ...] = (None, "number", "string")
_UNIONS: tuple[UnionMapping, ...] = ("plain", "tagged")
_FIELD_NAMES: tuple[FieldNames, ...] = ("proto", "json")


@dataclass(frozen=True, slots=True)
class JsonMapping:
    """Choices for turning schema types into JSON; the defaults suit most clients.

    - `int64`: 64-bit integers as JSON numbers or as strings. JavaScript's numbers lose
      precision above 2^53, so a browser needs strings to see large ids exactly. None means
      the kind's own convention: numbers for Avro (`long`), strings for Protobuf (proto3's
      canonical JSON). JSON Schema records pass through unchanged and ignore it.
    - `unions` (Avro): `plain` gives a union's value as it is (`"abc"`, `null`); `tagged`
      gives Avro's JSON-encoding form, the value under its branch's name (`{"string":
      "abc"}`, `{"com.example.Point": {...}}`), with `null` still plain.
    - `field_names` (Protobuf): `proto` keeps the names written in the .proto file
      (`user_id`); `json` uses their lowerCamelCase JSON names (`userId`).
    """

    int64: Int64Mapping | None = None
    unions: UnionMapping = "plain"
    field_names: FieldNames = "proto"

    def __post_init__(self) -> None:
        # The config layer validates user input; this catches a programming error early.
        if self.int64 not in _INT64:
            raise ValueError(f"int64 must be one of {_INT64}, not {self.int64!r}")
        if self.unions not in _UNIONS:
            raise ValueError(f"unions must be one of {_UNIONS}, not {self.unions!r}")
        if self.field_names not in _FIELD_NAMES:
            raise ValueError(f"field_names must be one of {_FIELD_NAMES}, not {self.field_names!r}")


DEFAULT_MAPPING = JsonMapping()


class Decoder(Protocol):
    """A compiled schema: turns one record value into its JSON text (rules 2 and 3)."""

    def to_json(self, value: bytes, start: int, indexes: tuple[int, ...] | None) -> bytes:
        """The JSON text of the record at `value[start:]`; `indexes` are the Protobuf message
        indexes read from the framing (None when the framing has none). Raises
        `InvalidRecord`."""
        ...


def describe_schema(schema: Schema) -> str:
    """How messages name a schema: by id, else subject and version, else as inline."""
    if schema.id is not None:
        return f"{schema.kind} schema {schema.id}"
    if schema.subject is not None:
        version = "latest" if schema.version is None else f"version {schema.version}"
        return f"{schema.kind} schema {schema.subject!r} ({version})"
    return f"inline {schema.kind} schema"


def flatten_references(schema: Schema) -> list[SchemaReference]:
    """Every schema `schema` references, directly or through another reference, once each,
    each after the ones it references (so a model can load them in this order). Two
    different schemas under one name are a `SchemaError`; a reference cycle is followed
    once."""
    found: dict[str, SchemaReference] = {}
    visiting: set[str] = set()

    def visit(references: tuple[SchemaReference, ...]) -> None:
        for reference in references:
            seen = found.get(reference.name)
            if seen is not None:
                if seen.schema.text != reference.schema.text:
                    raise SchemaError(
                        f"{describe_schema(schema)}: two different schemas are referenced "
                        f"as {reference.name!r}"
                    )
                continue
            if reference.name in visiting:
                continue
            visiting.add(reference.name)
            visit(reference.schema.references)
            found[reference.name] = reference

    visit(schema.references)
    return list(found.values())


_F32 = struct.Struct("<f").pack
_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _nonfinite(value: float) -> str:
    return _NONFINITE[repr(value)]


def json_double(value: float) -> float | str:
    """A 64-bit float for JSON: itself, or "NaN", "Infinity", "-Infinity" (JSON has no
    literal for them; these are Protobuf's canonical JSON strings)."""
    # `value - value` is 0.0 for every finite float and NaN otherwise: cheaper than a call.
    return value if value - value == 0.0 else _nonfinite(value)


def json_float32(value: float) -> float | str:
    """A 32-bit float for JSON: the first of its 6, 7, 8 or 9 significant digit roundings
    (trailing zeros dropped) that reads back as the same 32-bit float: 0.1, not
    0.10000000149011612. This is Protobuf's JSON printer's rule, so both kinds agree. Or
    the strings of `json_double`."""
    if value - value != 0.0:
        return _nonfinite(value)
    packed = _F32(value)
    for digits in (6, 7, 8):  # nine significant digits always read back (IEEE 754)
        candidate = float(f"{value:.{digits}g}")
        if _F32(candidate) == packed:
            return candidate
    return float(f"{value:.9g}")


# Times are formatted from tables rather than with datetime.isoformat or format specs:
# measured 3x cheaper, and a timestamp is the field most records have.
_HOURS = [f"{hour:02d}:" for hour in range(24)]
_MINUTES_SECONDS = [f"{second // 60:02d}:{second % 60:02d}" for second in range(3600)]
DIGITS3 = [f"{number:03d}" for number in range(1000)]
"""`DIGITS3[n]` is `n` as three digits, for fractions of a second."""
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_DAY_CACHE_SIZE = 1024
_days: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DDT": records share a few days


def json_clock(seconds: int) -> str:
    """`HH:MM:SS` of a second of the day (0 to 86,399)."""
    hours, seconds = divmod(seconds, 3600)
    return _HOURS[hours] + _MINUTES_SECONDS[seconds]


def json_datetime(seconds: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a time in seconds since the Unix epoch, in UTC. Raises
    ValueError outside years 1 to 9999, which RFC 3339 cannot write."""
    days, seconds = divmod(seconds, 86_400)
    day = _days.get(days)
    if day is None:
        day = datetime.date.fromordinal(_EPOCH_ORDINAL + days).isoformat() + "T"
        if len(_days) >= _DAY_CACHE_SIZE:
            _days.clear()
        _days[days] = day
    hours, seconds = divmod(seconds, 3600)  # json_clock, inlined: the hot path
    return day + _HOURS[hours] + _MINUTES_SECONDS[seconds]
