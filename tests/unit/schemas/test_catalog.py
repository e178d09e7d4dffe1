"""The catalogs' rules (`ssegate.schemas.catalog`): inline schemas, and the registry
machinery (caching, "latest" and max_age, shared requests, references, limits, back-off,
outages, credentials) through `SchemaRegistryCatalog` against a scripted loopback server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ssegate.schemas.catalog import MAX_RESPONSE_BYTES, Catalog
from ssegate.schemas.http_catalog import Credentials
from ssegate.schemas.inline import InlineCatalog, InlineSubject
from ssegate.schemas.registry import SchemaRegistryCatalog
from ssegate.schemas.schema import CatalogUnavailable, SchemaError, UnknownSchema
from tests.support.waiting import until
from tests.unit.schemas.registry_server import RegistryServer, Reply, json_reply

AVRO = '{"type":"record","name":"Quote","fields":[{"name":"symbol","type":"string"}]}'
PROTO = 'syntax = "proto3";\nmessage Quote { string symbol = 1; }\n'


class Clock:
    """Time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[RegistryServer]:
    registry = RegistryServer()
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def catalog(server: RegistryServer, clock: Clock) -> AsyncIterator[SchemaRegistryCatalog]:
    made = SchemaRegistryCatalog("reg", server.url, max_age=10.0, clock=clock)
    yield made
    await made.stop()


def schema_at(schema: str, schema_type: str | None = None, **more: Any) -> Reply:
    document: dict[str, Any] = {"schema": schema, **more}
    if schema_type is not None:
        document["schemaType"] = schema_type
    return json_reply(document)


def version_at(subject: str, version: int, schema_id: int, schema: str, **more: Any) -> Reply:
    return json_reply(
        {"subject": subject, "version": version, "id": schema_id, "schema": schema, **more}
    )


# --- inline ---------------------------------------------------------------------------------


async def test_inline_subjects_have_version_one_and_ids_only_when_given(tmp_path: Path) -> None:
    (tmp_path / "quote.proto").write_text(PROTO)
    catalog: Catalog = InlineCatalog(
        "inline",
        {
            "quote": InlineSubject("avro", text=AVRO, id=7),
            "proto": InlineSubject("protobuf", path=tmp_path / "quote.proto"),
        },
    )
    quote = await catalog.by_subject("quote", "latest")
    assert (quote.kind, quote.text, quote.id, quote.subject, quote.version) == (
        "avro",
        AVRO,
        7,
        "quote",
        1,
    )
    assert await catalog.by_subject("quote", 1) is quote
    assert (await catalog.by_subject("proto", 1)).text == PROTO
    assert catalog.cached(7) is quote
    assert await catalog.by_id(7) is quote
    assert catalog.cached(8) is None
    with pytest.raises(UnknownSchema, match="no inline subject has id 8"):
        await catalog.by_id(8)
    with pytest.raises(UnknownSchema, match="version 2"):
        await catalog.by_subject("quote", 2)
    with pytest.raises(UnknownSchema):
        await catalog.by_subject("other", "latest")
    assert (catalog.state, catalog.fetches, catalog.failures, catalog.refused) == ("ok", 0, 0, 0)


async def test_inline_references_name_other_subjects() -> None:
    money = 'syntax = "proto3";\nmessage Money { int64 units = 1; }\n'
    order = 'syntax = "proto3";\nimport "money.proto";\nmessage Order { Money total = 1; }\n'
    catalog = InlineCatalog(
        "inline",
        {
            "order": InlineSubject("protobuf", text=order, references={"money.proto": "money"}),
            "money": InlineSubject("protobuf", text=money),
        },
    )
    resolved = await catalog.by_subject("order", "latest")
    [reference] = resolved.references
    assert reference.name == "money.proto"
    assert reference.schema is await catalog.by_subject("money", 1)


