"""Sources read through a model (`ssegate.schemas.sources`): each batch converted before
the fan-out sees it, news held in order behind a schema fetch, invalid records marked and
counted, and modeled names (`<topic>|<model>`) opened as their topic."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import fastavro
import pytest

from ssegate.schemas.catalog import Version
from ssegate.schemas.mapping import JsonMapping
from ssegate.schemas.model import ModelSpec, ValueModel
from ssegate.schemas.schema import CatalogUnavailable, Schema, UnknownSchema
from ssegate.schemas.sources import ModeledSources, ModelListener
from ssegate.sources.protocol import Ack, PartitionStart, Source, SourceFailure, SourceListener
from ssegate.sources.record import Record
from tests.support.waiting import until

TOPIC = "quotes"
QUOTE = {
    "type": "record",
    "name": "Quote",
    "fields": [{"name": "symbol", "type": "string"}, {"name": "price", "type": "double"}],
}


def quote(symbol: str, price: float) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(
        out, fastavro.parse_schema(QUOTE), {"symbol": symbol, "price": price}
    )
    return out.getvalue()


def framed(schema_id: int, payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + payload


class HeldCatalog:
    """A fake catalog whose `by_id` waits for `gate` while it is set to an unset event."""

    fetches = 0
    failures = 0
    refused = 0

    def __init__(self, ids: dict[int, Schema]) -> None:
        self.name = "held"
        self.state = "ok"
        self.ids = ids
        self.gate: asyncio.Event | None = None
        self.unavailable = False
        self.id_calls: list[int] = []

    def cached(self, schema_id: int) -> Schema | None:
        return self.ids.get(schema_id)

    async def by_id(self, schema_id: int) -> Schema:
        self.id_calls.append(schema_id)
        if self.gate is not None:
            await self.gate.wait()
        if self.unavailable:
            raise CatalogUnavailable("catalog 'held': refused")
        schema = self.ids.get(schema_id)
        if schema is None:
            raise UnknownSchema(f"catalog 'held': schema id {schema_id}: not found")
        return schema

    async def by_subject(self, subject: str, version: Version) -> Schema:
        raise UnknownSchema(f"catalog 'held': subject {subject!r}: not found")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class Inner:
    """The fan-out's side: every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def kinds(self) -> list[str]:
        return [call[0] for call in self.calls]

    def batches(self) -> list[list[Record]]:
        return [call[1] for call in self.calls if call[0] == "batch"]

    def on_partitions(self, partitions: Mapping[int, PartitionStart]) -> None:
        self.calls.append(("partitions", dict(partitions)))

    def on_batch(self, records: list[Record], eofs: dict[int, int], ack: Ack) -> None:
        self.calls.append(("batch", records, eofs, ack))

    def on_missing(self) -> None:
        self.calls.append(("missing",))

    def on_extent(self, ends: Mapping[int, int]) -> None:
        self.calls.append(("extent", dict(ends)))

    def on_gap(self, lost: Mapping[int, tuple[int, int]]) -> None:
        self.calls.append(("gap", dict(lost)))

    def on_failure(self, failure: SourceFailure) -> None:
        self.calls.append(("failure", failure))


