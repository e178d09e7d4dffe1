"""Schema models end to end, one per way a producer names its schema: Protobuf with an
imported file through the Confluent-compatible API, JSON Schema through it, Avro through
Apicurio's native API with 8-byte global ids and 4-byte content ids, Avro inline in the
configuration, and value filters on JSON and Avro topics. Each test produces to a fresh
one-partition topic, starts `ssegate run`, and compares what a client reads, block by
block: ids, event types and the exact `data:` JSON (docs/schemas.md).

Every test's topic ends with a record some stream expects; the streams are read until
each has its expected events, then half a second more, so an event too many shows too.
The id-only checkpoints after records a stream passed over (filtered or invalid) are
checked by the last test, live and replayed from the ring.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.support.apicurio import ApicurioRegistry
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.serializers import (
    apicurio_frame,
    avro_binary,
    compile_protos,
    confluent_frame,
    message_class,
    message_indexes,
)
from tests.support.sse_client import SseStream, metric_value, open_stream

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("apicurio")]

# A heartbeat this short writes the id-only checkpoint after passed-over records quickly.
SSE = {"heartbeat": 0.2}
WAIT_TIMEOUT = 20.0  # seconds for a stream's expected events (about 1 s when all is well)
QUIET = 0.5  # seconds more in which an unexpected event would arrive: the ring holds them all


# --- what a client reads ------------------------------------------------------------------


def _zigzag(value: int) -> bytes:
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def position(next_offset: int) -> str:
    """The id of a one-partition topic read up to `next_offset` (docs/streams.md: version 1,
    one partition, partition 0 at `next_offset`, zig-zag varints, padded base64url)."""
    raw = b"\x01" + _zigzag(1) + _zigzag(0) + _zigzag(next_offset)
    return base64.urlsafe_b64encode(raw).decode()


def message(offset: int, data: str) -> str:
    return f"id:{position(offset + 1)}\ndata:{data}"


def invalid(offset: int, reason: str) -> str:
    data = f'{{"partition":0,"offset":{offset},"reason":"{reason}"}}'
    return f"id:{position(offset + 1)}\nevent:invalid\ndata:{data}"


def checkpoint(next_offset: int) -> str:
    return f"id:{position(next_offset)}"


def blocks(raw: bytes) -> list[str]:
    """The stream's events as text blocks without their blank line. Comments (the initial
    one, heartbeats) and id-only checkpoints are left out: when a heartbeat writes one
    depends on timing (and on a bug: test_a_checkpoint_moves_past_trailing_passed_over_records)."""
    return [
        block
        for block in raw.decode("utf-8", "replace").split("\n\n")
        if block and "\n" in block and not block.startswith(":")
    ]


async def read_all(port: int, expected: dict[str, list[str]]) -> dict[str, list[str]]:
    """The events new streams of these paths get, read at once: until each has its last
    expected event (or WAIT_TIMEOUT passed; the comparison then shows the difference), then
    QUIET seconds more, so that an event too many shows too. Each test's topic ends with a
    record some stream expects: by then the gateway has read them all."""
    paths = list(expected)
    streams = [await open_stream(port, path) for path in paths]
    pairs = list(zip(paths, streams, strict=True))
    try:
        assert [s.response.status for s in streams] == [200] * len(paths)

        async def until_last(stream: SseStream, events: list[str]) -> None:
            if events:
                with contextlib.suppress(TimeoutError):
                    await stream.wait_raw(f"{events[-1]}\n\n".encode(), WAIT_TIMEOUT)

        await asyncio.gather(*(until_last(s, expected[p]) for p, s in pairs))
        await asyncio.gather(*(stream.quiet_for(QUIET) for stream in streams))
        return {path: blocks(bytes(stream.raw)) for path, stream in pairs}
    finally:
        for stream in streams:
            await stream.close()


def registry_client(apicurio: ApicurioRegistry) -> SchemaRegistryClient:
    """A client of the registry's Confluent-compatible API. With a timeout: the client has
    none by default, so a registry that stalls would hang the test until pytest's."""
    return SchemaRegistryClient({"url": apicurio.ccompat_url, "timeout": 30})


