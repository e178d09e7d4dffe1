"""Every configuration error, asserted exactly: one line, `file: path: message`.

Documents go through `ssegate.wiring.parse`, as `ssegate check` does: the loader's own
checks first, then the routes compiled and checked against each other.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ssegate import wiring
from ssegate.config import parse_config
from ssegate.errors import ConfigError

SOURCE = "ssegate.yaml"
ROUTE = {"path": "/events/{symbol}/{exchange}", "topic": "events"}
TOPIC_RULE = "1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', and not '.' or '..'"


def base() -> dict[str, Any]:
    return {"kafka": {"bootstrap_servers": "localhost:9092"}, "routes": [dict(ROUTE)]}


def with_(**sections: Any) -> dict[str, Any]:
    document = base()
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(document.get(name), dict):
            document[name] = {**document[name], **value}
        else:
            document[name] = value
    return document


def routes(*items: dict[str, Any]) -> dict[str, Any]:
    return with_(routes=[copy.deepcopy(item) for item in items])


def error_of(
    document: dict[str, Any] | str,
    environ: dict[str, str] | None = None,
    base_dir: Path | None = None,
) -> str:
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    with pytest.raises(ConfigError) as caught:
        wiring.parse(text, source=SOURCE, environ=environ or {}, base_dir=base_dir)
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.exit_status == 2
    return message


# --- YAML syntax and shape ----------------------------------------------------------------

YAML_CASES = [
    ("kafka: b: c", "line 1, column 9: mapping values are not allowed in this context"),
    (
        "kafka: [1, 2\n",
        "line 2, column 1: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 1)",
    ),
    ("kafka:\n  a: 1\n  a: 2\n", "line 3, column 3: duplicate key 'a'"),
    ("kafka: *nowhere", "line 1, column 8: found undefined alias"),
    (
        "kafka: !!python/object:os.system x",
        "line 1, column 8: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'",
    ),
    ("kafka:\n  x: \x01\n", "line 2, column 6: control characters are not allowed (U+0001)"),
    (
        "? [1]\n: 2",
        "line 1, column 3: found unhashable key (while constructing a mapping at line 1)",
    ),
    ("", "the configuration is empty (it needs kafka: and routes:)"),
    ("# nothing but a comment\n", "the configuration is empty (it needs kafka: and routes:)"),
    ("- kafka", "the top level must be a mapping of sections (kafka:, routes:, ...), got a list"),
    ("kafka", "the top level must be a mapping of sections (kafka:, routes:, ...), got a string"),
    (
        "7",
        "the top level must be a mapping of sections (kafka:, routes:, ...), got a single int "
        "value",
    ),
    ("kafka: &k [*k]\n", "kafka[0]: a YAML alias refers to the node that contains it"),
]


@pytest.mark.parametrize(("text", "message"), YAML_CASES)
def test_yaml(text: str, message: str) -> None:
    assert error_of(text) == f"{SOURCE}: {message}"


def test_merge_keys_may_be_overridden_without_a_duplicate_error() -> None:
    text = (
        "kafka: {bootstrap_servers: x}\n"
        "routes:\n"
        "  - &r {path: '/a', topic: a}\n"
        "  - {<<: *r, path: '/b'}\n"
    )
    assert [r.path for r in wiring.parse(text).routes] == ["/a", "/b"]


# --- ${env.NAME} ----------------------------------------------------------------------------

ENV_CASES = [
    (
        with_(kafka={"bootstrap_servers": "${env.KAFKA_BOOTSTRAP}"}),
        "kafka.bootstrap_servers: environment variable KAFKA_BOOTSTRAP is not set",
    ),
    (
        with_(listeners=[{"port": 1}, {"host": "h-${env.HOST}", "port": 2}]),
        "listeners[1].host: environment variable HOST is not set",
    ),
    (
        routes({**ROUTE, "topic": "${env.TOPIC}"}),
        "routes[0].topic: environment variable TOPIC is not set",
    ),
    (
        with_(kafka={"bootstrap_servers": "${env.}"}),
        "kafka.bootstrap_servers: malformed '${env.}' (write ${env.NAME} or ${env.NAME:-default})",
    ),
    (
        with_(kafka={"bootstrap_servers": "${env}"}),
        "kafka.bootstrap_servers: malformed '${env}' (write ${env.NAME} or ${env.NAME:-default})",
    ),
    (
        with_(kafka={"bootstrap_servers": "${env.A-B}"}),
        "kafka.bootstrap_servers: malformed '${env.A-B}' (write ${env.NAME} or "
        "${env.NAME:-default})",
    ),
    (
        with_(kafka={"bootstrap_servers": "${env.A:-${env.B}}"}),
        "kafka.bootstrap_servers: malformed '${env.A:-${env.B}' "
        "(write ${env.NAME} or ${env.NAME:-default})",
    ),
    (
        with_(kafka={"bootstrap_servers": "x${env.A"}),
        "kafka.bootstrap_servers: malformed '${env.A' (write ${env.NAME} or ${env.NAME:-default})",
    ),
    (
        with_(kafka={"bootstrap_servers": "${params.symbol}"}),
        "kafka.bootstrap_servers: '${params.symbol}' is not available here "
        "(only ${env.NAME} is; write $${ for a literal ${)",
    ),
    (
        with_(kafka={"bootstrap_servers": "${ENV.X}"}),
        "kafka.bootstrap_servers: '${ENV.X}' is not available here "
        "(only ${env.NAME} is; write $${ for a literal ${)",
    ),
    (
        with_(static={"/": "${env.PAGE"}),
        "static[\"/\"]: malformed '${env.PAGE' (write ${env.NAME} or ${env.NAME:-default})",
    ),
]


@pytest.mark.parametrize(("document", "message"), ENV_CASES)
def test_env(document: dict[str, Any], message: str) -> None:
    assert error_of(document) == f"{SOURCE}: {message}"


# --- Types (msgspec's errors in our words) --------------------------------------------------

TYPE_CASES = [
    (
        routes({**ROUTE, "topik": "events"}),
        "routes[0].topik: unknown field (allowed: path, topic, filters, event_id, start, "
        "guarded, unauthorized, value, on_invalid)",
    ),
    (
        with_(surprise=1),
        "surprise: unknown field "
        "(allowed: kafka, routes, listeners, sse, cors, limits, server, static, guards, catalogs)",
    ),
    (
        with_(kafka={"ring": {"max_record": 1}}),
        "kafka.ring.max_record: unknown field (allowed: max_records, max_bytes)",
    ),
    (
        routes({**ROUTE, "filters": [{"key": "a", "header": {}}]}),
        "routes[0].filters[0].header: unknown field (allowed: key, headers, value)",
    ),
    (routes({"path": "/a"}), "routes[0]: missing required field 'topic'"),
    (routes(ROUTE, {"topic": "a"}), "routes[1]: missing required field 'path'"),
    ({"routes": []}, "missing required field 'kafka'"),
    ({"kafka": {"bootstrap_servers": "x"}}, "missing required field 'routes'"),
    (
        with_(kafka={"bootstrap_servers": None}),
        "kafka.bootstrap_servers: expected str, got null (the value is empty)",
    ),
    (
        routes({**ROUTE, "start": "earlyest"}),
        "routes[0].start: 'earlyest' is not one of earliest, latest, compacted",
    ),
    (routes({**ROUTE, "event_id": "id"}), "routes[0].event_id: 'id' is not one of etag, key"),
    (with_(cors={"policy": "open"}), "cors.policy: 'open' is not one of same-origin, cross-origin"),
    (with_(listeners=[{"port": "abc"}]), "listeners[0].port: expected int, got str"),
    (with_(listeners=[{"port": 1.5}]), "listeners[0].port: expected int, got float"),
    (with_(listeners=[{"port": True}]), "listeners[0].port: expected int, got bool"),
    (with_(listeners={"port": 1}), "listeners: expected list, got mapping"),
    (with_(routes="everything"), "routes: expected list, got str"),
    (with_(sse={"retry": "soon"}), "sse.retry: expected int or null, got str"),
    (with_(sse={"initial_comment": "maybe"}), "sse.initial_comment: expected bool, got str"),
    (
        routes({**ROUTE, "filters": [{"headers": {"exchange": 1}}]}),
        "routes[0].filters[0].headers.exchange: expected str, got int (quote the value in YAML)",
    ),
    (
        routes({**ROUTE, "filters": [{"key": 7}]}),
        "routes[0].filters[0].key: expected str or null, got int (quote the value in YAML)",
    ),
    (
        routes({**ROUTE, "filters": [{"headers": {"a": "1", "b": None}}]}),
        "routes[0].filters[0].headers.b: expected str, got null (the value is empty)",
    ),
    (
        routes({**ROUTE, "filters": None}),
        "routes[0].filters: expected list, got null (the value is empty)",
    ),
    (
        with_(static={"/": "index.html", "/x": True}),
        'static["/x"]: expected str, got bool (quote the value in YAML)',
    ),
    (with_(static={1: "index.html"}), "static: key 1 must be a string"),
    (
        with_(kafka={"properties": {"acks": "all", "sasl": None}}),
        "kafka.properties.sasl: expected bool, int, float or str, got null (the value is empty)",
    ),
    (
        with_(kafka={"properties": {"list": [1]}}),
        "kafka.properties.list: expected bool, int, float or str, got list",
    ),
    (
        with_(sse={"heartbeat": "5x"}),
        "sse.heartbeat: expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, "
        "got '5x'",
    ),
    (with_(sse={"heartbeat": float("inf")}), "sse.heartbeat: expected a finite duration, got inf"),
    (
        with_(limits={"max_header_bytes": "16k"}),
        "limits.max_header_bytes: expected a size such as 64KiB, 1MiB, 1GiB, 1MB or a number of "
        "bytes, got '16k'",
    ),
    (
        with_(kafka={"ring": {"max_bytes": "1.5B"}}),
        "kafka.ring.max_bytes: size '1.5B' is not a whole number of bytes",
    ),
]


@pytest.mark.parametrize(("document", "message"), TYPE_CASES)
def test_types(document: dict[str, Any], message: str) -> None:
    assert error_of(document) == f"{SOURCE}: {message}"


# --- Routes ---------------------------------------------------------------------------------

ROUTE_CASES = [
    (
        routes({**ROUTE, "path": "/events/{symbol"}),
        "routes[0].path: unbalanced '{' at position 8 in '/events/{symbol'",
    ),
    (
        routes({**ROUTE, "path": "events"}),
        "routes[0].path: a path template must start with '/', got 'events'",
    ),
    (
        routes(
            {"path": "/a", "topic": "a"},
            {"path": "/b", "topic": "b"},
            {
                **ROUTE,
                "filters": [
                    {"key": "${params.symbol}", "headers": {"tag": "${params.tagg}"}},
                ],
            },
        ),
        "routes[2].filters[0].headers.tag: unknown parameter 'tagg' (the path captures: symbol, "
        "exchange)",
    ),
    (
        routes({**ROUTE, "topic": "events-${params.sym}"}),
        "routes[0].topic: unknown parameter 'sym' (the path captures: symbol, exchange)",
    ),
    (
        routes({"path": "/all", "topic": "t", "filters": [{"key": "${params.symbol}"}]}),
        "routes[0].filters[0].key: unknown parameter 'symbol' (the path captures no parameters)",
    ),
    (
        routes({**ROUTE, "filters": [{"headers": {"zilla:identity": "${guard.identity}"}}]}),
        "routes[0].filters[0].headers.zilla:identity: '${guard.identity}' is not supported yet "
        "(routes can use ${params.name}, ${tls.client.<field>} and "
        "${guarded['<guard>'].identity})",
    ),
    (
        routes({**ROUTE, "topic": "${identity.sub}"}),
        "routes[0].topic: '${identity.sub}' is not supported yet "
        "(routes can use ${params.name}, ${tls.client.<field>} and "
        "${guarded['<guard>'].identity})",
    ),
    (
        routes({**ROUTE, "topic": "${guarded['jwt0'].identity}-topic"}),
        "routes[0].topic: \"${guarded['jwt0'].identity}\" needs the route guarded by 'jwt0' "
        "(guarded: {jwt0: [roles]})",
    ),
    (
        routes({**ROUTE, "topic": "${query.symbol}"}),
        "routes[0].topic: unknown namespace 'query' in '${query.symbol}' (routes can use "
        "${params.name}, ${tls.client.<field>} and ${guarded['<guard>'].identity})",
    ),
    (
        routes({**ROUTE, "topic": "${params.symbol"}),
        "routes[0].topic: malformed expression '${params.symbol' (no closing '}'; write $${ for "
        "a literal ${)",
    ),
    (
        routes({**ROUTE, "filters": [{"key": "${symbol}"}]}),
        "routes[0].filters[0].key: malformed expression '${symbol}' "
        "(expected ${namespace.name}; write $${ for a literal ${)",
    ),
    (
        routes({**ROUTE, "filters": [{"headers": {"${params.symbol}": "x"}}]}),
        "routes[0].filters[0].headers: header name '${params.symbol}' cannot hold an expression "
        "(only values can)",
    ),
    (
        routes({**ROUTE, "topic": "my topic"}),
        f"routes[0].topic: 'my topic' is not a valid Kafka topic name ({TOPIC_RULE})",
    ),
    (
        routes({**ROUTE, "topic": ".."}),
        f"routes[0].topic: '..' is not a valid Kafka topic name ({TOPIC_RULE})",
    ),
    (
        routes({**ROUTE, "topic": ""}),
        f"routes[0].topic: '' is not a valid Kafka topic name ({TOPIC_RULE})",
    ),
    (
        routes({**ROUTE, "topic": "t" * 250}),
        f"routes[0].topic: '{'t' * 250}' is not a valid Kafka topic name ({TOPIC_RULE})",
    ),
    (
        routes({**ROUTE, "topic": "events/${params.symbol}"}),
        f"routes[0].topic: 'events/${{params.symbol}}' can never be a valid Kafka topic name "
        f"({TOPIC_RULE})",
    ),
    (
        routes(
            {"path": "/a/{x}", "topic": "a"},
            {"path": "/b", "topic": "b"},
            {"path": "/a/{x}", "topic": "c"},
        ),
        "routes[2].path: '/a/{x}' duplicates routes[0].path '/a/{x}' "
        "(the first route wins, so this one would never match)",
    ),
    (
        routes({"path": "/a/{x}", "topic": "a"}, {"path": "/a/{y}", "topic": "b"}),
        "routes[1].path: '/a/{y}' matches the same paths as routes[0].path '/a/{x}' "
        "(the first route wins, so this one would never match)",
    ),
    (
        routes({"path": "/health", "topic": "a"}),
        "routes[0].path: '/health' is a built-in endpoint (/health, /ready, /metrics)",
    ),
    (
        routes(ROUTE, {"path": "/metrics", "topic": "a"}),
        "routes[1].path: '/metrics' is a built-in endpoint (/health, /ready, /metrics)",
    ),
]


@pytest.mark.parametrize(("document", "message"), ROUTE_CASES)
def test_routes(document: dict[str, Any], message: str) -> None:
    assert error_of(document) == f"{SOURCE}: {message}"


def test_parameterised_routes_may_match_built_in_paths() -> None:
    # `/{topic}` is Zilla's own example; the HTTP layer answers /health first.
    text = yaml.safe_dump(routes({"path": "/{topic}", "topic": "${params.topic}"}))
    (route,) = wiring.parse(text).routes
    assert route.template.match("/health") == {"topic": "health"}


# --- Listeners, numbers, CORS ---------------------------------------------------------------

VALUE_CASES = [
    (with_(kafka={"bootstrap_servers": " "}), "kafka.bootstrap_servers: must not be empty"),
    (
        with_(kafka={"ring": {"max_records": 0}}),
        "kafka.ring.max_records: must be at least 1, got 0",
    ),
    (with_(kafka={"ring": {"max_bytes": 0}}), "kafka.ring.max_bytes: must be at least 1, got 0"),
    (
        with_(kafka={"metadata_refresh": 0}),
        "kafka.metadata_refresh: must be greater than 0, got 0s",
    ),
    (
        with_(kafka={"max_catchup_readers": 0}),
        "kafka.max_catchup_readers: must be at least 1, got 0",
    ),
    (with_(listeners=[]), "listeners: at least one listener is required"),
    (with_(listeners=[{"port": 70000}]), "listeners[0].port: 70000 is out of range (0 to 65535)"),
    (with_(listeners=[{"port": -1}]), "listeners[0].port: -1 is out of range (0 to 65535)"),
    (with_(listeners=[{"host": ""}]), "listeners[0].host: must not be empty"),
    (with_(listeners=[{"backlog": 0}]), "listeners[0].backlog: must be at least 1, got 0"),
    (
        with_(listeners=[{"http2": {"max_concurrent_streams": 0}}]),
        "listeners[0].http2.max_concurrent_streams: must be at least 1, got 0",
    ),
    (
        with_(listeners=[{"http2": {"max_concurrent_streams": 2**31}}]),
        "listeners[0].http2.max_concurrent_streams: must be at most 2147483647, got 2147483648",
    ),
    (
        with_(listeners=[{"http2": {"enabled": False, "cleartext": True}}]),
        "listeners[0].http2.cleartext: needs http2.enabled",
    ),
    (
        with_(listeners=[{"http2": {"enabled": "yes"}}]),
        "listeners[0].http2.enabled: expected bool, got str",
    ),
    (
        with_(listeners=[{"port": 7114}, {"host": "0.0.0.0"}, {"port": 7114}]),
        "listeners[2]: duplicates listeners[0] (127.0.0.1:7114)",
    ),
    (
        with_(listeners=[{"host": "::1", "port": 80}, {"host": "::1", "port": 80}]),
        "listeners[1]: duplicates listeners[0] ([::1]:80)",
    ),
    (with_(sse={"heartbeat": 0}), "sse.heartbeat: must be greater than 0, got 0s"),
    (
        with_(sse={"heartbeat": "-1"}),
        "sse.heartbeat: expected a duration such as 15s, 500ms, 2m, 1h or a number of seconds, "
        "got '-1'",
    ),
    (with_(sse={"heartbeat": -0.5}), "sse.heartbeat: must be greater than 0, got -0.5s"),
    (with_(sse={"retry": -1}), "sse.retry: must be at least 0, got -1"),
    (
        with_(cors={"allow": {"origins": ["https://app.example", "app.example"]}}),
        "cors.allow.origins[1]: 'app.example' is not an origin (write scheme://host[:port], or *)",
    ),
    (
        with_(cors={"allow": {"origins": ["https://app.example/"]}}),
        "cors.allow.origins[0]: 'https://app.example/' is not an origin (write "
        "scheme://host[:port], or *)",
    ),
    (
        with_(cors={"allow": {"origins": ["https://app.example:99999"]}}),
        "cors.allow.origins[0]: 'https://app.example:99999' is not an origin (write "
        "scheme://host[:port], or *)",
    ),
    (
        with_(cors={"allow": {"origins": ["https://*.example"]}}),
        "cors.allow.origins[0]: 'https://*.example' is not an origin (write "
        "scheme://host[:port], or *)",
    ),
    (with_(cors={"max_age": -1}), "cors.max_age: must be at least 0, got -1s"),
    (with_(limits={"max_streams": 0}), "limits.max_streams: must be at least 1, got 0"),
    (
        with_(limits={"max_streams_per_ip": -1}),
        "limits.max_streams_per_ip: must be at least 0, got -1",
    ),
    (with_(limits={"max_header_bytes": 0}), "limits.max_header_bytes: must be at least 1, got 0"),
    (
        with_(limits={"request_timeout": 0}),
        "limits.request_timeout: must be greater than 0, got 0s",
    ),
    (
        with_(limits={"keepalive_timeout": "0ms"}),
        "limits.keepalive_timeout: must be greater than 0, got 0s",
    ),
    (
        with_(limits={"write_buffer_high_water": 0}),
        "limits.write_buffer_high_water: must be at least 1, got 0",
    ),
]


@pytest.mark.parametrize(("document", "message"), VALUE_CASES)
def test_values(document: dict[str, Any], message: str) -> None:
    assert error_of(document) == f"{SOURCE}: {message}"


def test_accepted_edge_values() -> None:
    document = with_(
        listeners=[{"port": 0}, {"port": 0}, {"port": 65535}, {"host": "::1", "port": 65535}],
        sse={"retry": 0},
        limits={"max_streams_per_ip": 0},
        cors={
            "max_age": 0,
            "allow": {
                "origins": ["*", "http://localhost:3000", "https://[::1]:8443", "app+x://a-b.c"]
            },
        },
    )
    config = parse_config(yaml.safe_dump(document)).config
    assert [listener.port for listener in config.listeners] == [0, 0, 65535, 65535]


# --- Static files ---------------------------------------------------------------------------


def test_static_errors(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("x")
    (tmp_path / "dir").mkdir()

    def static(entries: dict[str, str], *route_list: dict[str, Any]) -> str:
        document = with_(static=entries)
        if route_list:
            document["routes"] = list(route_list)
        return error_of(document, base_dir=tmp_path)

    assert static({"index.html": "index.html"}) == (
        f"{SOURCE}: static.index.html: the URL path 'index.html' must start with '/'"
    )
    assert static({"/a?b": "index.html"}) == (
        f"{SOURCE}: static[\"/a?b\"]: the URL path '/a?b' cannot hold '?' or '#'"
    )
    assert static({"/ready": "index.html"}) == (
        f"{SOURCE}: static[\"/ready\"]: '/ready' is a built-in endpoint (/health, /ready, /metrics)"
    )
    assert static({"/": "index.html", "/missing": "missing.html"}) == (
        f'{SOURCE}: static["/missing"]: no such file: {tmp_path / "missing.html"}'
    )
    assert (
        static({"/d": "dir"}) == f'{SOURCE}: static["/d"]: not a regular file: {tmp_path / "dir"}'
    )
    assert static({"/x.html": "index.html"}, {"path": "/{topic}", "topic": "${params.topic}"}) == (
        f"{SOURCE}: static[\"/x.html\"]: '/x.html' is also matched by routes[0].path '/{{topic}}'; "
        "a URL serves a file or a stream, not both"
    )


# --- Only the first error -------------------------------------------------------------------


def test_only_the_first_error_is_reported() -> None:
    document = with_(
        kafka={"max_catchup_readers": 0},
        listeners=[{"port": 70000}],
        routes=[{"path": "bad", "topic": "t"}],
    )
    assert error_of(document) == f"{SOURCE}: kafka.max_catchup_readers: must be at least 1, got 0"
    document["kafka"]["max_catchup_readers"] = 1
    assert error_of(document) == f"{SOURCE}: listeners[0].port: 70000 is out of range (0 to 65535)"
    # Routes are compiled once the configuration's own checks pass.
    document["listeners"] = [{"port": 7000}]
    assert error_of(document) == (
        f"{SOURCE}: routes[0].path: a path template must start with '/', got 'bad'"
    )


def test_environment_errors_come_before_type_errors() -> None:
    document = with_(listeners=[{"port": "x"}], sse={"heartbeat": "${env.HB}"})
    assert error_of(document) == f"{SOURCE}: sse.heartbeat: environment variable HB is not set"


def test_default_source_name() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("kafka: {}\nroutes: []\n")
    assert str(caught.value) == "<string>: kafka: missing required field 'bootstrap_servers'"
