"""Protobuf records to JSON: every type of the mapping, written by confluent-kafka's
ProtobufSerializer through its mock registry, read back field by field and against
json_format's canonical JSON; message indexes; the mapping options; malformed payloads;
schemas that do not compile; and the invariant that any bytes give JSON or
`InvalidRecord`."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssegate.schemas import protobuf
from ssegate.schemas.framing import read_message_indexes, read_schema_id
from ssegate.schemas.mapping import JsonMapping
from ssegate.schemas.protobuf import compile_decoder
from ssegate.schemas.schema import InvalidRecord, Schema, SchemaError, SchemaReference

ADDRESS = """syntax = "proto3";
package example.common;

message Address {
  string street = 1;
  int32 zip = 2;
}
"""

EVERY = """syntax = "proto3";
package example;

import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "common/address.proto";

message Every {
  int32 i32 = 1;
  int64 i64 = 2;
  uint32 u32 = 3;
  uint64 u64 = 4;
  sint32 s32 = 5;
  sint64 s64 = 6;
  fixed32 f32 = 7;
  fixed64 f64 = 8;
  sfixed32 sf32 = 9;
  sfixed64 sf64 = 10;
  float ratio = 11;
  double precise = 12;
  bool flag = 13;
  string text = 14;
  bytes blob = 15;
  Color color = 16;
  Inner inner = 17;
  repeated string tags = 18;
  repeated Inner inners = 19;
  map<string, int64> counts = 20;
  map<int32, Inner> by_id = 21;
  oneof choice {
    string name = 22;
    int64 number = 23;
    Inner picked = 24;
  }
  google.protobuf.Timestamp created = 25;
  example.common.Address home = 26;
  optional int32 maybe = 27;
  google.protobuf.Int64Value wrapped = 28;
  repeated Color colors = 29;
  map<bool, string> flags = 30;
  repeated double samples = 31;
  google.protobuf.Duration took = 32;
  google.protobuf.Struct extra = 33;
  google.protobuf.Any anything = 34;
  google.protobuf.FieldMask mask = 35;
  google.protobuf.Empty nothing = 36;
  google.protobuf.StringValue label = 37;

  message Inner {
    int32 id = 1;
    Deeper deeper = 2;

    message Deeper {
      string note = 1;
    }
  }

  enum Color {
    RED = 0;
    GREEN = 1;
    BLUE = 2;
  }
}

message Second {
  string only = 1;
  uint64 big = 2;
}