def unique(name: str) -> str:
    """Subjects and artifacts unique to the test: the registry lives for the session."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- 1. Protobuf through the Confluent-compatible API ------------------------------------

VENUE_PROTO = """syntax = "proto3";
package example.common;

message Venue {
  string code = 1;
  string name = 2;
}
"""

QUOTE_PROTO = """syntax = "proto3";
package example;

import "common/venue.proto";

message Heartbeat {
  int64 sequence_no = 1;
}

message Quote {
  string symbol = 1;
  int64 volume = 2;
  double price = 3;
  example.common.Venue venue = 4;
  map<string, int64> counts = 5;
  string trade_id = 6;
  repeated Trade trades = 7;

  message Trade {
    uint64 leg_quantity = 1;
    string side = 2;
  }
}
"""


def protobuf_value(message: Any, schema_id: int, topic: str) -> bytes:
    """`message` as confluent-kafka's ProtobufSerializer frames it, naming `schema_id`.

    The serializer cannot use a schema registered as .proto text in Apicurio 3.3.3's
    ccompat API: it looks schemas up as a base64 FileDescriptorProto (40403, no match),
    and `use.latest.version`/`use.schema.id` fetch `format=serialized`, which Apicurio
    answers with unusable bytes. So it writes against a mock registry, and the 4 id bytes
    are replaced by the real registry's id; magic byte, message indexes and payload are the
    serializer's own, checked here against Confluent's documented layout."""
    client = SchemaRegistryClient.new_client({"url": f"mock://{topic}"})
    serializer = ProtobufSerializer(type(message), client, {"use.deprecated.format": False})
    framed = serializer(message, SerializationContext(topic, MessageField.VALUE))
    assert isinstance(framed, bytes)
    assert framed[0] == 0
    return confluent_frame(schema_id, framed[5:])


async def test_protobuf_with_an_imported_file_and_nested_messages_through_ccompat(
    kafka: KafkaCluster,
    gateways: Callable[..., GatewayProcess],
    apicurio: ApicurioRegistry,
) -> None:
    topic = kafka.new_topic(partitions=1)
    venue_subject = unique("common-venue")
    apicurio.register_ccompat(venue_subject, VENUE_PROTO, "PROTOBUF")
    reference = {"name": "common/venue.proto", "subject": venue_subject, "version": 1}
    schema_id = apicurio.register_ccompat(f"{topic}-value", QUOTE_PROTO, "PROTOBUF", [reference])

    pool = compile_protos(
        {"common/venue.proto": VENUE_PROTO, "quote.proto": QUOTE_PROTO}, "quote.proto"
    )
    quote_class = message_class(pool, "example.Quote")
    trade_class = message_class(pool, "example.Quote.Trade")
    heartbeat_class = message_class(pool, "example.Heartbeat")
    venue_class = message_class(pool, "example.common.Venue")
    # Quote's nested types are [CountsEntry, Trade]: the map's entry type counts.
    nested = pool.FindMessageTypeByName("example.Quote").nested_types
    assert [t.name for t in nested] == ["CountsEntry", "Trade"]

    full = quote_class(
        symbol="AAPL",
        volume=9_007_199_254_740_993,
        price=189.52,
        venue=venue_class(code="XNAS", name="Nasdaq"),
        counts={"bids": 3},
        trade_id="T-1",
        trades=[trade_class(leg_quantity=18_446_744_073_709_551_615, side="BUY")],
    )
    trade = trade_class(leg_quantity=7, side="SELL")
    heartbeat = heartbeat_class(sequence_no=42)
    empty = quote_class(symbol="MSFT")
    last = quote_class(symbol="LAST", volume=-1, price=-0.5)
    values = [protobuf_value(m, schema_id, topic) for m in (full, trade, heartbeat, empty)]
    # Confluent's framing: 0x00, the id, indexes [1] (Quote), [1, 1] (Quote.Trade) and the
    # single byte 0x00 for the first message (Heartbeat), then the message.
    assert values[0] == b"\x00" + schema_id.to_bytes(4, "big") + b"\x02\x02" + (
        full.SerializeToString()
    )
    assert values[1][5:8] == b"\x04\x02\x02" == message_indexes([1, 1])
    assert values[2][5:6] == b"\x00"
    assert values[1][8:] == trade.SerializeToString()
    no_message = confluent_frame(schema_id, trade.SerializeToString(), [1, 2])  # offset 4
    values += [no_message, protobuf_value(last, schema_id, topic)]
    kafka.produce(topic, [Record(value) for value in values])

    model = {"model": "protobuf", "catalog": "registry"}
    gateway = gateways(
        [
            {"path": "/pb", "topic": topic, "value": model},
            {"path": "/pb-number", "topic": topic, "value": {**model, "int64": "number"}},
            {
                "path": "/pb-json",
                "topic": topic,
                "value": {**model, "field_names": "json"},
                "on_invalid": "event",
            },
        ],
        catalogs={"registry": {"type": "schema-registry", "url": apicurio.ccompat_url}},
        sse=SSE,
    )
    expected = {
        "/pb": [
            message(
                0,
                '{"symbol":"AAPL","volume":"9007199254740993","price":189.52,'
                '"venue":{"code":"XNAS","name":"Nasdaq"},"counts":{"bids":"3"},'
                '"trade_id":"T-1","trades":[{"leg_quantity":"18446744073709551615",'
                '"side":"BUY"}]}',
            ),
            message(1, '{"leg_quantity":"7","side":"SELL"}'),
            message(2, '{"sequence_no":"42"}'),
            message(
                3,
                '{"symbol":"MSFT","volume":"0","price":0.0,"counts":{},"trade_id":"","trades":[]}',
            ),
            message(
                5,
                '{"symbol":"LAST","volume":"-1","price":-0.5,"counts":{},"trade_id":"",'
                '"trades":[]}',
            ),
        ],
        "/pb-number": [
            message(
                0,
                '{"symbol":"AAPL","volume":9007199254740993,"price":189.52,'
                '"venue":{"code":"XNAS","name":"Nasdaq"},"counts":{"bids":3},'
                '"trade_id":"T-1","trades":[{"leg_quantity":18446744073709551615,'
                '"side":"BUY"}]}',
            ),
            message(1, '{"leg_quantity":7,"side":"SELL"}'),
            message(2, '{"sequence_no":42}'),
            message(
                3,
                '{"symbol":"MSFT","volume":0,"price":0.0,"counts":{},"trade_id":"","trades":[]}',
            ),
            message(
                5,
                '{"symbol":"LAST","volume":-1,"price":-0.5,"counts":{},"trade_id":"","trades":[]}',
            ),
        ],
        "/pb-json": [
            message(
                0,
                '{"symbol":"AAPL","volume":"9007199254740993","price":189.52,'
                '"venue":{"code":"XNAS","name":"Nasdaq"},"counts":{"bids":"3"},'
                '"tradeId":"T-1","trades":[{"legQuantity":"18446744073709551615",'
                '"side":"BUY"}]}',
            ),
            message(1, '{"legQuantity":"7","side":"SELL"}'),
            message(2, '{"sequenceNo":"42"}'),
            message(
                3,
                '{"symbol":"MSFT","volume":"0","price":0.0,"counts":{},"tradeId":"","trades":[]}',
            ),
            invalid(4, "message-index"),
            message(
                5,
                '{"symbol":"LAST","volume":"-1","price":-0.5,"counts":{},"tradeId":"","trades":[]}',
            ),
        ],
    }
    assert await read_all(gateway.port, expected) == expected


# --- 2. JSON Schema through the Confluent-compatible API ---------------------------------

QUOTE_JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Quote",
    "type": "object",
    "properties": {
        "symbol": {"type": "string"},
        "price": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["symbol", "price"],
}


async def test_json_schema_records_pass_as_produced_and_invalid_ones_are_skipped_or_signalled(
    kafka: KafkaCluster,
    gateways: Callable[..., GatewayProcess],
    apicurio: ApicurioRegistry,
) -> None:
    topic = kafka.new_topic(partitions=1)
    client = registry_client(apicurio)
    serialize = JSONSerializer(json.dumps(QUOTE_JSON_SCHEMA), client)  # registers <topic>-value
    context = SerializationContext(topic, MessageField.VALUE)
    good = [
        serialize({"price": 189.5, "symbol": "AAPL", "tags": ["tech", "caf\u00e9"]}, context),
        serialize({"symbol": "MSFT", "price": 1e21, "extra": {"nested": [1, None]}}, context),
    ]
    schema_id = int.from_bytes(good[0][1:5], "big")
    assert all(value[:5] == b"\x00" + schema_id.to_bytes(4, "big") for value in good)
    produced = [value[5:].decode("utf-8") for value in good]
    # The serializer's own text (compact, keys in the order given, UTF-8 as is).
    assert produced == [
        '{"price":189.5,"symbol":"AAPL","tags":["tech","caf\u00e9"]}',
        '{"symbol":"MSFT","price":1e+21,"extra":{"nested":[1,null]}}',
    ]
    by_hand = ' \n{ "symbol" : "A\\u0041PL", "price": 1.50E2 }\t\r\n'  # whitespace, escapes
    values = [
        good[0],
        confluent_frame(schema_id, b'{"symbol":42,"price":1}'),  # 1: symbol not a string
        good[1],
        confluent_frame(schema_id, b'{"symbol":"IBM"}'),  # 3: no price
        confluent_frame(schema_id, b'{"symbol":"IBM",'),  # 4: not JSON
        confluent_frame(schema_id, by_hand.encode()),  # 5
        confluent_frame(schema_id, b'{"symbol":"X","price":"1"}'),  # 6: the last, invalid
    ]
    kafka.produce(topic, [Record(value) for value in values])
    model = {"model": "json", "catalog": "registry"}
    gateway = gateways(
        [
            {"path": "/skip", "topic": topic, "value": model},
            {"path": "/event", "topic": topic, "value": model, "on_invalid": "event"},
        ],
        catalogs={"registry": {"type": "schema-registry", "url": apicurio.ccompat_url}},
        sse=SSE,
    )
    trimmed = '{ "symbol" : "A\\u0041PL", "price": 1.50E2 }'
    expected = {
        "/skip": [
            message(0, produced[0]),
            message(2, produced[1]),
            message(5, trimmed),
        ],
        "/event": [
            message(0, produced[0]),
            invalid(1, "schema-mismatch"),
            message(2, produced[1]),
            invalid(3, "schema-mismatch"),
            invalid(4, "not-json"),
            message(5, trimmed),
            invalid(6, "schema-mismatch"),
        ],
    }
    assert await read_all(gateway.port, expected) == expected
    for reason, count in (("schema-mismatch", 3), ("not-json", 1)):
        sample = f'ssegate_invalid_records_total{{topic="{topic}",reason="{reason}"}}'
        assert await metric_value(gateway.port, sample) == count


# --- 3. Apicurio's native API: 8-byte global ids and 4-byte content ids ------------------

TRADE_AVRO = {
    "type": "record",
    "name": "Trade",
    "namespace": "demo",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "size", "type": "long"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def trade(n: int) -> dict[str, Any]:
    return {
        "symbol": "AAPL",
        "price": 189.25 + n,
        "size": 9_007_199_254_740_993 + n,
        "at": datetime(2024, 1, 2, 3, 4, 5, 6000 + n * 1000, tzinfo=UTC),
        "note": f"n{n}" if n % 2 else None,
    }


def trade_json(n: int) -> str:
    note = f'"n{n}"' if n % 2 else "null"
    return (
        f'{{"symbol":"AAPL","price":{189.25 + n},"size":{9_007_199_254_740_993 + n},'
        f'"at":"2024-01-02T03:04:05.{6 + n:03d}Z","note":{note}}}'
    )


async def test_apicurio_global_ids_in_8_bytes_and_content_ids_in_4_bytes(
    kafka: KafkaCluster,
    gateways: Callable[..., GatewayProcess],
    apicurio: ApicurioRegistry,
) -> None:
    """Zilla issue #1202: the id's width is the producers' choice, so both must work by
    configuration, and a consumer set to the other width must not misread a record."""
    text = json.dumps(TRADE_AVRO)
    # The same content again and again: each registration takes a new global id for the
    # same content id, so the two soon differ (whatever the session registered before).
    registered = apicurio.register_v3(unique("trade-a"), text, "AVRO")
    for _ in range(3):
        if registered.global_id != registered.content_id:
            break
        registered = apicurio.register_v3(unique("trade-b"), text, "AVRO")
    global_id, content_id = registered.global_id, registered.content_id
    assert global_id != content_id
    topic = kafka.new_topic(partitions=1)
    payloads = [avro_binary(TRADE_AVRO, trade(n)) for n in range(4)]
    values = [
        apicurio_frame(global_id, payloads[0], width=8),
        apicurio_frame(content_id, payloads[1], width=4),
        apicurio_frame(global_id, payloads[2], width=8),
        apicurio_frame(content_id, payloads[3], width=4),
    ]
    assert values[0][:9] == b"\x00" + global_id.to_bytes(8, "big")
    kafka.produce(topic, [Record(value) for value in values])
    gateway = gateways(
        [
            {
                "path": "/global",
                "topic": topic,
                "value": {"model": "avro", "catalog": "native"},
                "on_invalid": "event",
            },
            {
                "path": "/content",
                "topic": topic,
                "value": {"model": "avro", "catalog": "native4"},
                "on_invalid": "event",
            },
            {
                "path": "/content-skip",
                "topic": topic,
                "value": {"model": "avro", "catalog": "native4"},
            },
        ],
        catalogs={
            "native": {"type": "apicurio", "url": apicurio.url},  # globalId, 8-byte
            "native4": {
                "type": "apicurio",
                "url": apicurio.url,
                "use_id": "contentId",
                "id_encoding": "4-byte",
            },
        },
        sse=SSE,
    )
    expected = {
        # A 4-byte record read as 8 bytes names an id made of its content id and the first
        # payload bytes; an 8-byte one read as 4 bytes names id 0: neither exists.
        "/global": [
            message(0, trade_json(0)),
            invalid(1, "unknown-schema"),
            message(2, trade_json(2)),
            invalid(3, "unknown-schema"),
        ],
        "/content": [
            invalid(0, "unknown-schema"),
            message(1, trade_json(1)),
            invalid(2, "unknown-schema"),
            message(3, trade_json(3)),
        ],
        "/content-skip": [message(1, trade_json(1)), message(3, trade_json(3))],
    }
    assert await read_all(gateway.port, expected) == expected


# --- 4. Value filters ----------------------------------------------------------------------


def by_params(*conditions: tuple[str, str]) -> list[dict[str, Any]]:
    """One filter item whose value conditions (path, the parameter it must equal) all hold."""
    value = [{"path": path, "equals": f"${{params.{name}}}"} for path, name in conditions]
    return [{"value": value[0] if len(value) == 1 else value}]


async def test_value_filters_on_a_json_topic_select_by_fields_all_conditions_holding(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    values = [
        b'{"symbol":"AAPL","venue":{"code":"XNAS"},"tags":["tech","mega"],"halted":false}',
        b'{"symbol":"MSFT","venue":{"code":"XNAS"},"tags":["cloud"],"halted":null}',
        b'{"price":1,"venue":{"code":"XNAS"}}',  # 2: no symbol
        b"AAPL XNAS tech",  # 3: not JSON
        b'{"symbol":"AAPL","venue":"XNAS","tags":"tech"}',  # 4: no $.venue.code, no $.tags[0]
        b'{"symbol":"AAPL","venue":{"code":"ARCX"},"tags":[]}',  # 5
        b'{"symbol":42,"venue":{"code":"XNAS","extra":[1]}}',  # 6: a number compares as "42"
        b'{"symbol":"MSFT","halted":true}',  # 7: the last
    ]
    kafka.produce(topic, [Record(value) for value in values])
    model = {"model": "json"}
    symbol = ("$.symbol", "symbol")
    gateway = gateways(
        [
            {"path": "/by/{symbol}", "topic": topic, "value": model, "filters": by_params(symbol)},
            {
                "path": "/at/{symbol}/{venue}",
                "topic": topic,
                "value": model,
                "filters": by_params(symbol, ("$.venue.code", "venue")),
            },
            {
                "path": "/tag/{tag}",
                "topic": topic,
                "value": model,
                "filters": by_params(("$.tags[0]", "tag")),
            },
            {
                "path": "/halted/{state}",
                "topic": topic,
                "value": model,
                "filters": by_params(("$['halted']", "state")),
            },
            # Without a model the value itself is read as JSON for the filter.
            {"path": "/raw/{symbol}", "topic": topic, "filters": by_params(symbol)},
        ],
        sse=SSE,
    )
    text = [value.decode() for value in values]
    expected = {
        "/by/AAPL": [message(0, text[0]), message(4, text[4]), message(5, text[5])],
        "/by/MSFT": [message(1, text[1]), message(7, text[7])],
        "/by/42": [message(6, text[6])],
        "/by/IBM": [],
        "/at/AAPL/XNAS": [message(0, text[0])],
        "/at/AAPL/ARCX": [message(5, text[5])],
        "/at/MSFT/ARCX": [],
        "/at/42/XNAS": [message(6, text[6])],
        "/tag/tech": [message(0, text[0])],
        "/tag/cloud": [message(1, text[1])],
        # Only a field that is there and null matches "null": a missing one never does.
        "/halted/null": [message(1, text[1])],
        "/halted/false": [message(0, text[0])],
        "/halted/true": [message(7, text[7])],
        "/raw/AAPL": [message(0, text[0]), message(4, text[4]), message(5, text[5])],
    }
    assert await read_all(gateway.port, expected) == expected
    sample = f'ssegate_invalid_records_total{{topic="{topic}",reason="not-json"}}'
    assert await metric_value(gateway.port, sample) == 1  # once, whatever reads it


QUOTE_AVRO = {
    "type": "record",
    "name": "Quote",
    "namespace": "demo",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "price", "type": "double"},
        {
            "name": "venue",
            "type": [
                "null",
                {"type": "record", "name": "Venue", "fields": [{"name": "code", "type": "string"}]},
            ],
            "default": None,
        },
        {"name": "legs", "type": {"type": "array", "items": "long"}},
    ],
}


async def test_value_filters_on_an_avro_topic_compare_the_converted_json(
    kafka: KafkaCluster,
    gateways: Callable[..., GatewayProcess],
    apicurio: ApicurioRegistry,
) -> None:
    topic = kafka.new_topic(partitions=1)
    client = registry_client(apicurio)
    serialize = AvroSerializer(client, json.dumps(QUOTE_AVRO))
    context = SerializationContext(topic, MessageField.VALUE)
    quotes: list[dict[str, Any]] = [
        {"symbol": "AAPL", "price": 189.5, "venue": {"code": "XNAS"}, "legs": [7, 8]},
        {"symbol": "MSFT", "price": 410.25, "venue": {"code": "XNAS"}, "legs": []},
        {"symbol": "AAPL", "price": 190.0, "venue": None, "legs": [9]},  # no $.venue.code
        {"symbol": "AAPL", "price": 190.5, "venue": {"code": "ARCX"}, "legs": [7]},
        {"symbol": "MSFT", "price": 411.0, "venue": None, "legs": [7]},  # the last
    ]
    kafka.produce(topic, [Record(serialize(quote, context)) for quote in quotes])
    model = {"model": "avro", "catalog": "registry"}
    symbol = ("$.symbol", "symbol")
    gateway = gateways(
        [
            {"path": "/by/{symbol}", "topic": topic, "value": model, "filters": by_params(symbol)},
            {
                "path": "/at/{symbol}/{venue}",
                "topic": topic,
                "value": model,
                "filters": by_params(symbol, ("$.venue.code", "venue")),
            },
            {
                "path": "/leg/{symbol}/{leg}",
                "topic": topic,
                "value": model,
                "filters": by_params(symbol, ("$.legs[0]", "leg")),
            },
        ],
        catalogs={"registry": {"type": "schema-registry", "url": apicurio.ccompat_url}},
        sse=SSE,
    )
    data = [
        '{"symbol":"AAPL","price":189.5,"venue":{"code":"XNAS"},"legs":[7,8]}',
        '{"symbol":"MSFT","price":410.25,"venue":{"code":"XNAS"},"legs":[]}',
        '{"symbol":"AAPL","price":190.0,"venue":null,"legs":[9]}',
        '{"symbol":"AAPL","price":190.5,"venue":{"code":"ARCX"},"legs":[7]}',
        '{"symbol":"MSFT","price":411.0,"venue":null,"legs":[7]}',
    ]
    expected = {
        "/by/AAPL": [message(0, data[0]), message(2, data[2]), message(3, data[3])],
        "/by/MSFT": [message(1, data[1]), message(4, data[4])],
        "/by/IBM": [],
        "/at/AAPL/XNAS": [message(0, data[0])],
        "/at/AAPL/ARCX": [message(3, data[3])],
        "/at/MSFT/XNAS": [message(1, data[1])],
        "/leg/AAPL/7": [message(0, data[0]), message(3, data[3])],
        "/leg/MSFT/7": [message(4, data[4])],
    }
    assert await read_all(gateway.port, expected) == expected


# --- 5. An inline catalog: the schema in the configuration, records without framing -------

TICK_AVRO = {
    "type": "record",
    "name": "Tick",
    "namespace": "demo.inline",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "bid", "type": "double"},
        {"name": "size", "type": "long"},
        {"name": "flag", "type": ["null", "string", "long"], "default": None},
        {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}},
    ],
}


async def test_an_inline_avro_schema_reads_unframed_records_by_subject(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    ticks: list[dict[str, Any]] = [
        {"symbol": "AAPL", "bid": 189.5, "size": 9_007_199_254_740_993, "side": "BUY"},
        {"symbol": "MSFT", "bid": -0.25, "size": -1, "flag": "halted", "side": "SELL"},
        {"symbol": "IBM", "bid": 1e-7, "size": 0, "flag": 42, "side": "BUY"},
    ]
    payloads = [avro_binary(TICK_AVRO, tick) for tick in ticks]
    values = [
        payloads[0],
        payloads[1][:-3],  # 1: cut inside the record
        payloads[1],
        payloads[2] + b"\x00",  # 3: a byte left over
        payloads[2],
    ]
    records = [Record(value, key=b"AAPL") for value in values]
    kafka.produce(topic, [*records, Record(None, key=b"AAPL")])  # 5: a tombstone
    schema = json.dumps(TICK_AVRO)
    subject = {"type": "avro", "schema": schema}
    gateway = gateways(
        [
            {  # the subject by default: <topic>-value
                "path": "/ticks",
                "topic": topic,
                "value": {"model": "avro", "catalog": "inline0"},
                "on_invalid": "event",
            },
            {
                "path": "/ticks-tagged",
                "topic": topic,
                "value": {
                    "model": "avro",
                    "catalog": "inline0",
                    "subject": "quotes-value",
                    "unions": "tagged",
                    "int64": "string",
                },
            },
        ],
        catalogs={
            "inline0": {
                "type": "inline",
                "subjects": {f"{topic}-value": subject, "quotes-value": subject},
            }
        },
        sse=SSE,
    )
    plain = [
        '{"symbol":"AAPL","bid":189.5,"size":9007199254740993,"flag":null,"side":"BUY"}',
        '{"symbol":"MSFT","bid":-0.25,"size":-1,"flag":"halted","side":"SELL"}',
        '{"symbol":"IBM","bid":1e-7,"size":0,"flag":42,"side":"BUY"}',
    ]
    tagged = [
        '{"symbol":"AAPL","bid":189.5,"size":"9007199254740993","flag":null,"side":"BUY"}',
        '{"symbol":"MSFT","bid":-0.25,"size":"-1","flag":{"string":"halted"},"side":"SELL"}',
        '{"symbol":"IBM","bid":1e-7,"size":"0","flag":{"long":"42"},"side":"BUY"}',
    ]
    delete = f"id:{position(6)}\nevent:delete\ndata:QUFQTA=="  # never converted
    expected = {
        "/ticks": [
            message(0, plain[0]),
            invalid(1, "truncated"),
            message(2, plain[1]),
            invalid(3, "schema-mismatch"),
            message(4, plain[2]),
            delete,
        ],
        "/ticks-tagged": [
            message(0, tagged[0]),
            message(2, tagged[1]),
            message(4, tagged[2]),
            delete,
        ],
    }
    assert await read_all(gateway.port, expected) == expected


# --- checkpoints past records a stream passed over -----------------------------------------


def events_and_checkpoints(raw: bytes) -> list[str]:
    """The stream's blocks, comments left out, id-only checkpoints kept."""
    return [
        block
        for block in raw.decode("utf-8", "replace").split("\n\n")
        if block and not block.startswith(":")
    ]


