"""Real-registry tests: the schema catalogs against a real Apicurio Registry 3.3.3 process
(`tests.support.apicurio`, one per session), through its Confluent-compatible API
(`SchemaRegistryCatalog`) and its native v3 API (`ApicurioCatalog`), and through an outage:
the registry is stopped mid-test and started again on the same port with the same data.

They need Java 21+ and Maven Central (once); without them they fail, never skip."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from ssegate.schemas.apicurio import ApicurioCatalog
from ssegate.schemas.catalog import Catalog
from ssegate.schemas.registry import SchemaRegistryCatalog
from ssegate.schemas.schema import CatalogUnavailable, UnknownSchema
from tests.support.apicurio import ApicurioRegistry
from tests.support.waiting import until


def compact(document: object) -> str:
    """JSON as Apicurio's ccompat API hands it back (it drops the spaces)."""
    return json.dumps(document, separators=(",", ":"))


# Real-registry tests: every one needs the session's Apicurio process (pyproject.toml has
# no marker for that yet, and --strict-markers refuses unregistered ones).
pytestmark = pytest.mark.usefixtures("apicurio")

MONEY = (
    'syntax = "proto3";\npackage shop;\nmessage Money { string currency = 1; int64 units = 2; }\n'
)
ORDER = (
    'syntax = "proto3";\npackage shop;\nimport "money.proto";\n'
    "message Order { string id = 1; Money total = 2; }\n"
)
QUOTE = compact(
    {
        "type": "record",
        "name": "Quote",
        "namespace": "shop",
        "fields": [{"name": "symbol", "type": "string"}, {"name": "price", "type": "double"}],
    }
)
DOCUMENT = compact(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"symbol": {"type": "string"}},
        "required": ["symbol"],
    }
)