message Tree {
  string name = 1;
  repeated Tree kids = 2;
}
"""

REFERENCES = (
    SchemaReference("common/address.proto", Schema("protobuf", ADDRESS)),
    # registries often list the well-known types too: they come with the compiler
    SchemaReference("google/protobuf/timestamp.proto", Schema("protobuf", "not used")),
)
SCHEMA = Schema("protobuf", EVERY, REFERENCES, id=21)


def _pool() -> Any:
    """A pool of its own for the writing side, from the same protoc output."""
    main, files = protobuf._files(SCHEMA, "test")
    file_set = descriptor_pb2.FileDescriptorSet.FromString(protobuf._descriptor_set(main, files))
    pool = descriptor_pool.DescriptorPool()
    for file in file_set.file:
        pool.Add(file)
    return pool


POOL = _pool()


def _class(name: str) -> Any:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(name))


Every = _class("example.Every")
Inner = _class("example.Every.Inner")
Deeper = _class("example.Every.Inner.Deeper")
Second = _class("example.Second")
Tree = _class("example.Tree")
Address = _class("example.common.Address")
TimestampClass = _class("google.protobuf.Timestamp")


def _serialize(message: Any, topic: str = "every") -> bytes:
    """`message` as confluent-kafka's ProtobufSerializer frames it: 0x00, the 4-byte id,
    the message indexes, the payload."""
    client = SchemaRegistryClient.new_client({"url": "mock://ssegate-protobuf-tests"})
    serializer = ProtobufSerializer(type(message), client, {"use.deprecated.format": False})
    value = serializer(message, SerializationContext(topic, MessageField.VALUE))
    assert isinstance(value, bytes)
    return value


def _decode(value: bytes, mapping: JsonMapping | None = None, message: str | None = None) -> Any:
    """The JSON our decoder gives for a framed `value`, parsed."""
    _, start = read_schema_id(value, "confluent")
    indexes, start = read_message_indexes(value, start)
    decoder = compile_decoder(SCHEMA, mapping or JsonMapping(), message)
    text = decoder.to_json(value, start, indexes)
    assert b"\n" not in text
    return json.loads(text)


def _canonical(message: Any, *, proto_names: bool = True) -> Any:
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=proto_names,
        descriptor_pool=POOL,
    )


def _every() -> Any:
    inner = Inner(id=7, deeper=Deeper(note="deep"))
    message = Every(
        i32=-2_147_483_648,
        i64=9_007_199_254_740_993,
        u32=4_294_967_295,
        u64=18_446_744_073_709_551_615,
        s32=-5,
        s64=-9_223_372_036_854_775_808,
        f32=1,
        f64=2,
        sf32=-3,
        sf64=-4,
        ratio=0.1,
        precise=189.52,
        flag=True,
        text='héllo "world"\n',
        blob=b"\x00\xfe\xff",
        color=1,  # GREEN
        inner=inner,
        tags=["a", "b"],
        inners=[inner, Inner(id=8)],
        counts={"x": 1, "y": -2},
        by_id={3: inner},
        number=42,
        home=Address(street="Bahnhofstrasse 1", zip=8001),
        maybe=0,
        colors=[0, 2],
        flags={True: "yes", False: "no"},
        samples=[math.nan, math.inf, -math.inf, 1.5],
    )
    message.created.seconds = 1_704_164_645
    message.created.nanos = 6_000_000
    message.wrapped.value = 12
    message.took.seconds = 3
    message.took.nanos = 500_000_000
    message.extra.update({"k": [1, "two", None, True], "n": {"m": 1.5}})
    message.anything.Pack(Second(only="packed", big=5))
    message.mask.paths.extend(["a.b", "c"])
    message.nothing.SetInParent()
    message.label.value = "tag"
    return message


EXPECTED: dict[str, Any] = {
    "i32": -2_147_483_648,
    "i64": "9007199254740993",
    "u32": 4_294_967_295,
    "u64": "18446744073709551615",
    "s32": -5,
    "s64": "-9223372036854775808",
    "f32": 1,
    "f64": "2",
    "sf32": -3,
    "sf64": "-4",
    "ratio": 0.1,
    "precise": 189.52,
    "flag": True,
    "text": 'héllo "world"\n',
    "blob": "AP7/",
    "color": "GREEN",
    "inner": {"id": 7, "deeper": {"note": "deep"}},
    "tags": ["a", "b"],
    "inners": [{"id": 7, "deeper": {"note": "deep"}}, {"id": 8}],
    "counts": {"x": "1", "y": "-2"},
    "by_id": {"3": {"id": 7, "deeper": {"note": "deep"}}},
    "number": "42",
    "created": "2024-01-02T03:04:05.006Z",
    "home": {"street": "Bahnhofstrasse 1", "zip": 8001},
    "maybe": 0,
    "wrapped": "12",
    "colors": ["RED", "BLUE"],
    "flags": {"true": "yes", "false": "no"},
    "samples": ["NaN", "Infinity", "-Infinity", 1.5],
    "took": "3.500s",
    "extra": {"k": [1, "two", None, True], "n": {"m": 1.5}},
    "anything": {"@type": "type.googleapis.com/example.Second", "only": "packed", "big": "5"},
    "mask": "a.b,c",
    "nothing": {},
    "label": "tag",
}


# --- every type --------------------------------------------------------------------------------


def test_every_type_decodes_field_by_field() -> None:
    decoded = _decode(_serialize(_every()))
    for name, expected in EXPECTED.items():
        assert decoded[name] == expected, name
    assert set(decoded) == set(EXPECTED)  # no oneof sibling, nothing unset with presence


def test_every_type_is_json_formats_canonical_json() -> None:
    message = _every()
    assert _decode(_serialize(message)) == _canonical(message)


def test_json_names_are_json_formats_too() -> None:
    message = _every()
    decoded = _decode(_serialize(message), JsonMapping(field_names="json"))
    assert decoded == _canonical(message, proto_names=False)
    assert "byId" in decoded
    assert "by_id" not in decoded


def test_unset_fields_without_presence_have_their_defaults() -> None:
    message = Every()
    decoded = _decode(_serialize(message))
    assert decoded == _canonical(message)
    assert decoded["i64"] == "0"
    assert decoded["text"] == ""
    assert decoded["blob"] == ""
    assert decoded["color"] == "RED"
    assert decoded["tags"] == []
    assert decoded["counts"] == {}
    for absent in ("inner", "created", "maybe", "name", "number", "picked", "wrapped"):
        assert absent not in decoded


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("name", "n", "n"),
        ("number", 0, "0"),
        ("picked", {"id": 1}, {"id": 1}),
    ],
)
def test_a_oneof_gives_only_its_set_field(field: str, value: Any, shown: Any) -> None:
    message = Every(**{field: Inner(**value) if isinstance(value, dict) else value})
    decoded = _decode(_serialize(message))
    chosen = {"name", "number", "picked"} & set(decoded)
    assert chosen == {field}
    assert decoded[field] == shown


def test_int64_number_writes_64_bit_integers_as_numbers() -> None:
    decoded = _decode(_serialize(_every()), JsonMapping(int64="number"))
    assert decoded["i64"] == 9_007_199_254_740_993
    assert decoded["u64"] == 18_446_744_073_709_551_615
    assert decoded["s64"] == -9_223_372_036_854_775_808
    assert decoded["f64"] == 2
    assert decoded["sf64"] == -4
    assert decoded["counts"] == {"x": 1, "y": -2}
    assert decoded["number"] == 42
    assert decoded["wrapped"] == 12
    # inside an Any, json_format's canonical JSON throughout
    assert decoded["anything"]["big"] == "5"


def test_exact_text_where_spelling_matters() -> None:
    _, start = read_schema_id(value := _serialize(_every()), "confluent")
    indexes, start = read_message_indexes(value, start)
    text = compile_decoder(SCHEMA).to_json(value, start, indexes)
    assert text.startswith(b'{"i32":-2147483648,"i64":"9007199254740993",')
    assert b'"ratio":0.1,' in text
    assert '"text":"héllo \\"world\\"\\n"'.encode() in text


# --- message indexes ---------------------------------------------------------------------------


def test_message_indexes_choose_nested_and_later_messages() -> None:
    inner = _serialize(Inner(id=5, deeper=Deeper(note="n")), "inner")
    # protoc numbers the three map fields' entry types first: Inner is nested message 3
    assert read_message_indexes(inner, 5)[0] == (0, 3)
    assert _decode(inner) == {"id": 5, "deeper": {"note": "n"}}
    deeper = _serialize(Deeper(note="d"), "deeper")
    assert read_message_indexes(deeper, 5)[0] == (0, 3, 0)
    assert _decode(deeper) == {"note": "d"}
    second = _serialize(Second(only="s"), "second")
    assert read_message_indexes(second, 5)[0] == (1,)
    assert _decode(second) == {"only": "s", "big": "0"}


@pytest.mark.parametrize("indexes", [(3,), (9,), (0, 4), (0, 3, 1), (0, 3, 0, 0), (2, 0)])
def test_indexes_that_name_no_message(indexes: tuple[int, ...]) -> None:
    decoder = compile_decoder(SCHEMA)
    with pytest.raises(InvalidRecord) as caught:
        decoder.to_json(b"", 0, indexes)
    assert caught.value.reason == "message-index"
    assert "protobuf schema 21" in str(caught.value)


def test_without_indexes_the_named_or_first_message() -> None:
    payload = Second(only="s", big=7).SerializeToString()
    assert compile_decoder(SCHEMA, message="example.Second").to_json(payload, 0, None) == (
        b'{"only":"s","big":"7"}'
    )
    assert compile_decoder(SCHEMA, message="Second").to_json(payload, 0, None) == (
        b'{"only":"s","big":"7"}'
    )
    nested = compile_decoder(SCHEMA, message="example.Every.Inner.Deeper")
    assert nested.to_json(Deeper(note="x").SerializeToString(), 0, None) == b'{"note":"x"}'
    first = compile_decoder(SCHEMA)
    assert json.loads(first.to_json(Every(i32=1).SerializeToString(), 0, None))["i32"] == 1
    # indexes from the record win over the configured message
    framed = b"\x02" + Second(only="s").SerializeToString()
    assert compile_decoder(SCHEMA, message="example.Tree").to_json(framed, 1, (1,)) == (
        b'{"only":"s","big":"0"}'
    )


def test_an_unknown_message_name_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="protobuf schema 21 has no message 'Third'"):
        compile_decoder(SCHEMA, message="Third")


def test_schemas_with_the_same_names_do_not_clash() -> None:
    one = Schema("protobuf", 'syntax = "proto3"; package p; message M { string a = 1; }')
    two = Schema("protobuf", 'syntax = "proto3"; package p; message M { int64 a = 1; }')
    first = compile_decoder(one)
    second = compile_decoder(two)
    assert first.to_json(b"\x0a\x01x", 0, (0,)) == b'{"a":"x"}'
    assert second.to_json(b"\x08\x05", 0, (0,)) == b'{"a":"5"}'


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (0, 0),
        (-1, 0),
        (1_704_164_645, 6_000_000),
        (1_704_164_645, 6_000),
        (1_704_164_645, 6),
        (-62_135_596_800, 0),  # 0001-01-01T00:00:00Z
        (253_402_300_799, 999_999_999),  # 9999-12-31T23:59:59.999999999Z
    ],
)
def test_timestamps_as_json_format_writes_them(seconds: int, nanos: int) -> None:
    message = Every()
    message.created.seconds = seconds
    message.created.nanos = nanos
    decoded = _decode(_serialize(message))
    assert decoded["created"] == message.created.ToJsonString()


@pytest.mark.parametrize(("seconds", "nanos"), [(253_402_300_800, 0), (0, -1), (0, 10**9)])
def test_timestamps_out_of_range_are_invalid(seconds: int, nanos: int) -> None:
    message = Every()
    message.created.seconds = seconds
    message.created.nanos = nanos
    with pytest.raises(InvalidRecord) as caught:
        compile_decoder(SCHEMA).to_json(message.SerializeToString(), 0, None)
    assert caught.value.reason == "schema-mismatch"


@pytest.mark.parametrize("value", [0.3, 1 / 3, 16777217.0, 3.4028234663852886e38, 1e-45, -0.0])
def test_floats_as_json_format_writes_them(value: float) -> None:
    message = Every(ratio=value, precise=value)
    decoded = _decode(_serialize(message))
    canonical = _canonical(message)
    assert decoded["ratio"] == canonical["ratio"]
    assert decoded["precise"] == canonical["precise"]


def test_an_unknown_number_of_an_open_enum_is_the_number() -> None:
    payload = b"\x80\x01\x07"  # field 16 (color) = 7
    decoded = json.loads(compile_decoder(SCHEMA).to_json(payload, 0, (0,)))
    assert decoded["color"] == 7
    assert decoded == _canonical(Every.FromString(payload))


def test_a_value_that_is_not_json_in_a_struct_is_invalid() -> None:
    message = Every()
    message.extra.update({"n": math.nan})  # json_format refuses NaN in a Value
    with pytest.raises(InvalidRecord) as caught:
        compile_decoder(SCHEMA).to_json(message.SerializeToString(), 0, (0,))
    assert caught.value.reason == "schema-mismatch"


# --- malformed payloads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xff\xff\xff",  # a tag that is no tag
        b"\x72\x05ab",  # text: 5 bytes announced, 2 given
        b"\x72\x02\xff\xfe",  # text: not UTF-8
        b"\x8a\x01\x03\x08",  # inner: cut inside the sub-message
        b"\x07",  # wire type 7 does not exist
    ],
)
def test_bytes_that_are_not_the_message(payload: bytes) -> None:
    with pytest.raises(InvalidRecord) as caught:
        compile_decoder(SCHEMA).to_json(payload, 0, (0,))
    assert caught.value.reason == "schema-mismatch"
    assert "example.Every" in str(caught.value)


def _tree(depth: int) -> Any:
    tree = Tree(name="leaf")
    for _ in range(depth):
        tree = Tree(name="n", kids=[tree])
    return tree


def test_nesting_up_to_the_parsers_limit() -> None:
    decoder = compile_decoder(SCHEMA, message="example.Tree")
    assert json.loads(decoder.to_json(_tree(90).SerializeToString(), 0, None))["name"] == "n"
    # beyond upb's 100 levels; built by hand since the runtime will not serialize it either
    payload = b"\x0a\x01x"
    for _ in range(150):
        payload = b"\x0a\x01n\x12" + _varint(len(payload)) + payload
    with pytest.raises(InvalidRecord) as caught:
        decoder.to_json(payload, 0, None)
    assert caught.value.reason == "schema-mismatch"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# --- schemas -----------------------------------------------------------------------------------


def test_a_syntax_error_is_a_schema_error_with_protocs_message() -> None:
    broken = 'syntax = "proto3";\npackage p;\nmessage M {\n  string a = 1\n}\n'
    with pytest.raises(SchemaError) as caught:
        compile_decoder(Schema("protobuf", broken, subject="m-value", version=2))
    message = str(caught.value)
    assert message.startswith("protobuf schema 'm-value' (version 2) does not compile: protoc: ")
    assert 'schema.proto:5:1: Expected ";".' in message
    assert "ssegate-proto-" not in message  # no temporary paths


def test_a_missing_import_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"common/address\.proto"):
        compile_decoder(Schema("protobuf", EVERY, id=5))


def test_an_unknown_type_is_a_schema_error() -> None:
    text = 'syntax = "proto3"; message M { Nope a = 1; }'
    with pytest.raises(SchemaError, match='"Nope" is not defined'):
        compile_decoder(Schema("protobuf", text))


@pytest.mark.parametrize("name", ["../x.proto", "/etc/x.proto", "a//b.proto", "a/./b.proto", ""])
def test_reference_paths_stay_inside(name: str) -> None:
    reference = SchemaReference(name, Schema("protobuf", ADDRESS))
    with pytest.raises(SchemaError, match="is not a relative import path"):
        compile_decoder(Schema("protobuf", EVERY, (reference,)))


def test_a_schema_without_messages() -> None:
    with pytest.raises(SchemaError, match="defines no message"):
        compile_decoder(Schema("protobuf", 'syntax = "proto3"; enum E { A = 0; }'))


def test_a_schema_is_compiled_once_per_content() -> None:
    text = 'syntax = "proto3"; package once; message M { string a = 1; }'
    before = protobuf._descriptor_set.cache_info()
    compile_decoder(Schema("protobuf", text, id=1))
    compile_decoder(Schema("protobuf", text, id=2), JsonMapping(int64="number"))
    compile_decoder(Schema("protobuf", text, subject="s"), message="M")
    after = protobuf._descriptor_set.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 2


def test_the_decoder_repr_names_the_schema_and_message() -> None:
    assert repr(compile_decoder(SCHEMA)) == "<ProtobufDecoder protobuf schema 21 example.Every>"


# --- any bytes ---------------------------------------------------------------------------------

DECODER = compile_decoder(SCHEMA)
SEED = _every().SerializeToString()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.integers(min_value=0, max_value=len(SEED) - 1).flatmap(
            lambda cut: st.binary(min_size=1, max_size=6).map(
                lambda noise: SEED[:cut] + noise + SEED[cut + len(noise) :]
            )
        ),
    ),
    st.sampled_from([(0,), (0, 1), (0, 3), (0, 3, 0), (1,), (2,), (7,)]),
)
def test_any_bytes_give_json_formats_json_or_invalid_record(
    payload: bytes, indexes: tuple[int, ...]
) -> None:
    try:
        text = DECODER.to_json(payload, 0, indexes)
    except InvalidRecord as exc:
        reason = exc.reason
        assert reason in ("schema-mismatch", "message-index", "too-deep")
        return
    # Whatever parsed, the JSON is json_format's for the same message.
    message = _class(DECODER._targets[indexes].name).FromString(payload)
    assert json.loads(text) == _canonical(message)
