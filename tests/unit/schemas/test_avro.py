"""Avro records to JSON: every type of the mapping, written by confluent-kafka's
AvroSerializer (fastavro underneath) through its mock registry, read back field by field;
the mapping options; malformed payloads; schemas that do not compile; and the invariant
that any bytes give JSON or `InvalidRecord`."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import struct
import uuid
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema as RegistrySchema
from confluent_kafka.schema_registry import SchemaReference as RegistryReference
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssegate.schemas import avro
from ssegate.schemas.avro import C_READER_MAX_BYTES, compile_decoder
from ssegate.schemas.framing import read_schema_id
from ssegate.schemas.mapping import Decoder, JsonMapping
from ssegate.schemas.schema import InvalidRecord, Schema, SchemaError, SchemaReference

UTC = dt.UTC

ADDRESS = {
    "type": "record",
    "name": "Address",
    "namespace": "com.example.common",
    "fields": [{"name": "street", "type": "string"}, {"name": "zip", "type": ["null", "int"]}],
}

EVERY = {
    "type": "record",
    "name": "Every",
    "namespace": "com.example",
    "fields": [
        {"name": "nothing", "type": "null"},
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int"},
        {"name": "big", "type": "long"},
        {"name": "ratio", "type": "float"},
        {"name": "precise", "type": "double"},
        {"name": "blob", "type": "bytes"},
        {"name": "text", "type": "string"},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [
                    {"name": "id", "type": "int"},
                    {
                        "name": "nested",
                        "type": {
                            "type": "record",
                            "name": "Nested",
                            "fields": [{"name": "score", "type": "double"}],
                        },
                    },
                ],
            },
        },
        {"name": "home", "type": "com.example.common.Address"},
        {
            "name": "color",
            "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]},
        },
        {"name": "numbers", "type": {"type": "array", "items": "long"}},
        {"name": "lookup", "type": {"type": "map", "values": "Inner"}},
        {"name": "maybe", "type": ["null", "string"]},
        {
            "name": "choice",
            "type": [
                "null",
                "int",
                "string",
                "Inner",
                "com.example.common.Address",
                {"type": "array", "items": "string"},
                {"type": "map", "values": "long"},
            ],
        },
        {"name": "four", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 8},
        },
        {
            "name": "money",
            "type": {
                "type": "fixed",
                "name": "Money",
                "size": 8,
                "logicalType": "decimal",
                "precision": 18,
                "scale": 2,
            },
        },
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "alarm", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "lap", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "created", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "updated", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "local", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "local_us", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
    ],
}

INNER = {"id": 7, "nested": {"score": 0.5}}
DATUM: dict[str, Any] = {
    "nothing": None,
    "flag": True,
    "small": -2_147_483_648,
    "big": 9_007_199_254_740_993,  # 2^53 + 1: a double cannot hold it
    "ratio": 0.1,
    "precise": 189.52,
    "blob": b"\x00\xfe\xff",
    "text": 'héllo "world"\n',
    "inner": INNER,
    "home": {"street": "Bahnhofstrasse 1", "zip": 8001},
    "color": "GREEN",
    "numbers": [0, -1, 2**63 - 1],
    "lookup": {"a": INNER, "b": {"id": 8, "nested": {"score": -1.25}}},
    "maybe": None,
    "choice": ("com.example.Inner", INNER),
    "four": b"abcd",
    "amount": Decimal("0.00000001"),
    "money": Decimal("-123456.70"),
    "id": uuid.UUID("123e4567-e89b-12d3-a456-426614174000"),
    "day": dt.date(2024, 2, 29),
    "alarm": dt.time(23, 59, 59, 999_000),
    "lap": dt.time(0, 0, 0, 1),
    "created": dt.datetime(2024, 1, 2, 3, 4, 5, 6_000, tzinfo=UTC),
    "updated": dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    "local": dt.datetime(2024, 1, 2, 3, 4, 5),
    "local_us": dt.datetime(2024, 1, 2, 3, 4, 5, 123_456),
}
INNER_JSON = {"id": 7, "nested": {"score": 0.5}}
EXPECTED: dict[str, Any] = {
    "nothing": None,
    "flag": True,
    "small": -2_147_483_648,
    "big": 9_007_199_254_740_993,
    "ratio": 0.1,
    "precise": 189.52,
    "blob": "AP7/",
    "text": 'héllo "world"\n',
    "inner": INNER_JSON,
    "home": {"street": "Bahnhofstrasse 1", "zip": 8001},
    "color": "GREEN",
    "numbers": [0, -1, 2**63 - 1],
    "lookup": {"a": INNER_JSON, "b": {"id": 8, "nested": {"score": -1.25}}},
    "maybe": None,
    "choice": INNER_JSON,
    "four": "YWJjZA==",
    "amount": "0.00000001",
    "money": "-123456.70",
    "id": "123e4567-e89b-12d3-a456-426614174000",
    "day": "2024-02-29",
    "alarm": "23:59:59.999",
    "lap": "00:00:00.000001",
    "created": "2024-01-02T03:04:05.006Z",
    "updated": "1969-12-31T23:59:59.999999Z",
    "local": "2024-01-02T03:04:05.000",
    "local_us": "2024-01-02T03:04:05.123456",
}


def _registry() -> tuple[Any, int | None]:
    """A mock Confluent registry holding ADDRESS; returns (client, its version)."""
    client = SchemaRegistryClient.new_client({"url": "mock://ssegate-avro-tests"})
    client.register_schema("address-value", RegistrySchema(json.dumps(ADDRESS), "AVRO"))
    return client, client.get_latest_version("address-value").version


def _serialize(datum: dict[str, Any]) -> bytes:
    """`datum` as confluent-kafka's AvroSerializer frames it (0x00, 4-byte id, Avro)."""
    client, version = _registry()
    schema = RegistrySchema(
        json.dumps(EVERY),
        "AVRO",
        [RegistryReference("com.example.common.Address", "address-value", version)],
    )
    serializer = AvroSerializer(client, schema, conf={"auto.register.schemas": True})
    value = serializer(datum, SerializationContext("every", MessageField.VALUE))
    assert isinstance(value, bytes)
    return value