def avro(name: str, field_type: str = "string") -> str:
    fields = [{"name": "value", "type": field_type}]
    return compact({"type": "record", "name": name, "fields": fields})


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Subjects unique to the test: the registry lives for the whole session."""
    token = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{token}"


@pytest.fixture
async def ccompat(apicurio: ApicurioRegistry) -> AsyncIterator[SchemaRegistryCatalog]:
    catalog = SchemaRegistryCatalog("ccompat", apicurio.ccompat_url, max_age=0.5)
    await catalog.start()
    yield catalog
    await catalog.stop()


async def test_confluent_api_serves_avro_protobuf_with_an_import_and_json(
    apicurio: ApicurioRegistry, ccompat: SchemaRegistryCatalog, unique: Callable[[str], str]
) -> None:
    money_subject = unique("money.proto")
    quote_id = apicurio.register_ccompat(unique("quote-value"), QUOTE)
    money_id = apicurio.register_ccompat(money_subject, MONEY, "PROTOBUF")
    reference = {"name": "money.proto", "subject": money_subject, "version": 1}
    order_subject = unique("order-value")
    order_id = apicurio.register_ccompat(order_subject, ORDER, "PROTOBUF", [reference])
    document_id = apicurio.register_ccompat(unique("doc-value"), DOCUMENT, "JSON")

    quote = await ccompat.by_id(quote_id)
    assert (quote.kind, quote.text, quote.id, quote.references) == ("avro", QUOTE, quote_id, ())
    document = await ccompat.by_id(document_id)
    assert (document.kind, document.text) == ("json", DOCUMENT)
    order = await ccompat.by_id(order_id)
    assert (order.kind, order.text) == ("protobuf", ORDER)
    [imported] = order.references
    assert imported.name == "money.proto"
    assert imported.schema.text == MONEY
    assert (imported.schema.subject, imported.schema.version) == (money_subject, 1)
    assert imported.schema.id == money_id

    assert ccompat.cached(order_id) is order
    fetches = ccompat.fetches
    assert await ccompat.by_id(order_id) is order
    assert ccompat.fetches == fetches  # ids are kept

    latest = await ccompat.by_subject(order_subject, "latest")
    assert (latest.id, latest.version, latest.text) == (order_id, 1, ORDER)
    assert latest.references[0].schema.text == MONEY
    assert ccompat.state == "ok"


async def test_confluent_api_latest_moves_after_max_age_and_unknowns_are_404s(
    apicurio: ApicurioRegistry, ccompat: SchemaRegistryCatalog, unique: Callable[[str], str]
) -> None:
    subject = unique("price-value")
    first = apicurio.register_ccompat(subject, avro("Price"))
    assert (await ccompat.by_subject(subject, "latest")).id == first
    second = apicurio.register_ccompat(subject, avro("Price", "double"))
    assert (await ccompat.by_subject(subject, "latest")).id == first  # younger than max_age
    await asyncio.sleep(ccompat.max_age)
    now = await ccompat.by_subject(subject, "latest")
    assert (now.id, now.version) == (second, 2)
    assert (await ccompat.by_subject(subject, 1)).id == first
    assert ccompat.cached(second) is not None

    with pytest.raises(UnknownSchema, match="not found"):
        await ccompat.by_id(10_000_000)
    with pytest.raises(UnknownSchema):
        await ccompat.by_subject(unique("nothing"), "latest")
    assert ccompat.state == "ok"  # a 404 is an answer


async def test_native_api_by_global_id_and_by_content_id(
    apicurio: ApicurioRegistry, unique: Callable[[str], str]
) -> None:
    group = unique("shop")
    money = apicurio.register_v3("money.proto", MONEY, "PROTOBUF", group=group)
    reference = {"groupId": group, "artifactId": "money.proto", "version": "1"}
    order = apicurio.register_v3(
        "order",
        ORDER,
        "PROTOBUF",
        group=group,
        references=[{**reference, "name": "money.proto"}],
    )
    quote = apicurio.register_v3("quote", QUOTE, "AVRO", group=group)
    document = apicurio.register_v3("document", DOCUMENT, "JSON", group=group)
    quote_2 = apicurio.register_v3("quote", avro("Quote"), "AVRO", group=group)

    by_global = ApicurioCatalog("native", apicurio.url, group=group)
    by_content = ApicurioCatalog(
        "native-content",
        f"{apicurio.url}/apis/registry/v2",  # Zilla's style of URL is accepted too
        group=group,
        use_id="contentId",
        id_encoding="4-byte",
    )
    try:
        fetched = await by_global.by_id(order.global_id)
        assert (fetched.kind, fetched.text, fetched.id) == ("protobuf", ORDER, order.global_id)
        assert (fetched.subject, fetched.version) == ("order", 1)
        [imported] = fetched.references
        assert (imported.name, imported.schema.text) == ("money.proto", MONEY)
        assert imported.schema.id == money.global_id
        # The content answer does not say AVRO or JSON (both are application/json): the
        # search for the version does.
        assert (await by_global.by_id(quote.global_id)).kind == "avro"
        assert (await by_global.by_id(document.global_id)).kind == "json"

        latest = await by_global.by_subject("quote", "latest")
        assert (latest.id, latest.version, latest.text) == (quote_2.global_id, 2, avro("Quote"))
        assert (await by_global.by_subject("quote", 1)).id == quote.global_id

        content = await by_content.by_id(order.content_id)
        assert (content.text, content.id) == (ORDER, order.content_id)
        assert content.references[0].schema.id == money.content_id
        assert (await by_content.by_id(document.content_id)).kind == "json"
        assert by_content.id_size == 4
        assert by_global.id_size == 8

        with pytest.raises(UnknownSchema):
            await by_global.by_id(10_000_000)
        with pytest.raises(UnknownSchema):
            await by_global.by_subject("no-such-artifact", "latest")
    finally:
        await by_global.stop()
        await by_content.stop()


def test_ccompat_serialized_protobuf_is_lossy_so_catalogs_ask_for_text(
    apicurio: ApicurioRegistry, unique: Callable[[str], str]
) -> None:
    """The finding behind `schemas.registry` rule 3, kept true by this test."""
    text = 'syntax = "proto3";\npackage t;\nmessage Big { string s = 200; }\n'
    schema_id = apicurio.register_ccompat(unique("big-value"), text, "PROTOBUF")
    answer = httpx.get(
        f"{apicurio.ccompat_url}/schemas/ids/{schema_id}", params={"format": "serialized"}
    )
    serialized = answer.json()["schema"]
    assert serialized != text
    with pytest.raises(ValueError, match=r"ASCII|base64|Incorrect padding"):
        base64.b64decode(serialized, validate=True)  # Confluent would send base64
    assert "\ufffd" in serialized  # field 200's varint (0xC8 0x01) is not UTF-8: replaced
    plain = httpx.get(f"{apicurio.ccompat_url}/schemas/ids/{schema_id}").json()["schema"]
    assert plain == text


async def _fails_fast(catalog: Catalog, schema_id: int) -> float:
    began = time.perf_counter()
    with pytest.raises(CatalogUnavailable):
        await catalog.by_id(schema_id)
    return time.perf_counter() - began


async def test_an_outage_serves_what_is_held_fails_new_ids_fast_and_recovers(
    apicurio: ApicurioRegistry, unique: Callable[[str], str]
) -> None:
    held_id = apicurio.register_ccompat(unique("held-value"), avro("Held"))
    unseen_id = apicurio.register_ccompat(unique("unseen-value"), avro("Unseen"))
    subject = unique("latest-value")
    latest_id = apicurio.register_ccompat(subject, avro("Latest"))
    native_held = apicurio.register_v3(unique("native-held"), avro("NativeHeld"), "AVRO")
    native_unseen = apicurio.register_v3(unique("native-unseen"), avro("NativeUnseen"), "AVRO")
    # max_age bounds the back-off (1 s, 2 s, then 2 s) so recovery shows within seconds.
    confluent = SchemaRegistryCatalog("ccompat", apicurio.ccompat_url, max_age=2.0)
    native = ApicurioCatalog("native", apicurio.url, max_age=2.0)
    await confluent.start()
    await native.start()
    try:
        held = await confluent.by_id(held_id)
        native_schema = await native.by_id(native_held.global_id)
        assert (await confluent.by_subject(subject, "latest")).id == latest_id

        await asyncio.to_thread(apicurio.stop)

        assert confluent.cached(held_id) is held
        assert await confluent.by_id(held_id) is held
        assert await native.by_id(native_held.global_id) is native_schema
        first = await _fails_fast(confluent, unseen_id)  # the request that finds it down
        then = [await _fails_fast(confluent, 10_000_000 + n) for n in range(3)]
        native_first = await _fails_fast(native, native_unseen.global_id)
        print(f"CatalogUnavailable after {first * 1e3:.1f} ms, then {max(then) * 1e3:.2f} ms")
        # The first makes one connection attempt, refused at once (about 20 ms here, most
        # of it httpx's resolver thread); the rest are refused by the back-off, unasked.
        assert first < 0.25
        assert max(then) < 0.05
        assert native_first < 0.25
        assert confluent.state.startswith("unavailable: GET ")
        assert confluent.state.endswith("(retrying)")
        assert native.state.startswith("unavailable: ")
        assert confluent.refused >= 1
        assert confluent.failures >= 1
        # "latest" outlives max_age while the registry is away: the last one is served.
        await asyncio.sleep(confluent.max_age)
        assert (await confluent.by_subject(subject, "latest")).id == latest_id

        await asyncio.to_thread(apicurio.start)
        print(f"Apicurio restarted in {apicurio.start_seconds[-1]:.1f} s")

        # The catalogs' own probes notice, without any look-up.
        await until(lambda: confluent.state == "ok" and native.state == "ok", timeout=15)
        assert (await confluent.by_id(unseen_id)).text == avro("Unseen")
        assert (await native.by_id(native_unseen.global_id)).text == avro("NativeUnseen")
        after = apicurio.register_ccompat(unique("after-value"), avro("After"))
        assert (await confluent.by_id(after)).text == avro("After")
        assert after > unseen_id  # same data: the ids went on counting
    finally:
        await confluent.stop()
        await native.stop()
        if not apicurio.running:
            await asyncio.to_thread(apicurio.start)