class Acks:
    """An ack callable that counts its calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def value_model(catalog: HeldCatalog) -> ValueModel:
    return ValueModel(
        ModelSpec(
            kind="avro",
            catalog=catalog,
            framing="confluent",
            subject=None,
            version="latest",
            message=None,
            mapping=JsonMapping(),
        )
    )


class Setup:
    def __init__(self, ids: dict[int, Schema] | None = None) -> None:
        if ids is None:
            ids = {1: Schema("avro", json.dumps(QUOTE), id=1)}
        self.catalog = HeldCatalog(ids)
        self.model = value_model(self.catalog)
        self.inner = Inner()
        self.counted: list[tuple[str, str]] = []
        self.listener = ModelListener(
            TOPIC,
            self.model,
            self.inner,
            asyncio.get_running_loop(),
            lambda topic, reason: self.counted.append((topic, reason)),
        )

    def hold(self) -> asyncio.Event:
        gate = asyncio.Event()
        self.catalog.gate = gate
        return gate


async def delivered(inner: Inner, count: int) -> None:
    await until(
        lambda: len(inner.calls) >= count,
        2.0,
        interval=0.002,
        message=f"{count} calls to reach the inner listener",
    )


async def quiet() -> None:
    """Let pending tasks (a fetch, a compile in a thread) run to their end."""
    for _ in range(5):
        await asyncio.sleep(0.01)


FAILURE = SourceFailure("broker went away", retriable=True)


async def test_a_batch_naming_an_unknown_id_waits_and_later_news_waits_behind_it() -> None:
    setup = Setup()
    gate = setup.hold()
    listener, inner = setup.listener, setup.inner
    listener.on_partitions({0: PartitionStart(0, 0, 10)})
    assert inner.kinds() == ["partitions"]  # nothing to wait for yet

    first = [Record(0, 3, b"k", framed(1, quote("ACME", 1.5)))]
    first_ack = Acks()
    listener.on_batch(first, {}, first_ack)
    listener.on_extent({0: 11})
    second = [Record(0, 4, b"k", framed(1, quote("INIT", 2.0)))]
    second_ack = Acks()
    listener.on_batch(second, {0: 5}, second_ack)
    listener.on_gap({1: (0, 7)})
    listener.on_missing()
    listener.on_failure(FAILURE)
    listener.on_partitions({1: PartitionStart(7, 7, 9)})
    await quiet()
    assert inner.kinds() == ["partitions"]  # the fetch is still open
    assert setup.catalog.id_calls == [1]

    gate.set()
    await delivered(inner, 8)
    assert inner.calls[1:] == [
        ("batch", first, {}, first_ack),
        ("extent", {0: 11}),
        ("batch", second, {0: 5}, second_ack),
        ("gap", {1: (0, 7)}),
        ("missing",),
        ("failure", FAILURE),
        ("partitions", {1: PartitionStart(7, 7, 9)}),
    ]
    assert inner.calls[1][3] is first_ack
    assert inner.calls[3][3] is second_ack
    assert (first_ack.count, second_ack.count) == (0, 0)  # the fan-out acks, not the model
    assert [record.value for record in first + second] == [
        b'{"symbol":"ACME","price":1.5}',
        b'{"symbol":"INIT","price":2.0}',
    ]
    assert setup.catalog.id_calls == [1]  # the second batch found the schema compiled

    listener.on_extent({0: 12})  # nothing waits any more: straight through
    assert inner.calls[-1] == ("extent", {0: 12})


async def test_a_batch_of_known_schemas_is_delivered_at_once() -> None:
    setup = Setup()
    await setup.model.fetch({1})
    ack = Acks()
    records = [Record(0, 0, None, framed(1, quote("ACME", 1.0)))]
    setup.listener.on_batch(records, {}, ack)
    assert setup.inner.calls == [("batch", records, {}, ack)]
    assert records[0].value == b'{"symbol":"ACME","price":1.0}'


async def test_a_valid_record_carries_its_json_and_the_size_of_it() -> None:
    setup = Setup()
    value = framed(1, quote("ACME", 12.25))
    record = Record(2, 40, b"key", value, headers=[("h", b"v")], timestamp=1234)
    size_before = record.size
    setup.listener.on_batch([record], {}, Acks())
    await delivered(setup.inner, 1)
    json_text = b'{"symbol":"ACME","price":12.25}'
    assert record.value == json_text
    assert record.size == size_before - len(value) + len(json_text)
    assert record.size == Record(2, 40, b"key", json_text, headers=[("h", b"v")]).size
    assert record.document() == {"symbol": "ACME", "price": 12.25}
    assert (record.invalid, record.cached_data) == (None, None)
    assert (record.partition, record.offset, record.key, record.timestamp) == (2, 40, b"key", 1234)
    assert setup.counted == []


async def test_invalid_records_stay_in_the_batch_marked_and_counted() -> None:
    setup = Setup()
    valid = Record(0, 10, b"a", framed(1, quote("ACME", 1.0)))
    unknown = Record(0, 11, b"b", framed(9, quote("ACME", 1.0)))
    magic = Record(1, 12, b"c", b"\x07not framed")
    short = Record(1, 13, b"d", b"\x00\x00")
    mismatch = Record(1, 14, b"e", framed(1, quote("ACME", 1.0) + b"more"))
    tombstone = Record(0, 15, b"f", None)
    batch = [valid, unknown, magic, short, mismatch, tombstone]
    setup.listener.on_batch(batch, {}, Acks())
    await delivered(setup.inner, 1)
    assert setup.inner.batches() == [batch]
    assert [record.offset for record in setup.inner.batches()[0]] == [10, 11, 12, 13, 14, 15]
    assert [record.invalid for record in batch] == [
        None,
        "unknown-schema",
        "magic-byte",
        "truncated",
        "schema-mismatch",
        None,
    ]
    assert unknown.cached_data == (
        b'event:invalid\ndata:{"partition":0,"offset":11,"reason":"unknown-schema"}\n\n'
    )
    assert magic.cached_data == (
        b'event:invalid\ndata:{"partition":1,"offset":12,"reason":"magic-byte"}\n\n'
    )
    assert short.cached_data == (
        b'event:invalid\ndata:{"partition":1,"offset":13,"reason":"truncated"}\n\n'
    )
    assert mismatch.cached_data == (
        b'event:invalid\ndata:{"partition":1,"offset":14,"reason":"schema-mismatch"}\n\n'
    )
    assert magic.value == b"\x07not framed"  # never sent: the event names no value
    assert (tombstone.value, tombstone.cached_data) == (None, None)
    assert valid.value == b'{"symbol":"ACME","price":1.0}'
    assert setup.counted == [
        (TOPIC, "unknown-schema"),
        (TOPIC, "magic-byte"),
        (TOPIC, "truncated"),
        (TOPIC, "schema-mismatch"),
    ]
    # The unknown id was asked once, for this batch; it is not fetched a second time.
    assert sorted(setup.catalog.id_calls) == [1, 9]


async def test_a_record_still_missing_after_its_fetch_is_invalid() -> None:
    setup = Setup()
    setup.catalog.unavailable = True
    setup.catalog.state = "unavailable: GET /schemas/ids/1: HTTP 503 (retrying)"
    record = Record(0, 7, None, framed(1, quote("ACME", 1.0)))
    setup.listener.on_batch([record], {}, Acks())
    await delivered(setup.inner, 1)
    assert record.invalid == "registry-unavailable"
    assert record.cached_data == (
        b'event:invalid\ndata:{"partition":0,"offset":7,"reason":"registry-unavailable"}\n\n'
    )
    assert setup.counted == [(TOPIC, "registry-unavailable")]
    assert setup.catalog.id_calls == [1]

    # The next batch asks again, and converts once the registry answers.
    setup.catalog.unavailable = False
    setup.catalog.state = "ok"
    later = Record(0, 8, None, framed(1, quote("ACME", 2.0)))
    setup.listener.on_batch([later], {}, Acks())
    await delivered(setup.inner, 2)
    assert later.value == b'{"symbol":"ACME","price":2.0}'
    assert setup.catalog.id_calls == [1, 1]


async def test_a_batch_behind_a_fetch_that_needs_another_fetch_waits_again() -> None:
    ids = {
        1: Schema("avro", json.dumps(QUOTE), id=1),
        2: Schema("avro", json.dumps(QUOTE), id=2),
    }
    setup = Setup(ids)
    gate = setup.hold()
    first = [Record(0, 0, None, framed(1, quote("A", 1.0)))]
    second = [Record(0, 1, None, framed(2, quote("B", 2.0)))]
    setup.listener.on_batch(first, {}, Acks())
    setup.listener.on_batch(second, {}, Acks())
    setup.listener.on_extent({0: 2})
    await quiet()
    assert setup.catalog.id_calls == [1]
    gate.set()
    await delivered(setup.inner, 3)
    assert setup.inner.kinds() == ["batch", "batch", "extent"]
    assert setup.inner.batches() == [first, second]
    assert second[0].value == b'{"symbol":"B","price":2.0}'
    assert setup.catalog.id_calls == [1, 2]


async def test_stop_while_a_fetch_is_pending_delivers_nothing_that_waited() -> None:
    setup = Setup()
    gate = setup.hold()
    ack = Acks()
    setup.listener.on_batch([Record(0, 0, None, framed(1, quote("A", 1.0)))], {}, ack)
    setup.listener.on_extent({0: 1})
    setup.listener.on_failure(FAILURE)
    await quiet()
    setup.listener.stop()
    gate.set()
    await quiet()
    assert setup.inner.calls == []


async def test_news_arriving_after_stop_is_not_delivered() -> None:
    """A source may still tell its listener what was already on its way when it was
    stopped (`Source.stop`): after `stop()` nothing more reaches the fan-out."""
    setup = Setup()
    gate = setup.hold()
    setup.listener.on_batch([Record(0, 0, None, framed(1, quote("A", 1.0)))], {}, Acks())
    await quiet()
    setup.listener.stop()
    gate.set()
    await quiet()
    setup.listener.on_extent({0: 1})
    setup.listener.on_batch([Record(0, 1, None, framed(1, quote("B", 1.0)))], {}, Acks())
    setup.listener.on_failure(FAILURE)
    setup.listener.on_partitions({0: PartitionStart(0, 0, 1)})
    await quiet()
    assert setup.inner.calls == []


# --- ModeledSources -------------------------------------------------------------------------


class FakeSource:
    def __init__(self) -> None:
        self.started = False
        self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True


class FakeSources:
    """The inner `Sources`: what it was asked, with which names."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.opened: list[tuple[FakeSource, SourceListener]] = []
        self.closed: list[float] = []

    def open_live(self, name: str, listener: SourceListener, *, prefill: int) -> Source:
        self.calls.append(("open_live", name, prefill))
        source = FakeSource()
        self.opened.append((source, listener))
        return source

    def open_catchup(
        self, name: str, positions: Mapping[int, int], listener: SourceListener
    ) -> Source:
        self.calls.append(("open_catchup", name, dict(positions)))
        source = FakeSource()
        self.opened.append((source, listener))
        return source

    def offsets_for_time(
        self, name: str, partitions: Iterable[int], time_ms: int
    ) -> asyncio.Future[dict[int, int]]:
        self.calls.append(("offsets_for_time", name, list(partitions), time_ms))
        future: asyncio.Future[dict[int, int]] = asyncio.get_running_loop().create_future()
        future.set_result({0: 17})
        return future

    def end_offsets(self, name: str, partitions: Iterable[int]) -> asyncio.Future[dict[int, int]]:
        self.calls.append(("end_offsets", name, list(partitions)))
        future: asyncio.Future[dict[int, int]] = asyncio.get_running_loop().create_future()
        future.set_result({0: 42})
        return future

    async def close(self, within: float) -> None:
        self.closed.append(within)