def _every_schema(schema_id: int | None = None) -> Schema:
    address = SchemaReference("com.example.common.Address", Schema("avro", json.dumps(ADDRESS)))
    return Schema("avro", json.dumps(EVERY), (address,), id=schema_id)


def _decode(value: bytes, mapping: JsonMapping | None = None) -> bytes:
    schema_id, start = read_schema_id(value, "confluent")
    decoder = compile_decoder(_every_schema(schema_id), mapping or JsonMapping())
    return decoder.to_json(value, start, None)


def _write(schema: Any, datum: Any, *references: Any) -> bytes:
    """`datum` in Avro's binary encoding, by fastavro; `references` define named types."""
    named: dict[str, Any] = {}
    for reference in references:
        fastavro.parse_schema(reference, named)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema, named), datum)
    return out.getvalue()


# --- every type --------------------------------------------------------------------------------


def test_every_type_decodes_field_by_field() -> None:
    text = _decode(_serialize(DATUM))
    decoded = json.loads(text)
    assert list(decoded) == list(EXPECTED)  # the schema's field order
    for name, expected in EXPECTED.items():
        assert decoded[name] == expected, name


def test_the_json_is_compact_and_on_one_line() -> None:
    text = _decode(_serialize(DATUM))
    assert b"\n" not in text
    assert b"\r" not in text
    assert text.startswith(b'{"nothing":null,"flag":true,"small":-2147483648,')
    # exact text where a number's spelling matters
    assert b'"big":9007199254740993,' in text
    assert b'"ratio":0.1,' in text
    assert b'"precise":189.52,' in text
    assert '"text":"héllo \\"world\\"\\n"'.encode() in text  # UTF-8, escapes only as needed


def test_int64_string_writes_every_long_as_a_string() -> None:
    decoded = json.loads(_decode(_serialize(DATUM), JsonMapping(int64="string")))
    assert decoded["big"] == "9007199254740993"
    assert decoded["numbers"] == ["0", "-1", str(2**63 - 1)]
    assert decoded["small"] == -2_147_483_648  # int is 32-bit: still a number
    # logical types over long keep their own form
    assert decoded["created"] == EXPECTED["created"]
    assert decoded["lap"] == EXPECTED["lap"]