@pytest.mark.parametrize(
    ("subjects", "message"),
    [
        ({"a": InlineSubject("avro", text=AVRO, references={"b": "b"})}, "no such subject"),
        (
            {
                "a": InlineSubject("avro", text=AVRO, references={"b": "b"}),
                "b": InlineSubject("avro", text=AVRO, references={"a": "a"}),
            },
            "cycle",
        ),
        ({"a": InlineSubject("avro")}, "either as text or as a path"),
        ({"a": InlineSubject("avro", text=AVRO, path="x.avsc")}, "either as text or as a path"),
        ({"a": InlineSubject("avro", path="/nonexistent/x.avsc")}, "cannot read"),
        ({"a": InlineSubject("xml", text="<a/>")}, "kind 'xml'"),  # type: ignore[arg-type]
        (
            {
                "a": InlineSubject("avro", text=AVRO, id=1),
                "b": InlineSubject("json", text="{}", id=1),
            },
            "both have id 1",
        ),
    ],
)
def test_inline_mistakes_are_schema_errors_at_construction(
    subjects: dict[str, InlineSubject], message: str
) -> None:
    with pytest.raises(SchemaError, match=message):
        InlineCatalog("inline", subjects)


def test_inline_files_must_be_utf8_text_under_the_size_limit(tmp_path: Path) -> None:
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SchemaError, match="not UTF-8"):
        InlineCatalog("inline", {"a": InlineSubject("avro", path=tmp_path / "binary")})
    (tmp_path / "huge").write_bytes(b" " * (MAX_RESPONSE_BYTES + 1))
    with pytest.raises(SchemaError, match="larger than 1 MiB"):
        InlineCatalog("inline", {"a": InlineSubject("avro", path=tmp_path / "huge")})


# --- fetching and caching -------------------------------------------------------------------


async def test_an_id_is_fetched_once_and_then_served_from_the_cache(
    server: RegistryServer, catalog: SchemaRegistryCatalog
) -> None:
    server.routes["/schemas/ids/1"] = schema_at(AVRO)  # no schemaType: Avro
    server.routes["/schemas/ids/2"] = schema_at(PROTO, "PROTOBUF")
    server.routes["/schemas/ids/3"] = schema_at("{}", "JSON")
    assert catalog.cached(1) is None
    first = await catalog.by_id(1)
    assert (first.kind, first.text, first.id, first.references) == ("avro", AVRO, 1, ())
    assert catalog.cached(1) is first
    assert await catalog.by_id(1) is first
    assert (await catalog.by_id(2)).kind == "protobuf"
    assert (await catalog.by_id(3)).kind == "json"
    assert server.paths() == ["/schemas/ids/1", "/schemas/ids/2", "/schemas/ids/3"]
    assert (catalog.fetches, catalog.failures, catalog.state) == (3, 0, "ok")
    accept = server.requests[0].headers["Accept"]
    assert "application/vnd.schemaregistry.v1+json" in accept


async def test_the_id_cache_is_bounded(server: RegistryServer) -> None:
    for schema_id in (1, 2, 3):
        server.routes[f"/schemas/ids/{schema_id}"] = schema_at(AVRO)
    catalog = SchemaRegistryCatalog("reg", server.url, cache_size=2)
    try:
        for schema_id in (1, 2, 1, 3):  # 1 was used after 2: 2 is the one to go
            await catalog.by_id(schema_id)
        assert catalog.cached(1) is not None
        assert catalog.cached(2) is None
        assert catalog.cached(3) is not None
    finally:
        await catalog.stop()


async def test_concurrent_look_ups_of_one_id_share_one_request(
    server: RegistryServer, catalog: SchemaRegistryCatalog
) -> None:
    server.routes["/schemas/ids/5"] = Reply(200, b'{"schema": "{}"}', delay=0.3)
    results = await asyncio.gather(*(catalog.by_id(5) for _ in range(20)))
    assert all(result is results[0] for result in results)
    assert server.paths() == ["/schemas/ids/5"]


async def test_a_cancelled_caller_does_not_cancel_the_shared_request(
    server: RegistryServer, catalog: SchemaRegistryCatalog
) -> None:
    server.routes["/schemas/ids/5"] = Reply(200, b'{"schema": "{}"}', delay=0.3)
    impatient = asyncio.ensure_future(catalog.by_id(5))
    patient = asyncio.ensure_future(catalog.by_id(5))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert (await patient).text == "{}"
    assert server.paths() == ["/schemas/ids/5"]