@pytest.mark.parametrize(
    "arrival",
    [
        "live",
        "ring",
    ],
)
async def test_a_checkpoint_moves_past_trailing_passed_over_records(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess], arrival: str
) -> None:
    """docs/streams.md (heartbeats) and docs/schemas.md (`on_invalid: skip`): records the
    stream's filter rejected, or its model refused, after its last event are passed by an
    id-only checkpoint at the next heartbeat, so a resume never reads them again. Whether
    the stream met them live or replayed them from the ring must not matter."""
    topic = kafka.new_topic(partitions=1)
    first = b'{"symbol":"AAPL","n":0}'
    rest = [b'{"symbol":"AAPL","n":1}', b'{"symbol":"MSFT"}', b"not json"]  # offsets 1 to 3
    model = {"model": "json"}
    gateway = gateways(
        [
            {
                "path": "/by/{symbol}",
                "topic": topic,
                "value": model,
                "filters": by_params(("$.symbol", "symbol")),
            },
            {"path": "/all", "topic": topic, "value": model, "on_invalid": "event"},
        ],
        sse=SSE,
    )
    if arrival == "live":
        kafka.produce(topic, [Record(first)])
        stream = await open_stream(gateway.port, "/by/AAPL")
        await stream.next_events(1)  # from now on a member of the live group
        kafka.produce(topic, [Record(value) for value in rest])
    else:
        kafka.produce(topic, [Record(value) for value in [first, *rest]])
        everything = await open_stream(gateway.port, "/all")
        await everything.next_events(4)  # the reader holds all four in its ring
        await everything.close()
        stream = await open_stream(gateway.port, "/by/AAPL")  # replays them from the ring
    expected = [message(0, first.decode()), message(1, rest[0].decode()), checkpoint(4)]
    with contextlib.suppress(TimeoutError):
        await stream.wait_raw(f"{expected[-1]}\n\n".encode(), 5.0)
    await stream.close()
    assert events_and_checkpoints(bytes(stream.raw)) == expected