def test_int64_number_is_avros_default() -> None:
    assert _decode(_serialize(DATUM), JsonMapping(int64="number")) == _decode(_serialize(DATUM))


CHOICES = [
    (None, None, None),
    (5, 5, {"int": 5}),
    ("x", "x", {"string": "x"}),
    (("com.example.Inner", INNER), INNER_JSON, {"com.example.Inner": INNER_JSON}),
    (
        ("com.example.common.Address", {"street": "s", "zip": None}),
        {"street": "s", "zip": None},
        {"com.example.common.Address": {"street": "s", "zip": None}},
    ),
    (["a", "b"], ["a", "b"], {"array": ["a", "b"]}),
    ({"k": 1}, {"k": 1}, {"map": {"k": 1}}),
]


@pytest.mark.parametrize(("value", "plain", "tagged"), CHOICES)
def test_union_branches_plain_and_tagged(value: Any, plain: Any, tagged: Any) -> None:
    raw = _serialize({**DATUM, "choice": value, "maybe": "m"})
    assert json.loads(_decode(raw))["choice"] == plain
    decoded = json.loads(_decode(raw, JsonMapping(unions="tagged")))
    assert decoded["choice"] == tagged
    assert decoded["maybe"] == {"string": "m"}
    # a record's own nullable union is tagged too; null stays null
    if isinstance(tagged, dict) and "com.example.common.Address" in tagged:
        assert tagged["com.example.common.Address"]["zip"] is None


def test_tagged_unions_nest_inside_tagged_branches() -> None:
    raw = _serialize({**DATUM, "choice": ("com.example.common.Address", {"street": "s", "zip": 1})})
    decoded = json.loads(_decode(raw, JsonMapping(unions="tagged")))
    assert decoded["choice"] == {"com.example.common.Address": {"street": "s", "zip": {"int": 1}}}
    assert decoded["home"]["zip"] == {"int": 8001}


def test_tagged_union_of_int_and_long_names_the_branch_written() -> None:
    # Both read as Python ints; the branch comes from the bytes, not the value's type.
    schema = {"type": "record", "name": "R", "fields": [{"name": "v", "type": ["int", "long"]}]}
    decoder = compile_decoder(Schema("avro", json.dumps(schema)), JsonMapping(unions="tagged"))
    as_int = b"\x00\x02"  # branch 0, value 1
    as_long = b"\x02\x02"  # branch 1, value 1
    assert decoder.to_json(as_int, 0, None) == b'{"v":{"int":1}}'
    assert decoder.to_json(as_long, 0, None) == b'{"v":{"long":1}}'
    plain = compile_decoder(Schema("avro", json.dumps(schema)), JsonMapping(int64="string"))
    assert plain.to_json(as_int, 0, None) == b'{"v":1}'
    assert plain.to_json(as_long, 0, None) == b'{"v":"1"}'


def test_a_union_of_two_records_gives_the_plain_record() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {
                "name": "v",
                "type": [
                    {"type": "record", "name": "A", "fields": [{"name": "a", "type": "int"}]},
                    {"type": "record", "name": "B", "fields": [{"name": "b", "type": "string"}]},
                ],
            }
        ],
    }
    raw = _write(schema, {"v": ("B", {"b": "x"})})
    decoder = compile_decoder(Schema("avro", json.dumps(schema)))
    assert decoder.to_json(raw, 0, None) == b'{"v":{"b":"x"}}'


def test_a_top_level_primitive_schema() -> None:
    decoder = compile_decoder(Schema("avro", '"string"'))
    assert decoder.to_json(b"\x06abc", 0, None) == b'"abc"'
    decoder = compile_decoder(Schema("avro", '"long"'), JsonMapping(int64="string"))
    assert decoder.to_json(b"\x00\x00\x00\x00\x01\x03", 5, None) == b'"-2"'


# --- numbers and times -------------------------------------------------------------------------