async def test_references_are_resolved_recursively_each_once(
    server: RegistryServer, catalog: SchemaRegistryCatalog
) -> None:
    # 1 imports b and c; both import d (a diamond). 2 imports b again later.
    def refs(*names: str) -> list[dict[str, Any]]:
        return [{"name": f"{name}.proto", "subject": name, "version": 1} for name in names]

    server.routes["/schemas/ids/1"] = schema_at("A", "PROTOBUF", references=refs("b", "c"))
    server.routes["/schemas/ids/2"] = schema_at("E", "PROTOBUF", references=refs("b"))
    server.routes["/subjects/b/versions/1"] = version_at(
        "b", 1, 11, "B", schemaType="PROTOBUF", references=refs("d")
    )
    server.routes["/subjects/c/versions/1"] = version_at(
        "c", 1, 12, "C", schemaType="PROTOBUF", references=refs("d")
    )
    server.routes["/subjects/d/versions/1"] = version_at("d", 1, 13, "D", schemaType="PROTOBUF")
    a = await catalog.by_id(1)
    b, c = (reference.schema for reference in a.references)
    assert [reference.name for reference in a.references] == ["b.proto", "c.proto"]
    assert (b.text, b.id, b.subject, b.version) == ("B", 11, "b", 1)
    assert b.references[0].schema is c.references[0].schema  # one d
    assert b.references[0].schema.text == "D"
    assert server.paths().count("/subjects/d/versions/1") == 1
    e = await catalog.by_id(2)
    assert e.references[0].schema is b  # kept like a numbered version
    assert await catalog.by_subject("b", 1) is b
    assert len(server.paths()) == 5


async def test_a_reference_cycle_is_a_schema_error(
    server: RegistryServer, catalog: SchemaRegistryCatalog
) -> None:
    def ref(name: str) -> list[dict[str, Any]]:
        return [{"name": name, "subject": name, "version": 1}]

    server.routes["/schemas/ids/1"] = schema_at("A", references=ref("b"))
    server.routes["/subjects/b/versions/1"] = version_at("b", 1, 2, "B", references=ref("c"))
    server.routes["/subjects/c/versions/1"] = version_at("c", 1, 3, "C", references=ref("b"))
    with pytest.raises(SchemaError, match="cycle"):
        await catalog.by_id(1)


async def test_a_missing_reference_is_unknown(
    server: RegistryServer, catalog: SchemaRegistryCatalog
) -> None:
    server.routes["/schemas/ids/1"] = schema_at(
        "A", references=[{"name": "b", "subject": "b", "version": 1}]
    )
    with pytest.raises(UnknownSchema, match="subject 'b' version 1: not found"):
        await catalog.by_id(1)


async def test_a_404_is_unknown_and_remembered_for_a_while(
    server: RegistryServer, catalog: SchemaRegistryCatalog, clock: Clock
) -> None:
    with pytest.raises(UnknownSchema, match=r"schema id 9: not found \(Schema not found\)"):
        await catalog.by_id(9)
    with pytest.raises(UnknownSchema):
        await catalog.by_id(9)
    assert server.paths() == ["/schemas/ids/9"]  # records naming 9 cost no more requests
    assert catalog.state == "ok"  # the registry answered
    server.routes["/schemas/ids/9"] = schema_at(AVRO)
    clock.now += catalog.unknown_ttl
    assert (await catalog.by_id(9)).text == AVRO
    with pytest.raises(UnknownSchema, match="negative"):
        await catalog.by_id(-1)


# --- subjects, "latest" and max_age ---------------------------------------------------------


async def test_latest_is_asked_again_after_max_age(
    server: RegistryServer, catalog: SchemaRegistryCatalog, clock: Clock
) -> None:
    server.routes["/subjects/quote/versions/latest"] = version_at("quote", 1, 1, AVRO)
    first = await catalog.by_subject("quote", "latest")
    assert (first.id, first.subject, first.version) == (1, "quote", 1)
    assert catalog.cached(1) is first  # its id is known now too
    server.routes["/subjects/quote/versions/latest"] = version_at("quote", 2, 4, PROTO)
    clock.now += catalog.max_age - 0.1
    assert await catalog.by_subject("quote", "latest") is first
    assert len(server.paths()) == 1
    clock.now += 0.2
    second = await catalog.by_subject("quote", "latest")
    assert (second.id, second.version, second.text) == (4, 2, PROTO)
    assert len(server.paths()) == 2
    assert await catalog.by_subject("quote", 2) is second  # a numbered version, kept
    assert await catalog.by_subject("quote", 1) is first
    assert len(server.paths()) == 2


