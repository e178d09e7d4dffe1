"""The converters Avro values go through on their way to JSON (`schemas.avro` rule 3): the
types msgspec would not encode as the mapping wants, built once per schema field."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ssegate.schemas.mapping import DIGITS3, json_clock, json_datetime

Converter = Callable[[Any], Any]


def decimal_text(value: Decimal) -> str:
    return format(value, "f")  # positional notation with the scale's digits, never 1E-8


def fixed_uuid_text(value: bytes) -> str:
    return str(uuid.UUID(bytes=value))


def time_converter(groups: int) -> Converter:
    unit = 1000**groups
    day = 86_400 * unit

    def convert(value: int) -> str:
        if not 0 <= value < day:
            raise ValueError("a time of day is not within a day")
        seconds, fraction = divmod(value, unit)
        return f"{json_clock(seconds)}.{fraction_text(fraction, groups)}"

    return convert


def timestamp_converter(groups: int, suffix: str) -> Converter:
    unit = 1000**groups

    def convert(value: int) -> str:
        seconds, fraction = divmod(value, unit)
        return f"{json_datetime(seconds)}.{fraction_text(fraction, groups)}{suffix}"

    return convert


def fraction_text(value: int, groups: int) -> str:
    """`value` as `groups` groups of three digits (millis: 1, micros: 2, nanos: 3)."""
    text = ""
    for _ in range(groups):
        value, digits = divmod(value, 1000)
        text = DIGITS3[digits] + text
    return text


def timestamp_ms_converter(suffix: str) -> Converter:
    # The common case, unrolled.
    def convert(value: int) -> str:
        seconds, fraction = divmod(value, 1000)
        return json_datetime(seconds) + "." + DIGITS3[fraction] + suffix

    return convert


# (underlying type, logicalType) -> converter for the raw integer fastavro reads once the
# logical type is removed (rule 4).
RAW_LOGICAL: dict[tuple[str, str], Converter] = {
    ("int", "time-millis"): time_converter(1),
    ("long", "time-micros"): time_converter(2),
    ("long", "timestamp-millis"): timestamp_ms_converter("Z"),
    ("long", "timestamp-micros"): timestamp_converter(2, "Z"),
    ("long", "timestamp-nanos"): timestamp_converter(3, "Z"),
    ("long", "local-timestamp-millis"): timestamp_ms_converter(""),
    ("long", "local-timestamp-micros"): timestamp_converter(2, ""),
    ("long", "local-timestamp-nanos"): timestamp_converter(3, ""),
}
# Logical types fastavro converts and msgspec encodes as rule 3 wants (date, uuid), or that
# need a converter on fastavro's value (decimal).
KEPT_LOGICAL = frozenset({("int", "date"), ("string", "uuid"), ("bytes", "decimal")})


def list_converter(item: Converter) -> Converter:
    def convert(value: list[Any]) -> list[Any]:
        return [item(element) for element in value]

    return convert


def map_converter(item: Converter) -> Converter:
    def convert(value: dict[str, Any]) -> dict[str, Any]:
        return {key: item(element) for key, element in value.items()}

    return convert


def record_converter(fields: list[tuple[str, Converter]]) -> Converter:
    # `fields` is filled after the converter exists, so a recursive record can use it.
    def convert(value: dict[str, Any]) -> dict[str, Any]:
        for name, field in fields:
            value[name] = field(value[name])
        return value

    return convert


def nullable(inner: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return None if value is None else inner(value)

    return convert


def tagged_single(tag: str, inner: Converter | None) -> Converter:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        return {tag: value if inner is None else inner(value)}

    return convert


def wrapped_union(branches: dict[str, tuple[str, Converter | None]], tagged: bool) -> Converter:
    # fastavro gives (wrapper name, {"v": value}) for a wrapped branch (rule 5).
    def convert(value: Any) -> Any:
        if value is None:
            return None
        name, wrapper = value
        tag, inner = branches[name]
        datum = wrapper["v"]
        if inner is not None:
            datum = inner(datum)
        return {tag: datum} if tagged else datum

    return convert
