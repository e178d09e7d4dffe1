"""`ApicurioCatalog` (`ssegate.schemas.apicurio`) against a scripted loopback server that
answers as Apicurio Registry 3.3.3 was seen to answer (tests/integration/test_catalogs.py
checks the same against the real registry)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ssegate.schemas.apicurio import ApicurioCatalog
from ssegate.schemas.schema import SchemaError, UnknownSchema
from tests.unit.schemas.registry_server import RegistryServer, Reply, json_reply

API = "/apis/registry/v3"
AVRO = '{"type":"record","name":"Quote","fields":[{"name":"symbol","type":"string"}]}'
MONEY = 'syntax = "proto3";\npackage shop;\nmessage Money { int64 units = 1; }\n'
ORDER = 'syntax = "proto3";\nimport "money.proto";\nmessage Order { shop.Money total = 1; }\n'


@pytest.fixture
def server() -> Iterator[RegistryServer]:
    registry = RegistryServer()
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture
async def catalog(server: RegistryServer) -> AsyncIterator[ApicurioCatalog]:
    made = ApicurioCatalog("apicurio", server.url)
    yield made
    await made.stop()


def version(global_id: int, content_id: int, artifact_type: str, **more: Any) -> dict[str, Any]:
    return {
        "globalId": global_id,
        "contentId": content_id,
        "artifactType": artifact_type,
        "artifactId": more.pop("artifactId", "quote"),
        "version": more.pop("version", "1"),
        **more,
    }


def content(text: str, content_type: str = "application/json") -> Reply:
    return Reply(200, text.encode(), {"Content-Type": content_type})


def publish(
    server: RegistryServer,
    global_id: int,
    content_id: int,
    artifact_type: str,
    text: str,
    references: list[dict[str, Any]] | None = None,
    **more: Any,
) -> None:
    """What Apicurio answers about one artifact version, by both of its ids."""
    found = json_reply({"count": 1, "versions": [version(global_id, content_id, artifact_type)]})
    for plural, singular, number in (
        ("globalIds", "globalId", global_id),
        ("contentIds", "contentId", content_id),
    ):
        server.routes[f"{API}/ids/{plural}/{number}"] = content(text)
        server.routes[f"{API}/ids/{plural}/{number}/references"] = json_reply(references or [])
        server.routes[f"{API}/search/versions?{singular}={number}"] = found
    group = more.pop("group", "default")
    artifact = more.pop("artifact", "quote")
    at = more.pop("at", "1")
    metadata = version(global_id, content_id, artifact_type, artifactId=artifact, version=at)
    server.routes[f"{API}/groups/{group}/artifacts/{artifact}/versions/{at}"] = json_reply(metadata)


async def test_an_id_is_a_global_id_whose_type_comes_from_a_search(
    server: RegistryServer, catalog: ApicurioCatalog
) -> None:
    publish(server, 5, 3, "AVRO", AVRO)
    schema = await catalog.by_id(5)
    assert (schema.kind, schema.text, schema.id) == ("avro", AVRO, 5)
    assert (schema.subject, schema.version) == ("quote", 1)
    assert server.paths() == [
        f"{API}/ids/globalIds/5",
        f"{API}/search/versions?globalId=5",
        f"{API}/ids/globalIds/5/references",
    ]
    assert catalog.cached(5) is schema
    assert (catalog.group, catalog.use_id, catalog.id_size) == ("default", "globalId", 8)


async def test_content_ids_and_four_byte_framing(server: RegistryServer) -> None:
    publish(server, 5, 3, "JSON", '{"type":"object"}')
    catalog = ApicurioCatalog(
        "apicurio", server.url + "/apis/registry/v2/", use_id="contentId", id_encoding="4-byte"
    )
    try:
        assert catalog.url == server.url + API  # v2 in the URL is spoken as v3
        schema = await catalog.by_id(3)
        assert (schema.kind, schema.id) == ("json", 3)
        assert f"{API}/ids/contentIds/3" in server.paths()
        assert catalog.id_size == 4
    finally:
        await catalog.stop()


async def test_references_name_group_artifact_and_version(
    server: RegistryServer, catalog: ApicurioCatalog
) -> None:
    # money.proto was registered through ccompat: its reference has no groupId.
    publish(server, 6, 6, "PROTOBUF", MONEY, artifact="money.proto")
    reference = {
        "groupId": None,
        "artifactId": "money.proto",
        "version": "1",
        "name": "money.proto",
    }
    publish(server, 7, 7, "PROTOBUF", ORDER, [reference])
    schema = await catalog.by_id(7)
    [imported] = schema.references
    assert (imported.name, imported.schema.text, imported.schema.id) == ("money.proto", MONEY, 6)
    assert (imported.schema.kind, imported.schema.subject) == ("protobuf", "money.proto")
    assert f"{API}/groups/default/artifacts/money.proto/versions/1" in server.paths()


async def test_subjects_are_artifacts_of_the_group(server: RegistryServer) -> None:
    publish(server, 9, 4, "AVRO", AVRO, group="shop", at="2")
    latest = json_reply(version(9, 4, "AVRO", version="2"))
    server.routes[f"{API}/groups/shop/artifacts/quote/versions/branch=latest"] = latest
    catalog = ApicurioCatalog("apicurio", server.url, group="shop")
    try:
        schema = await catalog.by_subject("quote", "latest")
        assert (schema.id, schema.version, schema.text) == (9, 2, AVRO)
        assert await catalog.by_subject("quote", 2) is schema  # the version found is kept
        assert catalog.cached(9) is schema
        # Text and references are fetched by the global id the metadata named.
        assert f"{API}/ids/globalIds/9" in server.paths()
        with pytest.raises(UnknownSchema):
            await catalog.by_subject("other", 1)
    finally:
        await catalog.stop()


@pytest.mark.parametrize(
    ("routes", "error", "message"),
    [
        ({}, UnknownSchema, "globalId 5: not found"),
        ({"search": json_reply({"count": 0, "versions": []})}, UnknownSchema, "no artifact"),
        (
            {
                "search": json_reply(
                    {"count": 2, "versions": [version(5, 5, "AVRO"), version(8, 5, "JSON")]}
                )
            },
            SchemaError,
            "several types",
        ),
        (
            {"search": json_reply({"count": 1, "versions": [version(5, 5, "OPENAPI")]})},
            SchemaError,
            "'OPENAPI' is not",
        ),
        ({"content": Reply(200, b"\xc8\x01\xff")}, SchemaError, "not UTF-8 text"),
        ({"references": json_reply([{"artifactId": "x"}])}, SchemaError, "lacks a name"),
        ({"references": json_reply({"x": 1})}, SchemaError, "not a list"),
    ],
)
async def test_what_cannot_be_used_is_said(
    server: RegistryServer,
    catalog: ApicurioCatalog,
    routes: dict[str, Reply],
    error: type[Exception],
    message: str,
) -> None:
    if routes:
        publish(server, 5, 5, "AVRO", AVRO)
    paths = {
        "search": f"{API}/search/versions?globalId=5",
        "content": f"{API}/ids/globalIds/5",
        "references": f"{API}/ids/globalIds/5/references",
    }
    for name, reply in routes.items():
        server.routes[paths[name]] = reply
    with pytest.raises(error, match=message):
        await catalog.by_id(5)


def test_options_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="use_id"):
        ApicurioCatalog("apicurio", "http://registry", use_id="id")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="id_encoding"):
        ApicurioCatalog("apicurio", "http://registry", id_encoding="legacy")  # type: ignore[arg-type]