async def test_latest_keeps_serving_the_last_one_while_the_registry_is_down(
    server: RegistryServer, catalog: SchemaRegistryCatalog, clock: Clock
) -> None:
    server.routes["/subjects/quote/versions/latest"] = version_at("quote", 1, 1, AVRO)
    held = await catalog.by_subject("quote", "latest")
    server.stop()
    clock.now += catalog.max_age + 1
    assert await catalog.by_subject("quote", "latest") is held
    assert catalog.state.startswith("unavailable: GET http://127.0.0.1:")
    assert catalog.failures == 1
    with pytest.raises(CatalogUnavailable):  # nothing held for this one
        await catalog.by_subject("other", "latest")


async def test_an_unusable_newest_version_leaves_the_last_good_one(
    server: RegistryServer, catalog: SchemaRegistryCatalog, clock: Clock
) -> None:
    server.routes["/subjects/quote/versions/latest"] = version_at("quote", 1, 1, AVRO)
    held = await catalog.by_subject("quote", "latest")
    server.routes["/subjects/quote/versions/latest"] = version_at(
        "quote", 2, 2, AVRO, schemaType="XML"
    )
    clock.now += catalog.max_age + 1
    assert await catalog.by_subject("quote", "latest") is held
    assert catalog.failures == 1


async def test_a_deleted_subject_is_unknown(
    server: RegistryServer, catalog: SchemaRegistryCatalog, clock: Clock
) -> None:
    server.routes["/subjects/quote/versions/latest"] = version_at("quote", 1, 1, AVRO)
    await catalog.by_subject("quote", "latest")
    del server.routes["/subjects/quote/versions/latest"]
    clock.now += catalog.max_age + 1
    with pytest.raises(UnknownSchema):
        await catalog.by_subject("quote", "latest")


@pytest.mark.parametrize("version", [0, -1, True, "1"])
async def test_a_version_is_a_positive_number_or_latest(
    catalog: SchemaRegistryCatalog, version: Any
) -> None:
    with pytest.raises(UnknownSchema, match="neither a positive number"):
        await catalog.by_subject("quote", version)


async def test_contexts_qualify_subjects_and_id_look_ups(server: RegistryServer) -> None:
    server.routes["/schemas/ids/1?subject=%3A.team%3A"] = schema_at(
        "A", references=[{"name": "b", "subject": "b", "version": 3}]
    )
    server.routes["/subjects/%3A.team%3Ab/versions/3"] = version_at(":.team:b", 3, 2, "B")
    server.routes["/subjects/%3A.team%3Aquote/versions/latest"] = version_at("quote", 1, 1, "A")
    catalog = SchemaRegistryCatalog("reg", server.url, context=".team")
    try:
        assert catalog.qualified("quote") == ":.team:quote"
        schema = await catalog.by_id(1)
        assert schema.references[0].schema.text == "B"
        assert (await catalog.by_subject("quote", "latest")).subject == "quote"
    finally:
        await catalog.stop()
    assert SchemaRegistryCatalog("reg", server.url, context="default").context == ""
    with pytest.raises(ValueError, match="not a context name"):
        SchemaRegistryCatalog("reg", server.url, context="a/b")


# --- unusable answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, b"<html>proxy</html>", {"Content-Type": "text/html"}), "not JSON"),
        (json_reply([1, 2]), "not a JSON object"),
        (json_reply({"schema": {"type": "record"}}), "no schema text"),
        (json_reply({"schema": "x", "schemaType": "XML"}), "schema type 'XML'"),
        (json_reply({"schema": "x", "references": [{"name": "b"}]}), "no name or subject"),
        (json_reply({"schema": "x", "references": "b"}), "not a list"),
        (json_reply({}, 400), "answered HTTP 400"),
        (Reply(200, b" " * (MAX_RESPONSE_BYTES + 1)), "over 1 MiB"),
        (Reply(200, b" " * (MAX_RESPONSE_BYTES + 1), chunked=True), "over 1 MiB"),
    ],
)
async def test_an_unusable_answer_is_a_schema_error(
    server: RegistryServer, catalog: SchemaRegistryCatalog, reply: Reply, message: str
) -> None:
    server.routes["/schemas/ids/1"] = reply
    with pytest.raises(SchemaError, match=message):
        await catalog.by_id(1)
    assert catalog.state == "ok"  # the registry is there; this schema is not usable
    assert catalog.failures == 1


