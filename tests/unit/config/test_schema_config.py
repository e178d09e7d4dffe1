"""`catalogs` and routes' `value` models in the configuration: each mistake named by its
place, exactly as `ssegate check` prints it (`config.schema_checks`, `schemas.build`), and
what a correct configuration compiles to."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ssegate import wiring
from ssegate.errors import ConfigError
from ssegate.schemas.inline import InlineCatalog
from ssegate.schemas.mapping import JsonMapping
from ssegate.schemas.model import ModelSpec
from ssegate.schemas.registry import SchemaRegistryCatalog

SOURCE = "ssegate.yaml"
QUOTE = json.dumps(
    {"type": "record", "name": "Quote", "fields": [{"name": "symbol", "type": "string"}]}
)
INLINE = {"type": "inline", "subjects": {"quotes-value": {"type": "avro", "schema": QUOTE}}}
REGISTRY = {"type": "schema-registry", "url": "http://registry.test:8081"}
APICURIO = {"type": "apicurio", "url": "http://apicurio.test:8080"}
BROKEN = json.dumps({"type": "record", "name": "Q", "fields": [{"name": "a", "type": "Nope"}]})
ROUTE: dict[str, Any] = {"path": "/quotes", "topic": "quotes"}


def document(
    catalogs: dict[str, Any] | None = None,
    routes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kafka": {"bootstrap_servers": "localhost:9092"},
        "routes": copy.deepcopy(routes or [ROUTE]),
    }
    if catalogs is not None:
        doc["catalogs"] = copy.deepcopy(catalogs)
    return doc


def routed(value: dict[str, Any] | None = None, **route: Any) -> list[dict[str, Any]]:
    """One route on `quotes` with `value` as its model."""
    item: dict[str, Any] = {**ROUTE, **route}
    if value is not None:
        item["value"] = value
    return [item]


def error_of(doc: dict[str, Any], base_dir: Path | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        wiring.parse(
            yaml.safe_dump(doc, sort_keys=False), source=SOURCE, environ={}, base_dir=base_dir
        )
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.exit_status == 2
    return message.removeprefix(f"{SOURCE}: ")


def compiled(doc: dict[str, Any], base_dir: Path | None = None) -> wiring.CompiledConfig:
    return wiring.parse(
        yaml.safe_dump(doc, sort_keys=False), source=SOURCE, environ={}, base_dir=base_dir
    )


# --- catalogs ---------------------------------------------------------------------------------

CATALOG_CASES = [
    pytest.param(
        {"1reg": REGISTRY},
        "catalogs[\"1reg\"]: a catalog name is a letter, then letters, digits, '_' or '-'",
        id="name",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "subjects": {"s": {"type": "avro", "schema": QUOTE}}}},
        "catalogs.reg.subjects: applies to inline catalogs only",
        id="subjects-on-registry",
    ),
    pytest.param(
        {"inl": {**INLINE, "url": "http://registry.test"}},
        "catalogs.inl.url: applies to schema-registry and apicurio catalogs only",
        id="url-on-inline",
    ),
    pytest.param(
        {"inl": {**INLINE, "credentials": {"username": "u", "password": "p"}}},
        "catalogs.inl.credentials: applies to schema-registry and apicurio catalogs only",
        id="credentials-on-inline",
    ),
    pytest.param(
        {"inl": {**INLINE, "trust": "ca.pem"}},
        "catalogs.inl.trust: applies to schema-registry and apicurio catalogs only",
        id="trust-on-inline",
    ),
    pytest.param(
        {"api": {**APICURIO, "context": "dev"}},
        "catalogs.api.context: applies to schema-registry catalogs only",
        id="context-on-apicurio",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "group": "orders"}},
        "catalogs.reg.group: applies to apicurio catalogs only",
        id="group-on-registry",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "use_id": "contentId"}},
        "catalogs.reg.use_id: applies to apicurio catalogs only",
        id="use_id-on-registry",
    ),
    pytest.param(
        {"inl": {**INLINE, "id_encoding": "4-byte"}},
        "catalogs.inl.id_encoding: applies to apicurio catalogs only",
        id="id_encoding-on-inline",
    ),
    pytest.param(
        {"inl": {"type": "inline"}},
        "catalogs.inl.subjects: an inline catalog needs at least one subject",
        id="no-subjects",
    ),
    pytest.param(
        {"inl": {"type": "inline", "subjects": {"s": {"type": "avro"}}}},
        "catalogs.inl.subjects.s: give the schema as `schema` (text) or `file`, one of them",
        id="neither-schema-nor-file",
    ),
    pytest.param(
        {
            "inl": {
                "type": "inline",
                "subjects": {"s": {"type": "avro", "schema": QUOTE, "file": "quote.avsc"}},
            }
        },
        "catalogs.inl.subjects.s: give the schema as `schema` (text) or `file`, one of them",
        id="schema-and-file",
    ),
    pytest.param(
        {
            "inl": {
                "type": "inline",
                "subjects": {
                    "s": {"type": "avro", "schema": QUOTE, "references": {"com.x.A": "a-value"}}
                },
            }
        },
        "catalogs.inl.subjects.s.references.com.x.A: no subject 'a-value' here",
        id="reference-to-a-missing-subject",
    ),
    pytest.param(
        {"reg": {"type": "schema-registry"}},
        "catalogs.reg.url: the registry's URL, http:// or https://",
        id="no-url",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "url": "ftp://registry.test"}},
        "catalogs.reg.url: the registry's URL, http:// or https://",
        id="bad-url",
    ),
    pytest.param(
        {"api": {**APICURIO, "url": "registry.test:8080"}},
        "catalogs.api.url: the registry's URL, http:// or https://",
        id="url-without-scheme",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "url": "https://"}},
        "catalogs.reg: catalog 'reg': url 'https://' is no http(s) URL",
        id="url-without-host",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "max_age": "0s"}},
        "catalogs.reg.max_age: must be greater than 0",
        id="max_age",
    ),
    pytest.param(
        {
            "reg": {
                **REGISTRY,
                "credentials": {"username": "u", "password": "p", "authorization": "Bearer t"},
            }
        },
        "catalogs.reg.credentials: username and password, or authorization: not both",
        id="basic-and-authorization",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "credentials": {"username": "u", "authorization": "Bearer t"}}},
        "catalogs.reg.credentials: username and password, or authorization: not both",
        id="username-and-authorization",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "credentials": {"password": "p"}}},
        "catalogs.reg.credentials.username: required with a password",
        id="password-without-username",
    ),
    pytest.param(
        {"reg": {**REGISTRY, "context": "no spaces"}},
        "catalogs.reg: catalog 'reg': context 'no spaces' is not a context name",
        id="context-name",
    ),
    pytest.param(
        {
            "inl": {
                "type": "inline",
                "subjects": {
                    "a": {"type": "avro", "schema": QUOTE, "references": {"B": "b"}},
                    "b": {"type": "avro", "schema": QUOTE, "references": {"A": "a"}},
                },
            }
        },
        "catalogs.inl.subjects: catalog 'inl': subject 'a': references form a cycle: a -> b",
        id="reference-cycle",
    ),
]


@pytest.mark.parametrize(("catalogs", "message"), CATALOG_CASES)
def test_catalog_errors(catalogs: dict[str, Any], message: str) -> None:
    assert error_of(document(catalogs)) == message


def test_a_missing_schema_file(tmp_path: Path) -> None:
    catalogs = {"inl": {"type": "inline", "subjects": {"s": {"type": "avro", "file": "q.avsc"}}}}
    assert error_of(document(catalogs), tmp_path) == (
        f"catalogs.inl.subjects.s.file: {tmp_path / 'q.avsc'} is not a file"
    )


def test_a_schema_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "q.avsc").write_bytes(b'{"type": "string", "doc": "\xff"}')
    catalogs = {"inl": {"type": "inline", "subjects": {"s": {"type": "avro", "file": "q.avsc"}}}}
    assert error_of(document(catalogs), tmp_path) == (
        f"catalogs.inl.subjects: catalog 'inl': subject 's': {tmp_path / 'q.avsc'} is not "
        "UTF-8 text"
    )


def test_a_missing_trust_file(tmp_path: Path) -> None:
    catalogs = {"reg": {**REGISTRY, "trust": "ca.pem"}}
    assert error_of(document(catalogs), tmp_path) == (
        f"catalogs.reg.trust: {tmp_path / 'ca.pem'} is not a file"
    )


def test_a_trust_file_without_certificates(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    catalogs = {"reg": {**REGISTRY, "trust": "ca.pem"}}
    assert error_of(document(catalogs), tmp_path).startswith(
        f"catalogs.reg: catalog 'reg': CA file {tmp_path / 'ca.pem'} cannot be used: "
    )


# --- models -----------------------------------------------------------------------------------

MODEL_CASES = [
    pytest.param(
        {"inl": INLINE},
        routed({"model": "avro", "catalog": "registry"}),
        "routes[0].value.catalog: no such catalog (catalogs: inl)",
        id="unknown-catalog",
    ),
    pytest.param(
        {"b": REGISTRY, "a": INLINE},
        routed({"model": "avro", "catalog": "c"}),
        "routes[0].value.catalog: no such catalog (catalogs: a, b)",
        id="unknown-catalog-of-two",
    ),
    pytest.param(
        None,
        routed({"model": "avro", "catalog": "registry"}),
        "routes[0].value.catalog: no such catalog (catalogs: none are configured)",
        id="unknown-catalog-of-none",
    ),
    pytest.param(
        None,
        routed({"model": "protobuf"}),
        "routes[0].value.catalog: a protobuf model needs a catalog",
        id="protobuf-without-catalog",
    ),
    pytest.param(
        None,
        routed({"model": "json", "framing": "confluent"}),
        "routes[0].value: framing and subject need a catalog",
        id="framing-without-catalog",
    ),
    pytest.param(
        None,
        routed({"model": "json", "subject": "quotes-value"}),
        "routes[0].value: framing and subject need a catalog",
        id="subject-without-catalog",
    ),
    pytest.param(
        {"inl": INLINE},
        routed({"model": "avro", "catalog": "inl", "framing": "confluent"}),
        "routes[0].value.framing: an inline catalog has no ids: records cannot name one",
        id="framing-on-inline",
    ),
    pytest.param(
        {"reg": REGISTRY},
        routed(
            {"model": "avro", "catalog": "reg", "framing": "none"},
            path="/quotes/{symbol}",
            topic="quotes.${params.symbol}",
        ),
        "routes[0].value.subject: required when records carry no schema id and the topic is a "
        "template (otherwise `<topic>-value`)",
        id="templated-topic-without-subject",
    ),
    pytest.param(
        {"inl": INLINE},
        routed({"model": "avro", "catalog": "inl"}, path="/q/{symbol}", topic="q.${params.symbol}"),
        "routes[0].value.subject: required when records carry no schema id and the topic is a "
        "template (otherwise `<topic>-value`)",
        id="templated-topic-inline",
    ),
    pytest.param(
        {"reg": REGISTRY},
        routed({"model": "avro", "catalog": "reg", "message": "market.Quote"}),
        "routes[0].value.message: applies to protobuf models only",
        id="message-on-avro",
    ),
    pytest.param(
        {"reg": REGISTRY},
        routed({"model": "protobuf", "catalog": "reg", "unions": "tagged"}),
        "routes[0].value.unions: applies to avro models only",
        id="unions-on-protobuf",
    ),
    pytest.param(
        {"reg": REGISTRY},
        routed({"model": "json", "catalog": "reg", "field_names": "json"}),
        "routes[0].value.field_names: applies to protobuf models only",
        id="field_names-on-json",
    ),
    pytest.param(
        {"reg": REGISTRY},
        routed({"model": "avro", "catalog": "reg", "version": 0}),
        "routes[0].value.version: a version number is 1 or more, or `latest`",
        id="version",
    ),
    pytest.param(
        None,
        routed(on_invalid="event"),
        "routes[0].on_invalid: applies to routes with a value model only",
        id="on_invalid-without-model",
    ),
    pytest.param(
        {"inl": INLINE},
        routed({"model": "avro", "catalog": "inl", "subject": "trades-value"}),
        "routes[0].value.subject: no subject 'trades-value' in the catalog",
        id="inline-subject-not-there",
    ),
    pytest.param(
        {"inl": INLINE},
        routed({"model": "avro", "catalog": "inl"}, topic="trades"),
        "routes[0].value.subject: no subject 'trades-value' in the catalog",
        id="inline-default-subject-not-there",
    ),
    pytest.param(
        {"inl": INLINE},
        routed({"model": "protobuf", "catalog": "inl"}),
        "routes[0].value: subject 'quotes-value' is avro, not protobuf",
        id="inline-subject-of-another-kind",
    ),
]


@pytest.mark.parametrize(("catalogs", "routes", "message"), MODEL_CASES)
def test_model_errors(
    catalogs: dict[str, Any] | None, routes: list[dict[str, Any]], message: str
) -> None:
    assert error_of(document(catalogs, routes)) == message


def test_an_avro_model_without_a_catalog() -> None:
    assert error_of(document(None, routed({"model": "avro"}))) == (
        "routes[0].value.catalog: an avro model needs a catalog"
    )


def test_the_error_names_the_route_it_is_in() -> None:
    routes = [ROUTE, {"path": "/b", "topic": "b", "value": {"model": "avro", "catalog": "nope"}}]
    assert error_of(document({"inl": INLINE}, routes)) == (
        "routes[1].value.catalog: no such catalog (catalogs: inl)"
    )


def inline_quotes(schema: str) -> dict[str, Any]:
    """An inline catalog `inl` whose subject `quotes-value` is the Avro `schema`."""
    return {
        "inl": {"type": "inline", "subjects": {"quotes-value": {"type": "avro", "schema": schema}}}
    }


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        pytest.param(
            BROKEN,
            "does not compile: unknown type 'Nope' (neither a primitive type nor a named type "
            "the schema or its references define)",
            id="unknown-type",
        ),
        pytest.param(
            "record Q {", "is not JSON: JSON is malformed: invalid character (byte 0)", id="text"
        ),
    ],
)
def test_an_inline_schema_that_does_not_parse_names_the_route(schema: str, why: str) -> None:
    routes = routed({"model": "avro", "catalog": "inl"})
    assert error_of(document(inline_quotes(schema), routes)) == (
        f"routes[0].value: avro schema 'quotes-value' (version 1) {why}"
    )


# --- what a correct configuration compiles to ---------------------------------------------------


def test_an_inline_avro_catalog_and_route_compile_to_one_model(tmp_path: Path) -> None:
    (tmp_path / "quote.avsc").write_text(QUOTE)
    catalogs = {
        "inl": {
            "type": "inline",
            "subjects": {"quotes-value": {"type": "avro", "file": "quote.avsc"}},
        }
    }
    result = compiled(
        document(catalogs, routed({"model": "avro", "catalog": "inl"}, on_invalid="event")),
        tmp_path,
    )
    assert isinstance(result.catalogs["inl"], InlineCatalog)
    (key,) = result.models
    assert result.routes[0].model == key
    spec = result.models[key]
    assert spec == ModelSpec(
        kind="avro",
        catalog=result.catalogs["inl"],
        framing="none",
        subject="quotes-value",
        version="latest",
        message=None,
        mapping=JsonMapping(),
        max_age=300.0,
    )
    assert result.config.routes[0].on_invalid == "event"


def test_a_registry_model_takes_the_catalogs_framing_and_max_age() -> None:
    catalogs = {
        "reg": {**REGISTRY, "max_age": "30s"},
        "api": {**APICURIO, "id_encoding": "4-byte"},
    }
    routes = [
        {"path": "/a", "topic": "a", "value": {"model": "avro", "catalog": "reg"}},
        {"path": "/b", "topic": "b", "value": {"model": "json", "catalog": "api"}},
        {
            "path": "/c",
            "topic": "c",
            "value": {"model": "protobuf", "catalog": "reg", "framing": "none", "version": 3},
        },
    ]
    result = compiled(document(catalogs, routes))
    assert isinstance(result.catalogs["reg"], SchemaRegistryCatalog)
    specs = [result.models[route.model] for route in result.routes if route.model is not None]
    assert [(s.kind, s.framing, s.subject, s.version, s.max_age) for s in specs] == [
        ("avro", "confluent", None, "latest", 30.0),
        ("json", "apicurio-4", None, "latest", 300.0),
        ("protobuf", "none", "c-value", 3, 30.0),
    ]


def test_a_json_model_without_catalog_compiles() -> None:
    result = compiled(document(None, routed({"model": "json"})))
    (spec,) = result.models.values()
    assert (spec.kind, spec.catalog, spec.framing, spec.subject) == ("json", None, "none", None)


def test_identical_models_on_one_topic_share_a_key_and_not_across_topics() -> None:
    value = {"model": "avro", "catalog": "reg"}
    routes: list[dict[str, Any]] = [
        {"path": "/a", "topic": "quotes", "value": value},
        {"path": "/b", "topic": "quotes", "value": value, "on_invalid": "event"},
        {"path": "/c", "topic": "trades", "value": value},
        {"path": "/d", "topic": "quotes", "value": {**value, "int64": "string"}},
        {"path": "/e", "topic": "quotes"},
    ]
    result = compiled(document({"reg": REGISTRY}, routes))
    a, b, c, d, e = (route.model for route in result.routes)
    assert a is not None
    assert a == b
    assert c not in (None, a)
    assert d not in (None, a, c)
    assert e is None
    assert set(result.models) == {a, c, d}
    assert result.models[a].mapping == JsonMapping()
    assert d is not None
    assert result.models[d].mapping == JsonMapping(int64="string")
