"""JSON records: values written by confluent-kafka's JSONSerializer (framed, with a
reference) pass through byte for byte; invalid records name the place and never the value;
drafts by `$schema`; references by name, never fetched; and the invariant that any bytes
give JSON or `InvalidRecord`."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema as RegistrySchema
from confluent_kafka.schema_registry import SchemaReference as RegistryReference
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssegate.schemas.framing import read_schema_id
from ssegate.schemas.jsonschema import JsonOnlyDecoder, compile_decoder
from ssegate.schemas.mapping import Decoder
from ssegate.schemas.schema import InvalidRecord, Schema, SchemaError, SchemaReference

DRAFT_2020 = "https://json-schema.org/draft/2020-12/schema"
ADDRESS = {
    "$schema": DRAFT_2020,
    "type": "object",
    "properties": {"street": {"type": "string"}, "zip": {"type": "integer"}},
    "required": ["street"],
}
ORDER = {
    "$schema": DRAFT_2020,
    "title": "Order",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string", "maxLength": 20},
        "home": {"$ref": "address.json"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "price": {"type": "number", "minimum": 0},
        "kind": {"enum": ["a", "b"]},
    },
    "required": ["id", "name"],
    "additionalProperties": False,
}
ORDER_SCHEMA = Schema(
    "json",
    json.dumps(ORDER),
    (SchemaReference("address.json", Schema("json", json.dumps(ADDRESS))),),
    id=2,
)
DECODER = compile_decoder(ORDER_SCHEMA)


def _serialize(datum: dict[str, Any]) -> bytes:
    """`datum` as confluent-kafka's JSONSerializer frames it (it validates it too)."""
    client = SchemaRegistryClient.new_client({"url": "mock://ssegate-json-tests"})
    client.register_schema("address.json", RegistrySchema(json.dumps(ADDRESS), "JSON"))
    reference = RegistryReference("address.json", "address.json", 1)
    serializer = JSONSerializer(RegistrySchema(json.dumps(ORDER), "JSON", [reference]), client)
    value = serializer(datum, SerializationContext("orders", MessageField.VALUE))
    assert isinstance(value, bytes)
    return value


def _invalid(decoder: Decoder, value: bytes, start: int = 0) -> InvalidRecord:
    with pytest.raises(InvalidRecord) as caught:
        decoder.to_json(value, start, None)
    return caught.value


# --- valid records -----------------------------------------------------------------------------


def test_a_serialized_record_passes_through_byte_for_byte() -> None:
    datum = {
        "id": 1,
        "name": "Zoë",
        "home": {"street": "Bahnhofstrasse 1", "zip": 8001},
        "tags": ["x", "y"],
        "price": 12.50,
        "kind": "b",
    }
    value = _serialize(datum)
    schema_id, start = read_schema_id(value, "confluent")
    assert schema_id is not None
    assert DECODER.to_json(value, start, None) == value[start:]


def test_the_producers_spelling_is_kept() -> None:
    # numbers, escapes, key order and inner whitespace reach clients as written
    text = b'{"name" : "caf\\u00e9", "id": 1.0E0, "price": 0.10}'
    assert DECODER.to_json(text, 0, None) == text
    assert DECODER.to_json(b"\x00\x00\x00\x00\x02" + text, 5, None) == text


def test_surrounding_whitespace_is_dropped() -> None:
    text = b'{"id": 1,\r\n "name": "n"}'
    assert DECODER.to_json(b" \t\r\n" + text + b"\n\n", 0, None) == text
    assert DECODER.to_json(b"\x00\x00\x00\x00\x02\n" + text, 5, None) == text


def test_duplicate_keys_count_as_the_last_one() -> None:
    accepted = b'{"id": "one", "id": 1, "name": "n"}'
    assert DECODER.to_json(accepted, 0, None) == accepted
    assert _invalid(DECODER, b'{"id": 1, "id": "one", "name": "n"}').reason == "schema-mismatch"


def test_big_integers_validate_exactly() -> None:
    schema = Schema("json", '{"type": "integer", "maximum": 9007199254740993}')
    decoder = compile_decoder(schema)
    assert decoder.to_json(b"9007199254740993", 0, None) == b"9007199254740993"
    assert _invalid(decoder, b"9007199254740994").reason == "schema-mismatch"
    assert decoder.to_json(b"-1180591620717411303424", 0, None) == b"-1180591620717411303424"