async def test_a_large_answer_under_the_limit_is_fine(
    server: RegistryServer, catalog: SchemaRegistryCatalog
) -> None:
    text = "x" * (MAX_RESPONSE_BYTES - 100)
    server.routes["/schemas/ids/1"] = Reply(200, b'{"schema": "%s"}' % text.encode(), chunked=True)
    assert (await catalog.by_id(1)).text == text


# --- outages and back-off -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (json_reply({"message": "down"}, 503), "HTTP 503"),
        (json_reply({}, 500), "HTTP 500"),
        (json_reply({}, 401), "HTTP 401"),
        (json_reply({}, 429), "HTTP 429"),
        (Reply(200, b"{}", delay=1.0), "no answer within 0.3 s"),
    ],
)
async def test_errors_of_the_registry_make_it_unavailable(
    server: RegistryServer, reply: Reply, why: str
) -> None:
    server.routes["/schemas/ids/1"] = reply
    catalog = SchemaRegistryCatalog("reg", server.url, timeout=0.3)
    try:
        with pytest.raises(CatalogUnavailable, match=why):
            await catalog.by_id(1)
        assert catalog.state.startswith("unavailable: GET ")
        assert why in catalog.state
        assert catalog.state.endswith("(retrying)")
    finally:
        await catalog.stop()


async def test_after_a_failure_new_ids_fail_at_once_and_retries_back_off(
    server: RegistryServer, catalog: SchemaRegistryCatalog, clock: Clock
) -> None:
    server.routes["/schemas/ids/1"] = schema_at(AVRO)
    server.routes["/schemas/ids/2"] = schema_at(AVRO)
    held = await catalog.by_id(1)
    server.stop()
    with pytest.raises(CatalogUnavailable, match=r"cannot connect|Error"):
        await catalog.by_id(2)  # this one tries, and finds the registry gone
    assert (catalog.fetches, catalog.failures, catalog.refused) == (2, 1, 0)

    began = time.perf_counter()
    for schema_id in range(3, 103):
        with pytest.raises(CatalogUnavailable, match="unavailable"):
            await catalog.by_id(schema_id)
    assert time.perf_counter() - began < 0.1  # 100 refusals, no waiting
    assert (catalog.fetches, catalog.refused) == (2, 100)
    assert await catalog.by_id(1) is held  # what is held is served

    # Back-off: 1 s, then 2 s, 4 s, 8 s, then max_age (10 s).
    for delay in (1.0, 2.0, 4.0, 8.0, 10.0, 10.0):
        clock.now += delay - 0.01
        with pytest.raises(CatalogUnavailable):
            await catalog.by_id(2)
        asked = catalog.fetches
        clock.now += 0.01
        with pytest.raises(CatalogUnavailable):
            await catalog.by_id(2)
        assert catalog.fetches == asked + 1, f"no retry after {delay} s"

    server.start()  # the same port
    clock.now += 10.0
    assert (await catalog.by_id(2)).text == AVRO
    assert catalog.state == "ok"
    server.stop()
    with pytest.raises(CatalogUnavailable):
        await catalog.by_id(3)
    fetches = catalog.fetches
    clock.now += 1.0  # back to the first step: the registry answered in between
    with pytest.raises(CatalogUnavailable):
        await catalog.by_id(3)
    assert catalog.fetches == fetches + 1


async def test_concurrent_failures_do_not_double_the_back_off_twice(
    server: RegistryServer, catalog: SchemaRegistryCatalog, clock: Clock
) -> None:
    for schema_id in (1, 2, 3):
        server.routes[f"/schemas/ids/{schema_id}"] = json_reply({}, 503, delay=0.1)
    outcomes = await asyncio.gather(*(catalog.by_id(n) for n in (1, 2, 3)), return_exceptions=True)
    assert all(isinstance(outcome, CatalogUnavailable) for outcome in outcomes)
    assert catalog.failures == 3
    clock.now += 1.0  # one failure's worth of back-off, not three
    server.routes["/schemas/ids/1"] = schema_at(AVRO)
    assert (await catalog.by_id(1)).text == AVRO