def modeled_sources(inner: FakeSources, counted: list[tuple[str, str]]) -> ModeledSources:
    catalog = HeldCatalog({1: Schema("avro", json.dumps(QUOTE), id=1)})
    return ModeledSources(
        inner,
        {"m1": value_model(catalog)},
        asyncio.get_running_loop(),
        lambda topic, reason: counted.append((topic, reason)),
    )


async def test_plain_names_pass_through_untouched() -> None:
    inner = FakeSources()
    sources = modeled_sources(inner, [])
    mine = Inner()
    live = sources.open_live(TOPIC, mine, prefill=5)
    catchup = sources.open_catchup(TOPIC, {0: 3}, mine)
    assert inner.calls == [("open_live", TOPIC, 5), ("open_catchup", TOPIC, {0: 3})]
    assert [source for source, _ in inner.opened] == [live, catchup]
    assert all(listener is mine for _, listener in inner.opened)


async def test_modeled_names_open_their_topic_and_convert_for_the_listener() -> None:
    inner = FakeSources()
    counted: list[tuple[str, str]] = []
    sources = modeled_sources(inner, counted)
    mine = Inner()
    live = sources.open_live(f"{TOPIC}|m1", mine, prefill=3)
    catchup = sources.open_catchup(f"{TOPIC}|m1", {0: 8, 1: 2}, mine)
    assert inner.calls == [("open_live", TOPIC, 3), ("open_catchup", TOPIC, {0: 8, 1: 2})]

    (live_source, live_listener), (catchup_source, _) = inner.opened
    assert live_listener is not mine
    good = Record(0, 5, None, framed(1, quote("ACME", 3.5)))
    bad = Record(0, 6, None, b"\x07raw")
    ack = Acks()
    live_listener.on_batch([good, bad], {}, ack)
    await delivered(mine, 1)
    assert mine.calls == [("batch", [good, bad], {}, ack)]
    assert good.value == b'{"symbol":"ACME","price":3.5}'
    assert bad.invalid == "magic-byte"
    assert counted == [(TOPIC, "magic-byte")]  # the topic, not the modeled name

    live.start()
    assert live_source.started
    live.stop()
    assert live_source.stopped
    assert not catchup_source.stopped
    live_listener.on_batch([Record(0, 7, None, framed(1, quote("X", 1.0)))], {}, Acks())
    await quiet()
    assert len(mine.calls) == 1  # a stopped source's listener hands nothing on
    catchup.stop()
    assert catchup_source.stopped


@pytest.mark.parametrize("name", [TOPIC, f"{TOPIC}|m1", f"{TOPIC}|other"])
async def test_lookups_ask_the_topic(name: str) -> None:
    inner = FakeSources()
    sources = modeled_sources(inner, [])
    assert await sources.offsets_for_time(name, [0, 1], 1_700_000_000_000) == {0: 17}
    assert await sources.end_offsets(name, [2]) == {0: 42}
    assert inner.calls == [
        ("offsets_for_time", TOPIC, [0, 1], 1_700_000_000_000),
        ("end_offsets", TOPIC, [2]),
    ]
    await sources.close(2.5)
    assert inner.closed == [2.5]
