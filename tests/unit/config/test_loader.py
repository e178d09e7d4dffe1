"""Loading a configuration: the demo file, defaults, files on disk, ${env.NAME}.

Assertions about routes go through `ssegate.wiring`, which compiles them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ssegate import wiring
from ssegate.config import Config, LoadedConfig, load_config, parse_config
from ssegate.config.schema import ByteSize, Seconds
from ssegate.errors import ConfigError
from ssegate.kafka.eventid import IdForm
from ssegate.routing import ResolvedFilter, StartPolicy

DEMO = textwrap.dedent(
    """\
    kafka:
      bootstrap_servers: ${env.KAFKA_BOOTSTRAP}
    listeners:
      - host: 127.0.0.1
        port: 7114
    routes:
      - path: /events/{symbol}/{exchange}
        topic: events
        filters:
          - key: ${params.symbol}
            headers:
              exchange: ${params.exchange}
    static:
      /: index.html
    """
)
ENV = {"KAFKA_BOOTSTRAP": "127.0.0.1:9092"}


def _minimal(extra: str = "") -> str:
    return "kafka: {bootstrap_servers: 'localhost:9092'}\nroutes: []\n" + extra


def test_demo(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html></html>")
    file = tmp_path / "ssegate.yaml"
    file.write_text(DEMO)
    loaded = load_config(file, environ=ENV)
    assert isinstance(loaded, LoadedConfig)
    assert isinstance(loaded.config, Config)
    assert loaded.source == str(file)
    assert loaded.base_dir == tmp_path
    assert loaded.config.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert loaded.config.listeners[0].port == 7114
    assert loaded.static_files() == {"/": tmp_path / "index.html"}
    compiled = wiring.load(file, environ=ENV)
    assert isinstance(compiled, wiring.CompiledConfig)
    assert (compiled.config, compiled.source, compiled.base_dir) == (
        loaded.config,
        loaded.source,
        loaded.base_dir,
    )
    assert compiled.static_files() == loaded.static_files()
    (route,) = compiled.routes
    assert route.index == 0
    assert route.path == "/events/{symbol}/{exchange}"
    match = route.template.match("/events/BRK%2FA/NYSE")
    assert match == {"symbol": "BRK/A", "exchange": "NYSE"}
    assert route.resolve(match) == ("events", (ResolvedFilter(b"BRK/A", (("exchange", b"NYSE"),)),))


def test_defaults() -> None:
    config = parse_config(_minimal()).config
    assert [(listener.host, listener.port, listener.backlog) for listener in config.listeners] == [
        ("127.0.0.1", 7114, 4096)
    ]
    assert config.kafka.ring.max_records == 100_000
    assert config.kafka.ring.max_bytes == 64 * 1024 * 1024
    assert config.kafka.metadata_refresh == 5.0
    assert config.kafka.max_catchup_readers == 8
    assert config.kafka.properties == {}
    assert (config.sse.heartbeat, config.sse.initial_comment, config.sse.retry) == (
        15.0,
        True,
        None,
    )
    assert config.cors.policy == "same-origin"
    assert config.cors.allow.origins is None
    assert config.limits.max_streams == 50_000
    assert config.limits.max_header_bytes == 16 * 1024
    assert config.limits.write_buffer_high_water == 1024 * 1024
    assert config.static == {}


def test_units_and_types_are_converted() -> None:
    config = parse_config(
        "kafka: {bootstrap_servers: x, ring: {max_bytes: 1MiB}}\nroutes: []\n"
        + (
            "sse: {heartbeat: 500ms, retry: '2000'}\n"
            "limits: {max_header_bytes: 64KiB, request_timeout: 2m, keepalive_timeout: 1.5}\n"
            "cors: {max_age: 1h}\n"
        )
    ).config
    assert config.sse.heartbeat == 0.5
    assert isinstance(config.sse.heartbeat, Seconds)
    assert config.sse.retry == 2000
    assert config.kafka.ring.max_bytes == 1048576
    assert config.limits.max_header_bytes == 65536
    assert isinstance(config.limits.max_header_bytes, ByteSize)
    assert config.limits.request_timeout == 120.0
    assert config.limits.keepalive_timeout == 1.5
    assert config.cors.max_age == 3600.0


def test_routes_keep_declaration_order_and_options() -> None:
    compiled = wiring.parse(
        _minimal().replace("routes: []\n", "")
        + textwrap.dedent(
            """\
            routes:
              - {path: "/b/{x}", topic: b, event_id: key, start: latest}
              - {path: "/a/{x}", topic: a}
            """
        )
    )
    assert [(r.index, r.path, r.id_form, r.start) for r in compiled.routes] == [
        (0, "/b/{x}", IdForm.KEY, StartPolicy.LATEST),
        (1, "/a/{x}", IdForm.ETAG, StartPolicy.EARLIEST),
    ]


def test_the_config_alone_does_not_compile_routes() -> None:
    # Route compilation is the wiring's job: the loader takes any route the schema allows.
    text = _minimal().replace("routes: []", "routes: [{path: bad, topic: '${params.x}'}]")
    loaded = parse_config(text)
    assert not hasattr(loaded, "routes")
    with pytest.raises(ConfigError) as caught:
        wiring.compile_config(loaded)
    assert str(caught.value) == (
        "<string>: routes[0].path: a path template must start with '/', got 'bad'"
    )


def test_parse_config_defaults_base_dir_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "page.html").write_text("x")
    loaded = parse_config(_minimal("static: {/page: page.html}\n"))
    assert loaded.base_dir == tmp_path
    assert loaded.source == "<string>"
    assert loaded.static_files() == {"/page": tmp_path / "page.html"}


def test_static_files_resolve_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("x")
    loaded = parse_config(_minimal("static: {/: web/index.html}\n"), base_dir=tmp_path)
    assert loaded.static_files() == {"/": tmp_path / "web" / "index.html"}


def test_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSEGATE_TEST_BOOTSTRAP", "broker:9092")
    text = "kafka: {bootstrap_servers: '${env.SSEGATE_TEST_BOOTSTRAP}'}\nroutes: []\n"
    assert parse_config(text).config.kafka.bootstrap_servers == "broker:9092"


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_bytes(b"\xef\xbb\xbf" + _minimal().encode())
    assert load_config(file).config.kafka.bootstrap_servers == "localhost:9092"


def test_missing_file(tmp_path: Path) -> None:
    file = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert str(caught.value) == f"{file}: cannot read the file: No such file or directory"
    assert caught.value.exit_status == 2


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"{tmp_path}: cannot read the file: Is a directory"


def test_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_bytes(b"kafka:\n  bootstrap_servers: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert str(caught.value) == f"{file}: line 2: not UTF-8 text (byte 0xe9)"


def test_relative_file_keeps_its_name_in_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("c.yaml").write_text("kafka: {}\nroutes: []\n")
    with pytest.raises(ConfigError) as caught:
        load_config(Path("c.yaml"))
    assert str(caught.value) == "c.yaml: kafka: missing required field 'bootstrap_servers'"


# --- ${env.NAME} --------------------------------------------------------------------------


def _bootstrap(value: str, environ: dict[str, str]) -> str:
    text = f"kafka: {{bootstrap_servers: {value!r}}}\nroutes: []\n"
    return parse_config(text, environ=environ).config.kafka.bootstrap_servers


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("${env.A}", {"A": "a:1"}, "a:1"),
        ("host-${env.A}:${env.B}", {"A": "x", "B": "9092"}, "host-x:9092"),
        ("${env.A:-fallback:9092}", {}, "fallback:9092"),
        ("${env.A:-fallback}", {"A": "set"}, "set"),
        ("${env.A:-}x", {}, "x"),
        ("${env.A}", {"A": ""}, ""),  # set but empty is set (then judged by the field)
        ("$${env.A}", {}, "${env.A}"),  # the escape
        ("a$${b}c", {}, "a${b}c"),
        ("$$${env.A}", {"A": "v"}, "$${env.A}"),  # "$", then the escape
        ("cost $5", {}, "cost $5"),
        ("${env.A}", {"A": "${env.B}"}, "${env.B}"),  # values are not substituted again
        ("${env.A:-a b}", {}, "a b"),
    ],
)
def test_env_substitution(value: str, environ: dict[str, str], expected: str) -> None:
    if expected == "":
        with pytest.raises(ConfigError, match="must not be empty"):
            _bootstrap(value, environ)
        return
    assert _bootstrap(value, environ) == expected


def test_env_substitution_before_type_conversion() -> None:
    text = _minimal(
        "listeners: [{host: '${env.HOST}', port: '${env.PORT}'}]\n"
        "sse: {heartbeat: '${env.HB:-20s}', initial_comment: '${env.IC}'}\n"
        "limits: {max_header_bytes: '${env.MAXH}'}\n"
    )
    config = parse_config(
        text, environ={"HOST": "0.0.0.0", "PORT": "7115", "IC": "false", "MAXH": "32KiB"}
    ).config
    assert (config.listeners[0].host, config.listeners[0].port) == ("0.0.0.0", 7115)
    assert config.sse.heartbeat == 20.0
    assert config.sse.initial_comment is False
    assert config.limits.max_header_bytes == 32768


def test_env_in_lists_and_properties_but_not_in_keys() -> None:
    text = _minimal(
        "kafka: {bootstrap_servers: x, properties: {'${env.K}': '${env.V}', sasl.mechanism: "
        "PLAIN}}\n"
        "cors: {allow: {origins: ['${env.ORIGIN}']}}\n"
    ).replace("kafka: {bootstrap_servers: 'localhost:9092'}\n", "")
    config = parse_config(text, environ={"V": "secret", "ORIGIN": "https://a.example"}).config
    assert config.kafka.properties == {"${env.K}": "secret", "sasl.mechanism": "PLAIN"}
    assert config.cors.allow.origins == ["https://a.example"]


def test_env_in_route_fields_stays_literal_for_routing() -> None:
    text = textwrap.dedent(
        """\
        kafka: {bootstrap_servers: x}
        routes:
          - path: ${env.PREFIX}/{symbol}
            topic: ${env.TOPIC}
            filters:
              - key: ${env.KEY}${params.symbol}
                headers: {h: '${env.H}', e: '$${params.symbol}'}
        """
    )
    environ = {"PREFIX": "/events", "TOPIC": "ticks", "KEY": "k:${x}", "H": "{v}$"}
    (route,) = wiring.parse(text, environ=environ).routes
    assert route.path == "/events/{symbol}"
    assert route.resolve({"symbol": "S"}) == (
        "ticks",
        (ResolvedFilter(b"k:${x}S", (("e", b"${params.symbol}"), ("h", b"{v}$"))),),
    )


def test_value_filters_take_expressions_in_equals_alone_or_listed() -> None:
    text = textwrap.dedent(
        """\
        kafka: {bootstrap_servers: x}
        routes:
          - path: /q/{symbol}
            topic: t
            filters:
              - value: {path: $.symbol, equals: '${env.P}${params.symbol}'}
              - value:
                  - {path: $.a, equals: '${params.symbol}'}
                  - {path: '$.b[0]', equals: '$${params.symbol}'}
        """
    )
    (route,) = wiring.parse(text, environ={"P": "x:"}).routes
    assert route.resolve({"symbol": "S"}) == (
        "t",
        (
            ResolvedFilter(values=((("a",), "S"), (("b", 0), "${params.symbol}"))),
            ResolvedFilter(values=((("symbol",), "x:S"),)),
        ),
    )


def test_env_value_ending_in_dollar_before_a_brace_stays_literal() -> None:
    text = (
        "kafka: {bootstrap_servers: x}\n"
        "routes: [{path: /a, topic: t, filters: [{key: '${env.A}{b}'}]}]\n"
    )
    (route,) = wiring.parse(text, environ={"A": "x$"}).routes
    assert route.resolve({}) == ("t", (ResolvedFilter(b"x${b}"),))


def test_env_value_ending_in_dollar_before_an_expression_is_an_error() -> None:
    text = (
        "kafka: {bootstrap_servers: x}\n"
        "routes: [{path: '/{s}', topic: t, filters: [{key: '${env.A}${params.s}'}]}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={"A": "x$"})
    assert str(caught.value) == (
        "<string>: routes[0].filters[0].key: "
        "a substituted value ending in '$' cannot precede an expression"
    )


def test_yaml_anchors_and_merge_keys() -> None:
    text = textwrap.dedent(
        """\
        kafka: {bootstrap_servers: '${env.B}'}
        routes:
          - &base {path: "/a/{x}", topic: "${env.T}", start: latest}
          - <<: *base
            path: /b/{x}
        """
    )
    compiled = wiring.parse(text, environ={"B": "b:1", "T": "events"})
    assert [(r.path, r.topic.text, r.start) for r in compiled.routes] == [
        ("/a/{x}", "events", StartPolicy.LATEST),
        ("/b/{x}", "events", StartPolicy.LATEST),
    ]
