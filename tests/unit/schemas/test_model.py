"""A route's value model (`ssegate.schemas.model.ValueModel`): which schemas a batch still
needs (`missing`), fetching them (`fetch`), and each value's JSON text or the fixed reason
it has none (`convert`); with an inline catalog and with a fake one scripted per test."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from typing import Any

import fastavro
import pytest

from ssegate.schemas.catalog import Version
from ssegate.schemas.framing import Framing
from ssegate.schemas.inline import InlineCatalog, InlineSubject
from ssegate.schemas.mapping import JsonMapping
from ssegate.schemas.model import ModelSpec, ValueModel
from ssegate.schemas.schema import (
    CatalogUnavailable,
    InvalidRecord,
    Schema,
    SchemaKind,
    UnknownSchema,
)
from tests.support.waiting import until

QUOTE = {
    "type": "record",
    "name": "Quote",
    "namespace": "com.example",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "volume", "type": "long"},
    ],
}
TRADE = {
    "type": "record",
    "name": "Trade",
    "fields": [{"name": "id", "type": "int"}, {"name": "side", "type": ["null", "string"]}],
}
BROKEN = json.dumps({"type": "record", "name": "Broken", "fields": [{"name": "a", "type": "Nope"}]})
PROTO = (
    'syntax = "proto3";\n'
    "package market;\n"
    "message Quote { string symbol = 1; }\n"
    "message Trade { int64 id = 1; string side = 2; }\n"
)


def avro_bytes(schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), value)
    return out.getvalue()


def confluent(schema_id: int, payload: bytes) -> bytes:
    """The Confluent framing: magic byte 0x00, the 4-byte big-endian id, the payload."""
    return b"\x00" + struct.pack(">I", schema_id) + payload


QUOTE_PAYLOAD = avro_bytes(QUOTE, {"symbol": "ACME", "price": 12.5, "volume": 2**53 + 1})
QUOTE_JSON = b'{"symbol":"ACME","price":12.5,"volume":9007199254740993}'
TRADE_PAYLOAD = avro_bytes(TRADE, {"id": 7, "side": "buy"})
TRADE_JSON = b'{"id":7,"side":"buy"}'


class FakeCatalog:
    """A catalog scripted by the test: schemas by id and by subject, errors on demand,
    and every look-up counted."""

    fetches = 0
    failures = 0
    refused = 0

    def __init__(
        self,
        ids: dict[int, Schema] | None = None,
        subjects: dict[str, Schema] | None = None,
    ) -> None:
        self.name = "fake"
        self.state = "ok"
        self.ids = dict(ids or {})
        self.subjects = dict(subjects or {})
        self.unavailable = False  # by_id and by_subject raise CatalogUnavailable
        self.id_calls: list[int] = []
        self.subject_calls: list[tuple[str, Version]] = []

    def cached(self, schema_id: int) -> Schema | None:
        return self.ids.get(schema_id)

    async def by_id(self, schema_id: int) -> Schema:
        self.id_calls.append(schema_id)
        if self.unavailable:
            raise CatalogUnavailable("catalog 'fake': refused")
        schema = self.ids.get(schema_id)
        if schema is None:
            raise UnknownSchema(f"catalog 'fake': schema id {schema_id}: not found")
        return schema

    async def by_subject(self, subject: str, version: Version) -> Schema:
        self.subject_calls.append((subject, version))
        if self.unavailable:
            raise CatalogUnavailable("catalog 'fake': refused")
        schema = self.subjects.get(subject)
        if schema is None:
            raise UnknownSchema(f"catalog 'fake': subject {subject!r}: not found")
        return schema

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def model(
    catalog: FakeCatalog | InlineCatalog | None,
    *,
    kind: SchemaKind = "avro",
    framing: Framing = "confluent",
    subject: str | None = None,
    version: Version = "latest",
    message: str | None = None,
    max_age: float = 300.0,
) -> ValueModel:
    return ValueModel(
        ModelSpec(
            kind=kind,
            catalog=catalog,
            framing=framing,
            subject=subject,
            version=version,
            message=message,
            mapping=JsonMapping(),
            max_age=max_age,
        )
    )


def invalid(value_model: ValueModel, value: bytes) -> InvalidRecord:
    with pytest.raises(InvalidRecord) as caught:
        value_model.convert(value)
    return caught.value


def avro_schema(schema_id: int, schema: dict[str, Any]) -> Schema:
    return Schema("avro", json.dumps(schema), id=schema_id)


# --- an inline catalog, schema named by subject -------------------------------------------


async def test_an_inline_subject_is_missing_until_fetched_then_converts() -> None:
    catalog = InlineCatalog(
        "inline", {"quotes-value": InlineSubject("avro", text=json.dumps(QUOTE))}
    )
    quotes = model(catalog, framing="none", subject="quotes-value")
    assert quotes.missing([QUOTE_PAYLOAD, QUOTE_PAYLOAD]) == {"subject"}
    await quotes.fetch({"subject"})
    assert quotes.missing([QUOTE_PAYLOAD]) == set()
    assert quotes.convert(QUOTE_PAYLOAD) == QUOTE_JSON


async def test_an_inline_subject_not_in_the_catalog_is_unknown() -> None:
    catalog = InlineCatalog(
        "inline", {"quotes-value": InlineSubject("avro", text=json.dumps(QUOTE))}
    )
    trades = model(catalog, framing="none", subject="trades-value")
    await trades.fetch(trades.missing([TRADE_PAYLOAD]))
    error = invalid(trades, TRADE_PAYLOAD)
    assert error.reason == "unknown-schema"
    assert str(error) == "subject trades-value is not in catalog inline"


# --- framed ids, a fake catalog -------------------------------------------------------------


async def test_missing_names_each_distinct_id_once_and_skips_framing_errors() -> None:
    catalog = FakeCatalog({1: avro_schema(1, QUOTE), 2: avro_schema(2, TRADE)})
    quotes = model(catalog)
    values = [
        confluent(1, QUOTE_PAYLOAD),
        confluent(2, TRADE_PAYLOAD),
        confluent(1, QUOTE_PAYLOAD),
        b"\x01\x00\x00\x00\x01rest",  # magic byte
        b"\x00\x00",  # truncated
        b"",  # truncated
        None,  # tombstone
    ]
    assert quotes.missing(values) == {1, 2}
    await quotes.fetch(quotes.missing(values))
    assert sorted(catalog.id_calls) == [1, 2]
    assert quotes.missing(values) == set()
    assert quotes.convert(confluent(1, QUOTE_PAYLOAD)) == QUOTE_JSON
    assert quotes.convert(confluent(2, TRADE_PAYLOAD)) == TRADE_JSON


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        (
            b"\x07\x00\x00\x00\x01",
            "magic-byte",
            "the value starts with byte 0x07, not the magic byte 0x00 of a schema-registry framing",
        ),
        (
            b"\x00\x00\x01",
            "truncated",
            "the value has 3 bytes, fewer than the 5-byte schema id prefix",
        ),
        (b"", "truncated", "the value has 0 bytes, fewer than the 5-byte schema id prefix"),
    ],
)
async def test_framing_errors_are_reported_by_convert(
    value: bytes, reason: str, message: str
) -> None:
    quotes = model(FakeCatalog({1: avro_schema(1, QUOTE)}))
    assert quotes.missing([value]) == set()
    error = invalid(quotes, value)
    assert (error.reason, str(error)) == (reason, message)


async def test_an_id_the_registry_does_not_have_is_unknown_schema() -> None:
    catalog = FakeCatalog({1: avro_schema(1, QUOTE)})
    quotes = model(catalog)
    value = confluent(9, QUOTE_PAYLOAD)
    await quotes.fetch(quotes.missing([value]))
    error = invalid(quotes, value)
    assert error.reason == "unknown-schema"
    assert str(error) == "schema id 9 is not in catalog fake"
    assert catalog.id_calls == [9]


async def test_an_unavailable_registry_is_registry_unavailable_until_it_answers() -> None:
    catalog = FakeCatalog({3: avro_schema(3, QUOTE)})
    catalog.unavailable = True
    catalog.state = "unavailable: GET /schemas/ids/3: HTTP 503 (retrying)"
    quotes = model(catalog)
    value = confluent(3, QUOTE_PAYLOAD)
    await quotes.fetch(quotes.missing([value]))
    error = invalid(quotes, value)
    assert error.reason == "registry-unavailable"
    assert str(error) == (
        "schema id 3: catalog fake unavailable: GET /schemas/ids/3: HTTP 503 (retrying)"
    )
    # Not remembered: once the registry answers, the next batch fetches it.
    catalog.unavailable = False
    catalog.state = "ok"
    assert quotes.missing([value]) == {3}
    await quotes.fetch({3})
    assert quotes.convert(value) == QUOTE_JSON
    assert catalog.id_calls == [3, 3]


async def test_a_schema_that_does_not_compile_is_bad_schema_and_not_fetched_again() -> None:
    catalog = FakeCatalog({4: Schema("avro", BROKEN, id=4)})
    quotes = model(catalog)
    value = confluent(4, QUOTE_PAYLOAD)
    await quotes.fetch(quotes.missing([value]))
    error = invalid(quotes, value)
    assert error.reason == "bad-schema"
    assert str(error) == (
        "schema 4 cannot be used: avro schema 4 does not compile: unknown type 'Nope' "
        "(neither a primitive type nor a named type the schema or its references define)"
    )
    # remembered: ids are immutable, so neither this batch nor the next asks again
    assert quotes.missing([value, value]) == set()
    await quotes.fetch(quotes.missing([value]))
    assert invalid(quotes, value).reason == "bad-schema"
    assert catalog.id_calls == [4]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (Schema("json", '{"type": "object"}', id=5), "the schema is json, the model avro"),
        (Schema("protobuf", PROTO, id=5), "the schema is protobuf, the model avro"),
    ],
)
async def test_a_schema_of_another_kind_is_bad_schema(schema: Schema, message: str) -> None:
    catalog = FakeCatalog({5: schema})
    quotes = model(catalog)
    value = confluent(5, QUOTE_PAYLOAD)
    await quotes.fetch(quotes.missing([value]))
    error = invalid(quotes, value)
    assert error.reason == "bad-schema"
    assert str(error) == f"schema 5 cannot be used: {message}"
    assert quotes.missing([value]) == set()
    assert catalog.id_calls == [5]


async def test_a_json_model_without_catalog_accepts_json_only() -> None:
    values = model(None, kind="json", framing="none")
    assert values.missing([b"{}", b"not json", None]) == set()
    assert values.convert(b' {"price": 1.50, "tags": ["a"]}\n') == b'{"price": 1.50, "tags": ["a"]}'
    assert values.convert(b"[1,2]") == b"[1,2]"
    error = invalid(values, b"{'single': 'quotes'}")
    assert error.reason == "not-json"
    assert invalid(values, b'{"a": 1} trailing').reason == "not-json"
    assert invalid(values, b"\xff").reason == "not-json"


async def test_tombstones_are_never_missing() -> None:
    catalog = FakeCatalog({1: avro_schema(1, QUOTE)}, {"quotes-value": avro_schema(1, QUOTE)})
    assert model(catalog).missing([None, None]) == set()
    assert model(catalog, framing="none", subject="quotes-value").missing([None]) == set()
    assert catalog.id_calls == []
    assert catalog.subject_calls == []


async def test_apicurio_framing_reads_an_eight_byte_id() -> None:
    catalog = FakeCatalog({2**33: avro_schema(2**33, QUOTE)})
    quotes = model(catalog, framing="apicurio")
    value = b"\x00" + struct.pack(">Q", 2**33) + QUOTE_PAYLOAD
    assert quotes.missing([value]) == {2**33}
    await quotes.fetch({2**33})
    assert quotes.convert(value) == QUOTE_JSON


# --- protobuf: message indexes after the id --------------------------------------------------


async def test_protobuf_framing_with_message_indexes_picks_the_message() -> None:
    catalog = FakeCatalog({21: Schema("protobuf", PROTO, id=21)})
    market = model(catalog, kind="protobuf")
    # Trade{id: 5, side: "buy"}: field 1 varint 5, field 2 length-delimited "buy"
    trade = b"\x08\x05\x12\x03buy"
    quote = b"\x0a\x04ACME"  # Quote{symbol: "ACME"}
    # indexes as zig-zag varints: count 1 (0x02), index 1 (0x02): the second message
    second = confluent(21, b"\x02\x02" + trade)
    first = confluent(21, b"\x00" + quote)  # count 0: the first message
    assert market.missing([second, first]) == {21}
    await market.fetch({21})
    assert market.convert(second) == b'{"id":"5","side":"buy"}'
    assert market.convert(first) == b'{"symbol":"ACME"}'
    bad_count = confluent(21, b"\x01" + trade)  # zig-zag -1: a negative count
    error = invalid(market, bad_count)
    assert error.reason == "message-index"
    assert invalid(market, confluent(21, b"\x02")).reason == "truncated"


# --- `latest`, asked again after max_age ----------------------------------------------------


async def test_latest_is_asked_again_in_the_background_after_max_age() -> None:
    old = {"type": "record", "name": "Quote", "fields": [{"name": "symbol", "type": "string"}]}
    catalog = FakeCatalog(subjects={"quotes-value": Schema("avro", json.dumps(old), version=1)})
    quotes = model(catalog, framing="none", subject="quotes-value", max_age=0.05)
    first = avro_bytes(old, {"symbol": "ACME"})
    assert quotes.missing([first]) == {"subject"}
    await quotes.fetch({"subject"})
    assert quotes.convert(first) == b'{"symbol":"ACME"}'
    assert quotes.missing([first]) == set()
    await asyncio.sleep(0.01)
    assert catalog.subject_calls == [("quotes-value", "latest")]  # fresh: not asked again

    catalog.subjects["quotes-value"] = Schema("avro", json.dumps(QUOTE), version=2)
    await asyncio.sleep(0.06)
    assert quotes.missing([QUOTE_PAYLOAD]) == set()  # never reported: records do not wait
    await until(lambda: len(catalog.subject_calls) == 2, 2.0, interval=0.005)
    assert catalog.subject_calls[1] == ("quotes-value", "latest")
    await until(lambda: _converts(quotes, QUOTE_PAYLOAD), 2.0, interval=0.005)
    assert quotes.convert(QUOTE_PAYLOAD) == QUOTE_JSON


async def test_a_numbered_version_is_not_asked_again() -> None:
    catalog = FakeCatalog(subjects={"quotes-value": avro_schema(1, QUOTE)})
    quotes = model(catalog, framing="none", subject="quotes-value", version=3, max_age=0.01)
    await quotes.fetch(quotes.missing([QUOTE_PAYLOAD]))
    await asyncio.sleep(0.03)
    assert quotes.missing([QUOTE_PAYLOAD]) == set()
    await asyncio.sleep(0.03)
    assert catalog.subject_calls == [("quotes-value", 3)]
    assert quotes.convert(QUOTE_PAYLOAD) == QUOTE_JSON


async def test_a_latest_schema_that_does_not_compile_is_asked_again_after_max_age() -> None:
    """A subject's `latest` is not immutable as an id is: once the producer registers a
    schema that compiles, the model picks it up after max_age instead of refusing every
    record as `bad-schema` until the gateway restarts."""
    broken = Schema("avro", BROKEN, subject="quotes-value", version=1)
    catalog = FakeCatalog(subjects={"quotes-value": broken})
    quotes = model(catalog, framing="none", subject="quotes-value", max_age=0.05)
    await quotes.fetch(quotes.missing([QUOTE_PAYLOAD]))
    assert invalid(quotes, QUOTE_PAYLOAD).reason == "bad-schema"

    catalog.subjects["quotes-value"] = Schema("avro", json.dumps(QUOTE), version=2)
    await asyncio.sleep(0.06)
    await quotes.fetch(quotes.missing([QUOTE_PAYLOAD]))
    await until(
        lambda: _converts(quotes, QUOTE_PAYLOAD),
        1.0,
        interval=0.005,
        message="the model to use the latest schema, which compiles now",
    )
    assert len(catalog.subject_calls) == 2


def _converts(value_model: ValueModel, value: bytes) -> bool:
    try:
        value_model.convert(value)
    except InvalidRecord:
        return False
    return True