FLOATS = {
    "type": "record",
    "name": "F",
    "fields": [{"name": "f", "type": "float"}, {"name": "d", "type": "double"}],
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.nan, '"NaN"'),
        (math.inf, '"Infinity"'),
        (-math.inf, '"-Infinity"'),
        (0.1, "0.1"),
        (189.52, "189.52"),
        (-0.0, "-0.0"),
        (1e30, "1e30"),
        (3.4028234663852886e38, "3.4028235e38"),  # the largest float32
        # the smallest float32 subnormal, as Protobuf's printer writes it: 6 digits at least
        (1.401298464324817e-45, "1.4013e-45"),
    ],
)
def test_floats_nan_and_infinity(value: float, expected: str) -> None:
    decoder = compile_decoder(Schema("avro", json.dumps(FLOATS)))
    text = decoder.to_json(_write(FLOATS, {"f": value, "d": value}), 0, None).decode()
    assert text.startswith(f'{{"f":{expected},')
    doubles = {0.1: "0.1", 189.52: "189.52", 1e30: "1e30"}
    if math.isnan(value) or math.isinf(value):
        assert text.endswith(f'"d":{expected}}}')
    elif value in doubles:
        assert text.endswith(f'"d":{doubles[value]}}}')


def test_float32_values_read_back_exactly() -> None:
    decoder = compile_decoder(Schema("avro", json.dumps(FLOATS)))
    for value in (0.3, 1 / 3, 16777217.0, 123456.789, 2.5e-38):
        raw = _write(FLOATS, {"f": value, "d": 0.0})
        written: Any = fastavro.schemaless_reader(io.BytesIO(raw), fastavro.parse_schema(FLOATS))
        shown = json.loads(decoder.to_json(raw, 0, None))["f"]
        assert struct.pack("<f", shown) == struct.pack("<f", written["f"])
        assert len(repr(shown)) <= 15


TIMES: dict[str, Any] = {
    "type": "record",
    "name": "T",
    "fields": [
        {"name": "ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "ns", "type": {"type": "long", "logicalType": "timestamp-nanos"}},
        {"name": "lns", "type": {"type": "long", "logicalType": "local-timestamp-nanos"}},
        {"name": "tm", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "tu", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "d", "type": {"type": "int", "logicalType": "date"}},
    ],
}


def _times(**values: int) -> bytes:
    datum = {"ms": 0, "us": 0, "ns": 0, "lns": 0, "tm": 0, "tu": 0, "d": 0, **values}
    plain = {
        **TIMES,
        "fields": [{"name": f["name"], "type": f["type"]["type"]} for f in TIMES["fields"]],
    }
    return _write(plain, datum)  # the raw integers the logical types are made of


def test_times_from_their_integers() -> None:
    decoder = compile_decoder(Schema("avro", json.dumps(TIMES)))
    assert json.loads(decoder.to_json(_times(), 0, None)) == {
        "ms": "1970-01-01T00:00:00.000Z",
        "us": "1970-01-01T00:00:00.000000Z",
        "ns": "1970-01-01T00:00:00.000000000Z",
        "lns": "1970-01-01T00:00:00.000000000",
        "tm": "00:00:00.000",
        "tu": "00:00:00.000000",
        "d": "1970-01-01",
    }
    raw = _times(
        ms=-1,
        us=253_402_300_799_999_999,
        ns=1_700_000_000_123_456_789,
        lns=-1,
        tm=86_399_999,
        tu=86_399_999_999,
        d=-719_162,
    )
    assert json.loads(decoder.to_json(raw, 0, None)) == {
        "ms": "1969-12-31T23:59:59.999Z",
        "us": "9999-12-31T23:59:59.999999Z",
        "ns": "2023-11-14T22:13:20.123456789Z",
        "lns": "1969-12-31T23:59:59.999999999",
        "tm": "23:59:59.999",
        "tu": "23:59:59.999999",
        "d": "0001-01-01",
    }


@pytest.mark.parametrize(
    "values",
    [
        {"ms": 253_402_300_800_000},  # year 10000
        {"us": -62_135_596_800_000_001},  # before year 1
        {"ms": 2**63 - 1},
        {"tm": 86_400_000},  # a time of day past midnight
        {"tm": -1},
        {"tu": 86_400_000_000},
        {"d": 2_932_897},  # year 10000
    ],
)
def test_times_out_of_range_are_invalid(values: dict[str, int]) -> None:
    decoder = compile_decoder(Schema("avro", json.dumps(TIMES)))
    with pytest.raises(InvalidRecord) as caught:
        decoder.to_json(_times(**values), 0, None)
    assert caught.value.reason == "schema-mismatch"


def test_decimals_keep_their_scale() -> None:
    schema = {
        "type": "record",
        "name": "D",
        "fields": [
            {
                "name": "a",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 4},
            },
            {"name": "b", "type": {"type": "bytes", "logicalType": "decimal", "precision": 5}},
        ],
    }
    decoder = compile_decoder(Schema("avro", json.dumps(schema)))
    for a, expected in [
        (Decimal("0"), "0.0000"),
        (Decimal("-0.0001"), "-0.0001"),
        (Decimal("12345678901234567890123456789012.3456"), "12345678901234567890123456789012.3456"),
    ]:
        raw = _write(schema, {"a": a, "b": Decimal("42")})
        assert json.loads(decoder.to_json(raw, 0, None)) == {"a": expected, "b": "42"}