async def test_the_probe_brings_the_state_back_without_look_ups(server: RegistryServer) -> None:
    server.routes["/schemas/types"] = json_reply(["AVRO", "JSON", "PROTOBUF"])
    catalog = SchemaRegistryCatalog("reg", server.url, max_age=0.2)  # back-off 0.2 s
    await catalog.start()
    try:
        server.stop()
        with pytest.raises(CatalogUnavailable):
            await catalog.by_id(1)
        await asyncio.sleep(0.5)  # a few probes fail meanwhile
        assert catalog.state.startswith("unavailable")
        server.start()
        await until(lambda: catalog.state == "ok", timeout=5)
        assert "/schemas/types" in server.paths()
        assert not any(path.startswith("/schemas/ids/") for path in server.paths())
    finally:
        await catalog.stop()


# --- redirects and credentials --------------------------------------------------------------


async def test_redirects_are_followed_only_within_the_origin(
    server: RegistryServer, catalog: SchemaRegistryCatalog
) -> None:
    server.routes["/schemas/ids/1"] = Reply(307, headers={"Location": "/v2/schemas/ids/1"})
    server.routes["/v2/schemas/ids/1"] = schema_at(AVRO)
    assert (await catalog.by_id(1)).text == AVRO
    server.routes["/schemas/ids/2"] = Reply(
        302, headers={"Location": "http://registry.example:8081/schemas/ids/2"}
    )
    with pytest.raises(CatalogUnavailable, match="another origin"):
        await catalog.by_id(2)


@pytest.mark.parametrize(
    ("credentials", "header", "secret"),
    [
        (Credentials("alice", "s3cret-pw"), "Basic YWxpY2U6czNjcmV0LXB3", "s3cret-pw"),
        (Credentials(authorization="Bearer tok-123456"), "Bearer tok-123456", "tok-123456"),
    ],
)
async def test_credentials_go_in_a_header_and_nowhere_else(
    server: RegistryServer,
    caplog: pytest.LogCaptureFixture,
    credentials: Credentials,
    header: str,
    secret: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.routes["/schemas/ids/1"] = schema_at(AVRO)
    # A registry that echoes what it was sent, in its error and its redirect.
    server.routes["/schemas/ids/2"] = json_reply({"message": f"bad credentials {header}"}, 400)
    server.routes["/schemas/ids/3"] = json_reply({"message": f"no: {header}"}, 401)
    catalog = SchemaRegistryCatalog("reg", server.url, credentials=credentials)
    try:
        await catalog.by_id(1)
        assert server.requests[0].headers["Authorization"] == header
        with pytest.raises(SchemaError) as bad:
            await catalog.by_id(2)
        with pytest.raises(CatalogUnavailable) as refused:
            await catalog.by_id(3)
        shown = [str(bad.value), str(refused.value), catalog.state, repr(credentials)]
        shown += [record.getMessage() for record in caplog.records]
        assert not [text for text in shown if secret in text]
        assert "HTTP 401" in catalog.state
    finally:
        await catalog.stop()


async def test_userinfo_in_the_url_becomes_basic_credentials(server: RegistryServer) -> None:
    server.routes["/schemas/ids/1"] = schema_at(AVRO)
    catalog = SchemaRegistryCatalog("reg", f"http://bob:hunter22@127.0.0.1:{server.port}/")
    try:
        assert catalog.url == server.url
        await catalog.by_id(1)
        assert server.requests[0].headers["Authorization"] == "Basic Ym9iOmh1bnRlcjIy"
    finally:
        await catalog.stop()


def test_bad_urls_and_ca_files_are_refused_when_made(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no http"):
        SchemaRegistryCatalog("reg", "ftp://registry")
    with pytest.raises(ValueError, match="CA file"):
        SchemaRegistryCatalog("reg", "https://registry", ca_file=tmp_path / "missing.pem")