# --- invalid records ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"id": 1}', 'at the top level: "name" is a required property'),
        (b'{"id": "7", "name": "n"}', "at '/id': the value is not of type \"integer\""),
        (
            b'{"id": 1, "name": "a secret that is too long"}',
            "at '/name': the value is longer than 20 characters",
        ),
        (
            b'{"id": 1, "name": "n", "home": {"street": 5}}',
            "at '/home/street': the value is not of type \"string\"",
        ),
        (
            b'{"id": 1, "name": "n", "tags": ["ok", 3]}',
            "at '/tags/1': the value is not of type \"string\"",
        ),
        (b'{"id": 1, "name": "n", "price": -1}', "at '/price': the value is less than the minimum"),
        (b'{"id": 1, "name": "n", "kind": "c"}', "at '/kind': the value is not one of"),
        (b"[]", 'at the top level: the value is not of type "object"'),
    ],
)
def test_an_invalid_record_names_the_place_not_the_value(text: bytes, message: str) -> None:
    error = _invalid(DECODER, text)
    assert error.reason == "schema-mismatch"
    assert str(error).startswith(f"json schema 2: {message}")
    for secret in ("secret", '"7"', 'c"'):
        assert secret not in str(error)


def test_a_pointer_escapes_tilde_and_slash() -> None:
    schema = Schema("json", '{"additionalProperties": {"type": "integer"}}')
    error = _invalid(compile_decoder(schema), b'{"a/b~c": "x"}')
    assert "at '/a~1b~0c'" in str(error)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"   ",
        b"{",
        b"\xff",
        b'"\xc3\x28"',  # a string that is not UTF-8
        b'"\xed\xa0\x80"',  # a UTF-8 encoded surrogate
        b'"\\ud800"',  # a lone surrogate escape
        b"\xef\xbb\xbf{}",  # a byte order mark
        b"{} {}",  # trailing data
        b"NaN",
        b"1e400",  # beyond a double
        b"{'id': 1}",
        b'{"id": 1,}',
    ],
)
def test_bytes_that_are_not_json(text: bytes) -> None:
    for decoder in (DECODER, JsonOnlyDecoder()):
        error = _invalid(decoder, text)
        assert error.reason == "not-json"


def test_nesting_too_deep_for_the_parser() -> None:
    for decoder in (DECODER, JsonOnlyDecoder()):
        assert _invalid(decoder, b"[" * 100_000 + b"]" * 100_000).reason == "too-deep"


# --- drafts ------------------------------------------------------------------------------------

DRAFTS = [
    # (schema, valid, invalid): a keyword each draft reads its own way
    (
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "maximum": 5,
            "exclusiveMaximum": True,
        },
        b"4",
        b"5",
    ),
    ({"$schema": "http://json-schema.org/draft-06/schema#", "exclusiveMaximum": 5}, b"4", b"5"),
    (
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "if": {"type": "string"},
            "then": {"minLength": 2},
        },
        b'"ab"',
        b'"a"',
    ),
    (
        {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "dependentRequired": {"a": ["b"]},
        },
        b'{"a": 1, "b": 2}',
        b'{"a": 1}',
    ),
    ({"$schema": DRAFT_2020, "prefixItems": [{"type": "integer"}]}, b"[1, 2]", b'["x"]'),
    ({"prefixItems": [{"type": "integer"}]}, b"[1]", b'["x"]'),  # no $schema: 2020-12
    # formats are asserted up to draft 7, annotations from 2019-09 on
    (
        {"$schema": "http://json-schema.org/draft-07/schema#", "format": "date"},
        b'"2024-02-29"',
        b'"x"',
    ),
]


@pytest.mark.parametrize(("schema", "valid", "invalid"), DRAFTS)
def test_each_draft_by_its_schema_keyword(
    schema: dict[str, Any], valid: bytes, invalid: bytes
) -> None:
    decoder = compile_decoder(Schema("json", json.dumps(schema)))
    assert decoder.to_json(valid, 0, None) == valid
    assert _invalid(decoder, invalid).reason == "schema-mismatch"


def test_formats_are_annotations_in_2020_12() -> None:
    decoder = compile_decoder(Schema("json", '{"format": "date"}'))
    assert decoder.to_json(b'"x"', 0, None) == b'"x"'


# --- references --------------------------------------------------------------------------------