def test_a_uuid_in_a_fixed_is_its_string() -> None:
    schema = {
        "type": "record",
        "name": "U",
        "fields": [
            {
                "name": "u",
                "type": {"type": "fixed", "name": "Id", "size": 16, "logicalType": "uuid"},
            }
        ],
    }
    value = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
    decoder = compile_decoder(Schema("avro", json.dumps(schema)))
    assert decoder.to_json(value.bytes, 0, None) == b'{"u":"123e4567-e89b-12d3-a456-426614174000"}'


def test_unknown_logical_types_are_their_underlying_type() -> None:
    schema = {
        "type": "record",
        "name": "L",
        "fields": [{"name": "x", "type": {"type": "long", "logicalType": "mine"}}],
    }
    decoder = compile_decoder(Schema("avro", json.dumps(schema)))
    assert decoder.to_json(b"\x04", 0, None) == b'{"x":2}'


# --- malformed payloads ------------------------------------------------------------------------


def _reason(decoder: Decoder, value: bytes, start: int = 0) -> str:
    with pytest.raises(InvalidRecord) as caught:
        decoder.to_json(value, start, None)
    assert "héllo" not in str(caught.value)  # messages never quote the record
    return caught.value.reason


def test_every_cut_of_the_payload_is_truncated() -> None:
    value = _serialize(DATUM)
    decoder = compile_decoder(_every_schema(1))
    for end in range(5, len(value)):
        assert _reason(decoder, value[:end], 5) == "truncated", end


def test_bytes_after_the_record_are_a_mismatch() -> None:
    value = _serialize(DATUM)
    decoder = compile_decoder(_every_schema(1))
    with pytest.raises(InvalidRecord) as caught:
        decoder.to_json(value + b"\x00\x00", 5, None)
    assert caught.value.reason == "schema-mismatch"
    assert "2 bytes follow the record" in str(caught.value)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x06\xff\xfe\xfd", "schema-mismatch"),  # a string that is not UTF-8
        (b"\x04\x04ab", "schema-mismatch"),  # union branch 2 of 2
        (b"\x02\x04ab\x06", "schema-mismatch"),  # enum index 3 of 3
        (b"\x02\x04ab\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "schema-mismatch"),
        (b"", "truncated"),
        (b"\x02", "truncated"),
    ],
)
def test_payloads_that_do_not_fit_the_schema(payload: bytes, reason: str) -> None:
    schema = {
        "type": "record",
        "name": "M",
        "fields": [
            {"name": "s", "type": ["null", "string"]},  # b"\x02\x04ab" reads s = "ab"
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
        ],
    }
    decoder = compile_decoder(Schema("avro", json.dumps(schema), id=3))
    assert _reason(decoder, payload) == reason


# --- recursion ---------------------------------------------------------------------------------

NODE = {
    "type": "record",
    "name": "Node",
    "fields": [
        {"name": "label", "type": "string"},
        {"name": "value", "type": "double"},
        {"name": "next", "type": ["null", "Node"]},
    ],
}


def _chain(length: int, label: str) -> tuple[dict[str, Any] | None, Any]:
    datum: dict[str, Any] | None = None
    expected: Any = None
    for index in range(length):
        datum = {"label": label, "value": float(index), "next": datum}
        expected = {"label": label, "value": float(index), "next": expected}
    return datum, expected


