"""Schema models end to end: records produced with the standard serializers against a real
registry (Apicurio 3.3.3, its Confluent-compatible API) stream as JSON; invalid records are
skipped or signalled, the stream goes on, and a resume after them is exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.support.apicurio import ApicurioRegistry
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.sse_client import open_stream
from tests.support.waiting import until

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("apicurio")]

QUOTE = {
    "type": "record",
    "name": "Quote",
    "namespace": "demo",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "seq", "type": "long"},
        {"name": "venue", "type": {"type": "enum", "name": "Venue", "symbols": ["NASDAQ", "NYSE"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def avro_serializer(apicurio: ApicurioRegistry, schema: dict[str, Any]) -> AvroSerializer:
    client = SchemaRegistryClient({"url": apicurio.ccompat_url})
    return AvroSerializer(client, json.dumps(schema))


def catalogs(apicurio: ApicurioRegistry) -> dict[str, Any]:
    return {"registry": {"type": "schema-registry", "url": apicurio.ccompat_url}}


def quote(n: int) -> dict[str, Any]:
    return {
        "symbol": "AAPL",
        "price": 189.5 + n,
        "seq": n,
        "venue": "NASDAQ",
        "note": None if n % 2 else f"n{n}",
    }


def quote_json(n: int) -> str:
    note = "null" if n % 2 else f'"n{n}"'
    return f'{{"symbol":"AAPL","price":{189.5 + n},"seq":{n},"venue":"NASDAQ","note":{note}}}'


async def test_avro_records_stream_as_json_and_invalid_ones_are_skipped_or_signalled(
    kafka: KafkaCluster,
    gateways: Callable[..., GatewayProcess],
    apicurio: ApicurioRegistry,
) -> None:
    topic = kafka.new_topic(partitions=1)
    serialize = avro_serializer(apicurio, QUOTE)
    context = SerializationContext(topic, MessageField.VALUE)
    good = [serialize(quote(n), context) for n in range(4)]
    assert all(value[0] == 0 for value in good)  # Confluent framing: magic byte, 4-byte id
    unknown_id = b"\x00\x00\x0f\x42\x40" + good[0][5:]  # schema id 1,000,000
    bad = [b"\x01" + good[0][1:], unknown_id, good[1][:7], b"not avro at all"]
    # good0, bad-magic, good1, unknown id, truncated, good2, not framed, good3
    records = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3], good[3]]
    kafka.produce(topic, [Record(value, key=b"AAPL") for value in records])
    model = {"model": "avro", "catalog": "registry"}
    gateway = gateways(
        [
            {"path": "/skip", "topic": topic, "value": model},
            {"path": "/event", "topic": topic, "value": model, "on_invalid": "event"},
        ],
        catalogs=catalogs(apicurio),
    )
    skipping = await open_stream(gateway.port, "/skip")
    events = await skipping.next_events(4)
    assert [event.data for event in events] == [quote_json(n) for n in range(4)]
    await skipping.close()

    signalling = await open_stream(gateway.port, "/event")
    events = await signalling.next_events(8)
    await signalling.close()
    kinds = [(event.type, event.data) for event in events]
    reasons = ["magic-byte", "unknown-schema", "truncated", "magic-byte"]
    expected_invalid = {1: reasons[0], 3: reasons[1], 4: reasons[2], 6: reasons[3]}
    for offset, (kind, data) in enumerate(kinds):
        if offset in expected_invalid:
            assert kind == "invalid", kinds
            assert json.loads(data) == {
                "partition": 0,
                "offset": offset,
                "reason": expected_invalid[offset],
            }
        else:
            assert kind == "message"
    assert [data for kind, data in kinds if kind == "message"] == [quote_json(n) for n in range(4)]

    # Resume after the last invalid record: exactly the one good record after it.
    resumed = await open_stream(
        gateway.port, "/event", headers={"Last-Event-ID": events[6].last_event_id}
    )
    (after,) = await resumed.next_events(1)
    assert (after.type, after.data) == ("message", quote_json(3))
    await resumed.close()
    metrics = await gateway_metrics_text(gateway)
    assert f'ssegate_invalid_records_total{{topic="{topic}",reason="magic-byte"}} 2' in metrics
    assert f'ssegate_invalid_records_total{{topic="{topic}",reason="unknown-schema"}} 1' in metrics


async def gateway_metrics_text(gateway: GatewayProcess) -> str:
    import httpx

    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{gateway.port}/metrics")).text


async def test_a_json_model_without_schema_passes_json_only(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    values = [b'{"a":1}', b"{not json", b"[1,2]", b'"text"', "caf\xe9".encode("latin-1"), b"7"]
    kafka.produce(topic, [Record(value) for value in values])
    gateway = gateways([{"path": "/j", "topic": topic, "value": {"model": "json"}}])
    stream = await open_stream(gateway.port, "/j")
    events = await stream.next_events(4)
    await stream.close()
    assert [event.data for event in events] == ['{"a":1}', "[1,2]", '"text"', "7"]


QUOTE_V2 = {
    **QUOTE,
    "fields": [*QUOTE["fields"], {"name": "volume", "type": "long", "default": 0}],
}


async def test_schema_evolution_and_a_registry_outage_mid_stream(
    kafka: KafkaCluster,
    gateways: Callable[..., GatewayProcess],
    apicurio: ApicurioRegistry,
) -> None:
    """v1 and v2 records interleaved stream both; while the registry is down, records of
    schemas already fetched go on and those of a new schema are skipped (counted), never
    stalling the stream; when it is back, new schemas convert again."""
    topic = kafka.new_topic(partitions=1)
    context = SerializationContext(topic, MessageField.VALUE)
    v1 = avro_serializer(apicurio, QUOTE)
    v2 = avro_serializer(apicurio, QUOTE_V2)
    first = [v1(quote(0), context), v2({**quote(1), "volume": 10}, context), v1(quote(2), context)]
    assert first[0][1:5] != first[1][1:5]  # two schema ids
    kafka.produce(topic, [Record(value) for value in first])
    gateway = gateways(
        [{"path": "/q", "topic": topic, "value": {"model": "avro", "catalog": "registry"}}],
        catalogs=catalogs(apicurio),
    )
    stream = await open_stream(gateway.port, "/q")
    events = await stream.next_events(3)
    v2_json = quote_json(1)[:-1] + ',"volume":10}'
    assert [event.data for event in events] == [quote_json(0), v2_json, quote_json(2)]

    # A third schema, registered (and its records serialized) before the outage.
    v3_schema = {**QUOTE, "fields": [*QUOTE["fields"], {"name": "bid", "type": "double"}]}
    v3 = avro_serializer(apicurio, v3_schema)
    v3_value = v3({**quote(4), "bid": 1.5}, context)
    apicurio.stop()
    try:
        kafka.produce(
            topic,
            [Record(v1(quote(3), context)), Record(v3_value), Record(v2(quote(5), context))],
        )
        during = await stream.next_events(2)
        # quote 3 (v1) and 5 (v2, "volume" defaulted by the writer) pass; v3's is skipped.
        assert [event.data for event in during] == [
            quote_json(3),
            quote_json(5)[:-1] + ',"volume":0}',
        ]
        ready = await ready_report(gateway)
        assert ready["catalogs"]["registry"].startswith("unavailable: ")
        assert ready["ready"] is True  # streams go on with the schemas they have
    finally:
        apicurio.start()

    async def registry_noticed() -> bool:
        return (await ready_report(gateway))["catalogs"]["registry"] == "ok"

    await until(registry_noticed, timeout=40)
    kafka.produce(topic, [Record(v3_value)])
    (after,) = await stream.next_events(1, timeout=30)
    assert after.data == quote_json(4)[:-1] + ',"bid":1.5}'
    await stream.close()
    metrics = await gateway_metrics_text(gateway)
    assert (
        f'ssegate_invalid_records_total{{topic="{topic}",reason="registry-unavailable"}} 1'
        in metrics
    )


async def ready_report(gateway: GatewayProcess) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{gateway.port}/ready")
        result: dict[str, Any] = answer.json()
        return result