def test_references_resolve_relative_to_an_absolute_id() -> None:
    root = {
        "$id": "https://example.com/schemas/order.json",
        "properties": {"home": {"$ref": "address.json"}, "work": {"$ref": "common/address.json"}},
    }
    references = (
        SchemaReference("address.json", Schema("json", json.dumps(ADDRESS))),
        # a reference may also be named by its full URL
        SchemaReference(
            "https://example.com/schemas/common/address.json", Schema("json", json.dumps(ADDRESS))
        ),
    )
    decoder = compile_decoder(Schema("json", json.dumps(root), references))
    assert decoder.to_json(b'{"home": {"street": "s"}}', 0, None)
    assert "at '/home/street'" in str(_invalid(decoder, b'{"home": {"street": 1}}'))
    assert "at '/work'" in str(_invalid(decoder, b'{"work": {}}'))


def test_references_of_references() -> None:
    street = Schema("json", '{"type": "string", "minLength": 1}')
    address = Schema(
        "json",
        '{"type": "object", "properties": {"street": {"$ref": "street.json"}}}',
        (SchemaReference("street.json", street),),
    )
    root = Schema(
        "json",
        '{"properties": {"home": {"$ref": "address.json"}}}',
        (SchemaReference("address.json", address),),
    )
    decoder = compile_decoder(root)
    assert decoder.to_json(b'{"home": {"street": "s"}}', 0, None)
    assert "at '/home/street'" in str(_invalid(decoder, b'{"home": {"street": ""}}'))


@pytest.mark.parametrize(
    "ref",
    ["https://example.com/elsewhere.json", "file:///etc/passwd", "missing.json", "/etc/passwd"],
)
def test_nothing_is_ever_fetched(ref: str) -> None:
    with pytest.raises(SchemaError, match="does not compile"):
        compile_decoder(Schema("json", json.dumps({"$ref": ref})))


# --- schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "inline json schema is not JSON"),
        ("[1]", "is not a JSON Schema: it is neither an object nor a boolean"),
        ('{"type": "nope"}', "at '/type': \"nope\" is not valid under any of the schemas"),
        ('{"minimum": "x"}', 'at \'/minimum\': "x" is not of type "number"'),
        ('{"$schema": "https://example.com/mine"}', "Unknown meta-schema"),
        ('{"pattern": "(("}', "at '/pattern'"),
    ],
)
def test_schemas_that_do_not_compile(text: str, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        compile_decoder(Schema("json", text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_boolean_schemas() -> None:
    assert compile_decoder(Schema("json", "true")).to_json(b"[1]", 0, None) == b"[1]"
    assert _invalid(compile_decoder(Schema("json", "false")), b"1").reason == "schema-mismatch"


def test_the_decoder_repr_names_the_schema() -> None:
    assert repr(DECODER) == "<JsonSchemaDecoder json schema 2>"
    assert repr(JsonOnlyDecoder()) == "<JsonOnlyDecoder JSON value>"


# --- JSON without a schema ---------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_any_json_passes_through_unchanged(value: Any, indent: bool) -> None:
    text = json.dumps(value, indent=2 if indent else None, ensure_ascii=False).encode()
    assert JsonOnlyDecoder().to_json(text, 0, None) == text.strip()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=60),
        st.text(alphabet='{}[]",:0123456789.eE-+ \n\\utrfalsn\x00é', max_size=60).map(str.encode),
        JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    ),
    st.booleans(),
)
def test_any_bytes_give_their_json_or_invalid_record(payload: bytes, with_schema: bool) -> None:
    decoder: Decoder = DECODER if with_schema else JsonOnlyDecoder()
    try:
        text = decoder.to_json(payload, 0, None)
    except InvalidRecord as exc:
        reason = exc.reason
        assert reason in ("not-json", "schema-mismatch", "too-deep")
    else:
        assert text == payload.strip(b" \t\r\n")
        json.loads(text)


SCHEMA_JSON = st.recursive(
    st.booleans() | st.sampled_from(["string", "integer", "object", 5, None, "#", "x.json"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "properties",
                    "items",
                    "$ref",
                    "$schema",
                    "minimum",
                    "enum",
                    "pattern",
                    "$id",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(SCHEMA_JSON.map(json.dumps), st.text(max_size=30)), st.binary(max_size=20))
def test_any_schema_text_gives_a_decoder_or_schema_error(text: str, payload: bytes) -> None:
    try:
        decoder = compile_decoder(Schema("json", text))
    except SchemaError:
        return
    with contextlib.suppress(InvalidRecord):
        json.loads(decoder.to_json(payload, 0, None))