def test_a_recursive_schema_decodes_with_either_reader() -> None:
    decoder = compile_decoder(Schema("avro", json.dumps(NODE)))
    short, short_expected = _chain(20, "n")
    raw = _write(NODE, short)
    assert len(raw) <= C_READER_MAX_BYTES
    assert json.loads(decoder.to_json(raw, 0, None)) == short_expected
    long, long_expected = _chain(60, "x" * 40)  # over the C reader's bound: the Python one
    raw = _write(NODE, long)
    assert len(raw) > C_READER_MAX_BYTES
    assert json.loads(decoder.to_json(raw, 0, None)) == long_expected


@pytest.mark.parametrize("levels", [2_000, 100_000])
def test_a_record_nested_too_deeply_is_refused_not_a_crash(levels: int) -> None:
    schema = {"type": "record", "name": "L", "fields": [{"name": "next", "type": ["null", "L"]}]}
    decoder = compile_decoder(Schema("avro", json.dumps(schema)))
    with pytest.raises(InvalidRecord) as caught:
        decoder.to_json(b"\x02" * levels + b"\x00", 0, None)
    assert caught.value.reason == "too-deep"


def test_a_record_that_contains_itself_cannot_be_written() -> None:
    for schema in (
        {"type": "record", "name": "Loop", "fields": [{"name": "me", "type": "Loop"}]},
        {
            "type": "record",
            "name": "A",
            "fields": [
                {
                    "name": "b",
                    "type": {"type": "record", "name": "B", "fields": [{"name": "a", "type": "A"}]},
                }
            ],
        },
    ):
        with pytest.raises(SchemaError, match="contains itself"):
            compile_decoder(Schema("avro", json.dumps(schema)))


# --- schemas -----------------------------------------------------------------------------------


def test_an_unknown_named_type_is_a_schema_error() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "x", "type": "com.example.Missing"}],
    }
    with pytest.raises(SchemaError) as caught:
        compile_decoder(Schema("avro", json.dumps(schema), id=12))
    assert str(caught.value) == (
        "avro schema 12 does not compile: unknown type 'com.example.Missing' (neither a "
        "primitive type nor a named type the schema or its references define)"
    )


