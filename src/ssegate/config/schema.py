"""The configuration's shape: typed, validated structures with documented defaults.

These classes hold values and nothing else (like h2's H2Configuration): the loader
(`ssegate.config.loader`) fills them from YAML, substitutes `${env.NAME}`, and checks what
a type cannot express (ranges, duplicate listeners, static files); `ssegate.wiring` compiles
the routes and checks them (parameters a route does not capture, for instance). Every
default bounds a resource, with the reason beside it. `docs/configuration.md` documents
each field.

Durations accept a number of seconds or a string with a unit (`500ms`, `15s`, `2m`, `1h`);
sizes accept a number of bytes or a string with a unit (`64KiB`, `1MiB`, `1GiB`, `1MB`).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Seconds(float):
    """A duration in seconds; YAML may say `15`, `15s`, `500ms`, `2m` or `1h`."""


class ByteSize(int):
    """A size in bytes; YAML may say `1048576`, `1MiB`, `64KiB` or `1MB`."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base: unknown keys are errors (a typo must not silently fall back to a default).

    Subclasses restate `frozen=True`: msgspec inherits it, but type checkers only see it
    when each class says so.
    """


class TlsCertificate(_Section, frozen=True):
    """A certificate (PEM, the server's first, then its chain) and its private key."""

    certificate: str
    key: str
    key_passphrase: str | None = None  # for an encrypted key; write `${env.NAME}`


class TlsConfig(_Section, frozen=True):
    """TLS on a listener (docs/tls.md); files resolve against the config file's directory."""

    certificate: str
    key: str
    key_passphrase: str | None = None  # for an encrypted key; write `${env.NAME}`
    # Other certificates, chosen by the name the client asks for (SNI); `*.example.com`
    # matches one label.
    sni: dict[str, TlsCertificate] = msgspec.field(default_factory=dict)
    client_auth: Literal["none", "optional", "required"] = "none"
    client_ca: str | None = None  # PEM CA certificates that sign client certificates
    min_version: str | float = "1.2"  # "1.2" or "1.3"; YAML may write it unquoted
    # How often the certificate and key files are looked at for a change (then reloaded
    # for new handshakes); 0: only on SIGHUP. A stat per file: cheap.
    reload_check: Seconds = Seconds(5.0)


class Http2Config(_Section, frozen=True):
    """HTTP/2 on a listener (docs/tls.md)."""

    # Offered by ALPN on a TLS listener: browsers then carry every stream of an origin on
    # one connection, past HTTP/1.1's six per origin.
    enabled: bool = True
    # HTTP/2 without TLS, by prior knowledge (`curl --http2-prior-knowledge`), on a listener
    # without `tls`: for local use; browsers never speak it.
    cleartext: bool = False
    # Streams one connection may have open at once; h2's and nginx's default. A browser
    # queues more until one ends.
    max_concurrent_streams: int = 100


class Listener(_Section, frozen=True):
    """A listening socket: plain HTTP, or HTTPS with `tls`."""

    host: str = "127.0.0.1"  # loopback unless the operator says otherwise
    port: int = 7114
    # Backlog for listen(2): a reconnect storm of thousands arrives at once.
    backlog: int = 4096
    tls: TlsConfig | None = None
    http2: Http2Config = msgspec.field(default_factory=Http2Config)


class RingConfig(_Section, frozen=True):
    """The in-memory history each topic reader keeps, from which resumes are served."""

    # ~100k records of ~256 B is ~40 MiB with Python object overhead: a deploy's worth of
    # history for a busy topic, so reconnecting clients resume from memory, not Kafka.
    max_records: int = 100_000
    max_bytes: ByteSize = ByteSize(64 * 1024 * 1024)


class KafkaConfig(_Section, frozen=True):
    """The Kafka cluster; `properties` passes any librdkafka setting through (SASL, SSL)."""

    bootstrap_servers: str
    properties: dict[str, str | int | float | bool] = msgspec.field(default_factory=dict)
    ring: RingConfig = msgspec.field(default_factory=RingConfig)
    # How often readers look for topics that do not exist yet and for added partitions.
    metadata_refresh: Seconds = Seconds(5.0)
    # Concurrent temporary readers serving clients older than the ring; more wait their turn.
    max_catchup_readers: int = 8
    # How far back a partition's record timestamps may jump, for topics with so many
    # partitions that ids are compact (docs/guarantees.md): a compact id resumes this much
    # earlier. LogAppendTime topics could use 0.
    compact_id_margin: Seconds = Seconds(1.0)


class SseOptions(_Section, frozen=True):
    """What every stream carries besides events."""

    # WHATWG suggests ~15 s; proxies and load balancers commonly cut idle streams at 60 s.
    heartbeat: Seconds = Seconds(15.0)
    initial_comment: bool = True  # defeats buffering proxies that wait for the first bytes
    retry: int | None = None  # milliseconds; written as `retry:` when set (Zilla never writes it)
    # A busy topic's events wait up to this long to share one write per connection: the
    # write is the cost, so 10 events per write cost ~1/10 each (decision 0006). An idle
    # topic's event is written at once. 0 writes every batch as soon as it is read.
    max_delay: Seconds = Seconds(0.01)


class CorsAllow(_Section, frozen=True):
    origins: list[str] | None = None  # None: any origin
    methods: list[str] | None = None
    headers: list[str] | None = None
    credentials: bool = False


class CorsConfig(_Section, frozen=True):
    """Cross-origin policy, as Zilla's http `access-control`."""

    policy: Literal["same-origin", "cross-origin"] = "same-origin"
    allow: CorsAllow = msgspec.field(default_factory=CorsAllow)
    max_age: Seconds | None = None
    expose_headers: list[str] = msgspec.field(default_factory=list)


class Limits(_Section, frozen=True):
    """Bounds that keep one client from hurting the others."""

    max_streams: int = 50_000  # per process: the performance budget per worker; then 503
    max_streams_per_ip: int = 0  # 0 = unlimited; beyond it: 429
    # New streams get 503 while the event loop runs later than this: the process has more
    # work than it can do, and refusing newcomers keeps the established streams; 0 = off.
    max_loop_lag: Seconds = Seconds(1.0)
    # Resumes per second a route admits while it closes streams for slowness (10 s after
    # the last one); the others are told to come back in 2-4 s. 0 = unlimited.
    reconnect_budget: int = 1000
    # Topics read at once (each a consumer and a thread): a route with `${params.x}` in its
    # topic must not let clients open readers without end; beyond it: 429.
    max_topics: int = 100
    # 16 KiB as h11, node and tomcat's defaults; beyond it: 431.
    max_header_bytes: ByteSize = ByteSize(16 * 1024)
    request_timeout: Seconds = Seconds(10.0)  # time to receive a complete request: 408
    keepalive_timeout: Seconds = Seconds(5.0)  # idle non-stream connections (uvicorn's 5 s)
    # A client that reads none of the answers it is owed (other than a stream) for this long
    # is dropped; pipelined requests wait unparsed while the answers pile up.
    write_timeout: Seconds = Seconds(5.0)
    # Unsent bytes a stream may hold before it is closed; the client resumes by id.
    write_buffer_high_water: ByteSize = ByteSize(1024 * 1024)


class ServerOptions(_Section, frozen=True):
    """The processes that serve."""

    # One process per core, sharing the listening ports (SO_REUSEPORT); `--workers` overrides.
    workers: int = 1
    # From SIGTERM until every stream has ended (each with a checkpoint) and the process is
    # gone; Kubernetes' default grace period is 30 s, so 10 s leaves room.
    shutdown_timeout: Seconds = Seconds(10.0)


class ValueMatch(_Section, frozen=True):
    """A field of the record's JSON value (decoded by the route's model, if any) that must
    equal a text (docs/schemas.md#filters-on-values)."""

    path: str  # `$.a.b[0]`: names and array indexes from the value's root
    equals: str  # a string field compares as it is, any other as its JSON text


class FilterConfig(_Section, frozen=True):
    """One filter item: the key, every header and every value condition must match."""

    key: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    value: ValueMatch | list[ValueMatch] | None = None


class CatalogCredentials(_Section, frozen=True):
    """How a catalog authenticates to its registry: basic, or an Authorization header."""

    username: str | None = None
    password: str | None = None  # write `${env.NAME}`
    authorization: str | None = None  # the whole header value, e.g. `Bearer ${env.TOKEN}`


class InlineSchema(_Section, frozen=True):
    """A schema given in the configuration (`schema`) or in a file next to it (`file`)."""

    type: Literal["avro", "protobuf", "json"]
    schema: str | None = None
    file: str | None = None
    # Other inline subjects this one imports, by the name it imports them under.
    references: dict[str, str] = msgspec.field(default_factory=dict)


class CatalogConfig(_Section, frozen=True):
    """A schema catalog (docs/schemas.md): inline, a Confluent-compatible registry, or
    Apicurio's native API. Options apply to the types named beside them."""

    type: Literal["inline", "schema-registry", "apicurio"]
    subjects: dict[str, InlineSchema] = msgspec.field(default_factory=dict)  # inline
    url: str | None = None  # schema-registry, apicurio
    # How long a subject's `latest` version is trusted before it is asked again; ids are
    # immutable and kept (Zilla's `max-age`, the same default).
    max_age: Seconds = Seconds(300.0)
    credentials: CatalogCredentials | None = None
    trust: str | None = None  # PEM CA certificates for an https registry
    context: str | None = None  # schema-registry: a Confluent context
    group: str = "default"  # apicurio: the artifact group
    use_id: Literal["globalId", "contentId"] = "globalId"  # apicurio
    id_encoding: Literal["8-byte", "4-byte"] = "8-byte"  # apicurio: bytes of the framed id


class ModelConfig(_Section, frozen=True):
    """How a route's record values are validated and turned into JSON."""

    model: Literal["json", "avro", "protobuf"]
    # The catalog's name; none: a `json` model only checks that values are JSON.
    catalog: str | None = None
    # How a record names its schema: an id framed before the payload (the catalog's
    # framing), or none, then `subject` at `version`. Default: the catalog's.
    framing: Literal["confluent", "apicurio", "apicurio-4", "none"] | None = None
    subject: str | None = None  # default with no framing: `<topic>-value`
    version: int | Literal["latest"] = "latest"
    message: str | None = None  # protobuf: the message's full name, when not framed
    # JSON mapping (docs/schemas.md): 64-bit integers as numbers or strings (default:
    # numbers for Avro, strings for Protobuf, as its canonical JSON), Avro unions plain or
    # tagged, Protobuf field names as in the .proto or lowerCamelCase.
    int64: Literal["number", "string"] | None = None
    unions: Literal["plain", "tagged"] = "plain"
    field_names: Literal["proto", "json"] = "proto"


class GuardCredentials(_Section, frozen=True):
    """Where a guard looks for a request's token, in this order (Zilla's)."""

    cookie: str | None = None  # a cookie's name; none by default
    header: bool = True  # Authorization: Bearer <token>
    # A query parameter, for EventSource (it cannot set headers); redacted from logs.
    query: str | None = "access_token"


class GuardConfig(_Section, frozen=True):
    """A JWT guard (docs/security.md)."""

    type: Literal["jwt"]
    issuer: str  # `iss` must equal it
    audience: str  # `aud` must contain it
    # Inline JWKs, a JWKS URL, or none: then the `jwks_uri` of the issuer's OpenID discovery
    # document, `<issuer>/.well-known/jwks.json` when it has none (404).
    keys: list[dict[str, Any]] | str | None = None
    # The signature algorithms accepted; a token's `alg` must be one and match its key's.
    algorithms: list[str] = msgspec.field(default_factory=lambda: ["RS256", "ES256"])
    roles: str = "scope"  # claim path of the roles: an array, or space-separated
    identity: str = "sub"  # claim path of the identity
    attributes: dict[str, str] = msgspec.field(default_factory=dict)  # name -> claim path
    leeway: Seconds = Seconds(0.0)  # clock skew allowed on exp and nbf (Zilla: none)
    # Seconds before a token's exp when its streams get `event:challenge` (renew by POST);
    # none: no challenge. Streams end at exp unless renewed, either way.
    challenge: Seconds | None = None
    credentials: GuardCredentials = msgspec.field(default_factory=GuardCredentials)


class RouteConfig(_Section, frozen=True):
    """A path template mapped to a topic, with optional filters."""

    path: str  # e.g. /events/{symbol}/{exchange}; each {name} matches one path segment
    topic: str  # literal, or with ${params.name}
    filters: list[FilterConfig] = msgspec.field(default_factory=list)  # any of; empty: all
    event_id: Literal["etag", "key"] = "etag"  # key: Zilla's ["<base64 key>","<progress>"]
    # Where a client without an id begins; `compacted`: the latest value of each key, then live.
    start: Literal["earliest", "latest", "compacted"] = "earliest"
    # The guard that must let a caller in, and the roles its token must carry.
    guarded: dict[str, list[str]] = msgspec.field(default_factory=dict)
    # What a caller the guard refuses gets: 401/403, or the route's 404 (Zilla's way).
    unauthorized: Literal[401, 404] = 401
    # A model: validate each record and send its value as JSON (docs/schemas.md).
    value: ModelConfig | None = None
    # A record that fails its model: `skip` (an id-only checkpoint moves past it) or `event`
    # (`event:invalid` with its partition, offset and reason, and its id).
    on_invalid: Literal["skip", "event"] = "skip"


class Config(_Section, frozen=True):
    """The whole file."""

    kafka: KafkaConfig
    routes: list[RouteConfig]
    listeners: list[Listener] = msgspec.field(default_factory=lambda: [Listener()])
    sse: SseOptions = msgspec.field(default_factory=SseOptions)
    cors: CorsConfig = msgspec.field(default_factory=CorsConfig)
    limits: Limits = msgspec.field(default_factory=Limits)
    server: ServerOptions = msgspec.field(default_factory=ServerOptions)
    # URL path -> file (relative to the config file), served as-is: e.g. a demo page at `/`.
    static: dict[str, str] = msgspec.field(default_factory=dict)
    guards: dict[str, GuardConfig] = msgspec.field(default_factory=dict)
    catalogs: dict[str, CatalogConfig] = msgspec.field(default_factory=dict)