TICK_PROTO = """syntax = "proto3";
package example.ticks;
import "google/protobuf/timestamp.proto";

message Tick {
  string symbol = 1;
  int64 volume = 2;
  google.protobuf.Timestamp at = 3;
}
"""


async def test_protobuf_records_of_the_python_serializer_with_its_own_registration(
    kafka: KafkaCluster,
    gateways: Callable[..., GatewayProcess],
    apicurio: ApicurioRegistry,
) -> None:
    """confluent-kafka's ProtobufSerializer registers the schema itself, as a base64
    FileDescriptorProto (not .proto text): the gateway loads that descriptor as it is."""
    topic = kafka.new_topic(partitions=1)
    pool = compile_protos({"ticks.proto": TICK_PROTO}, "ticks.proto")
    tick_class = message_class(pool, "example.ticks.Tick")
    serializer = ProtobufSerializer(
        tick_class, registry_client(apicurio), {"use.deprecated.format": False}
    )
    context = SerializationContext(topic, MessageField.VALUE)
    ticks = []
    for n in range(3):
        tick = tick_class(symbol="AAPL", volume=10**15 + n)
        tick.at.FromSeconds(1_795_000_000 + n)
        ticks.append(serializer(tick, context))
    registered = registry_client(apicurio).get_latest_version(f"{topic}-value")
    assert "syntax" not in registered.schema.schema_str  # the descriptor, base64
    kafka.produce(topic, [Record(value) for value in ticks])
    route = {"path": "/t", "topic": topic, "value": {"model": "protobuf", "catalog": "ccompat"}}
    gateway = gateways(
        [route], catalogs={"ccompat": {"type": "schema-registry", "url": apicurio.ccompat_url}}
    )
    stream = await open_stream(gateway.port, "/t")
    events = await stream.next_events(3)
    await stream.close()
    assert [event.type for event in events] == ["message"] * 3
    assert [json.loads(event.data) for event in events] == [
        {
            "symbol": "AAPL",
            "volume": str(10**15 + n),
            "at": datetime.fromtimestamp(1_795_000_000 + n, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for n in range(3)
    ]