def test_a_missing_reference_is_an_unknown_type() -> None:
    with pytest.raises(SchemaError, match=r"unknown type 'com\.example\.common\.Address'"):
        compile_decoder(Schema("avro", json.dumps(EVERY), subject="every-value", version=3))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "inline avro schema is not JSON"),
        ('{"type": "fixed", "name": "F"}', "a type lacks its 'size' attribute"),
        ('{"type": "record", "name": "R", "fields": [{"name": "a"}]}', "is missing 'type'"),
        ("42", "is not an Avro schema"),
        ('{"type": "enum", "name": "E", "symbols": ["A", "A"]}', "does not compile"),
        ('"strung"', "unknown type 'strung'"),
    ],
)
def test_schemas_that_do_not_compile(text: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        compile_decoder(Schema("avro", text))


def test_references_are_loaded_once_each_in_order() -> None:
    # Main and Other both reference Address: a diamond.
    address = SchemaReference("com.example.common.Address", Schema("avro", json.dumps(ADDRESS)))
    other = {
        "type": "record",
        "name": "Other",
        "namespace": "com.example.common",
        "fields": [{"name": "where", "type": "Address"}],
    }
    other_reference = SchemaReference(
        "com.example.common.Other", Schema("avro", json.dumps(other), (address,))
    )
    main = {
        "type": "record",
        "name": "Main",
        "fields": [
            {"name": "o", "type": "com.example.common.Other"},
            {"name": "a", "type": "com.example.common.Address"},
        ],
    }
    decoder = compile_decoder(Schema("avro", json.dumps(main), (other_reference, address)))
    raw = _write(
        main,
        {"o": {"where": {"street": "s", "zip": None}}, "a": {"street": "t", "zip": 1}},
        ADDRESS,
        other,
    )
    assert json.loads(decoder.to_json(raw, 0, None)) == {
        "o": {"where": {"street": "s", "zip": None}},
        "a": {"street": "t", "zip": 1},
    }


def test_two_different_schemas_under_one_reference_name() -> None:
    first = SchemaReference("com.example.common.Address", Schema("avro", json.dumps(ADDRESS)))
    other = {**ADDRESS, "fields": [{"name": "street", "type": "string"}]}
    second = SchemaReference("com.example.common.Address", Schema("avro", json.dumps(other)))
    nested = SchemaReference("com.example.Wrapper", Schema("avro", '"string"', (second,)))
    with pytest.raises(SchemaError, match="two different schemas"):
        compile_decoder(Schema("avro", json.dumps(EVERY), (first, nested)))


def test_the_decoder_repr_names_the_schema() -> None:
    assert repr(compile_decoder(_every_schema(4))) == "<AvroDecoder avro schema 4>"


# --- any bytes ---------------------------------------------------------------------------------

FUZZ_SETTINGS = settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
DECODERS = {
    "every": compile_decoder(_every_schema(1)),
    "every-tagged": compile_decoder(_every_schema(1), JsonMapping(unions="tagged", int64="string")),
    "node": compile_decoder(Schema("avro", json.dumps(NODE))),
    "times": compile_decoder(Schema("avro", json.dumps(TIMES))),
}
# Payloads that begin like a real record, so the fuzz reaches past the first fields.
SEED = _serialize(DATUM)[5:]


@FUZZ_SETTINGS
@given(
    st.sampled_from(sorted(DECODERS)),
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=40).map(lambda tail: SEED[: len(SEED) // 2] + tail),
        st.integers(min_value=0, max_value=len(SEED) - 1).flatmap(
            lambda cut: st.binary(min_size=1, max_size=8).map(
                lambda noise: SEED[:cut] + noise + SEED[cut + len(noise) :]
            )
        ),
    ),
)
def test_any_bytes_give_json_or_invalid_record(name: str, payload: bytes) -> None:
    try:
        text = DECODERS[name].to_json(payload, 0, None)
    except InvalidRecord as exc:
        reason = exc.reason
        assert reason in ("truncated", "schema-mismatch", "too-deep")
    else:
        assert isinstance(text, bytes)
        json.loads(text)
        assert b"\n" not in text


def test_the_module_keeps_no_state_per_record() -> None:
    decoder = DECODERS["every"]
    first = decoder.to_json(SEED, 0, None)
    with pytest.raises(InvalidRecord):
        decoder.to_json(SEED[:10], 0, None)
    assert decoder.to_json(SEED, 0, None) == first  # Zilla #1282: no state leaks on failure
    assert avro.__all__ == ["C_READER_MAX_BYTES", "AvroDecoder", "compile_decoder"]


def test_mapping_options_are_checked() -> None:
    with pytest.raises(ValueError, match="int64 must be one of"):
        JsonMapping(int64="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unions must be one of"):
        JsonMapping(unions="wrapped")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="field_names must be one of"):
        JsonMapping(field_names="camel")  # type: ignore[arg-type]
    latest = Schema("avro", '"string"', subject="s-value")
    with pytest.raises(InvalidRecord, match=r"^avro schema 's-value' \(latest\): "):
        compile_decoder(latest).to_json(b"\x05", 0, None)


AVRO_TYPES = st.sampled_from(
    ["null", "int", "long", "string", "bytes", "double", "R", "E", "Nope", 5, None]
)
AVRO_JSON = st.recursive(
    AVRO_TYPES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["record", "enum", "array", "map", "fixed", "long", "bogus"])},
            optional={
                "name": st.sampled_from(["R", "E", "com.x.R", "1bad", ""]),
                "fields": st.lists(
                    st.fixed_dictionaries({"name": st.sampled_from(["a", "b"]), "type": children}),
                    max_size=3,
                ),
                "symbols": st.lists(st.sampled_from(["A", "B", "A", ""]), max_size=3),
                "items": children,
                "values": children,
                "size": st.sampled_from([0, 4, -1, "x"]),
                "logicalType": st.sampled_from(["decimal", "uuid", "timestamp-millis", "date"]),
                "precision": st.sampled_from([4, 0, -1]),
                "scale": st.sampled_from([2, 9]),
            },
        )
    ),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(AVRO_JSON.map(json.dumps), st.text(max_size=30)), st.binary(max_size=30))
def test_any_schema_text_gives_a_decoder_or_schema_error(text: str, payload: bytes) -> None:
    try:
        decoder = compile_decoder(Schema("avro", text))
    except SchemaError:
        return
    with contextlib.suppress(InvalidRecord):
        json.loads(decoder.to_json(payload, 0, None))
