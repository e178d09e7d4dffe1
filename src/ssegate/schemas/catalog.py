"""Schema catalogs: where a model finds the schema a record names (`schemas.schema.Schema`).

Rules every catalog keeps:

1. `cached(id)` is the hot path (once per record): synchronous, a dictionary look-up, never
   any I/O. A miss is followed by `await by_id(id)`, which asks the registry.
2. An id names one schema forever, so a fetched id is kept (a bounded LRU, `cache_size`
   entries). A subject at a numbered version is kept the same way. A subject at `"latest"`
   is asked again once it is older than `max_age` (300 s, Zilla's default); when that
   fails (unavailable, or an unusable newest version), the schema already held is served
   and `state` or the log says why; a 404 drops it (the subject was deleted).
3. A schema comes with its references resolved, recursively: each reference is fetched
   once per resolution, shared with concurrent resolutions, and kept like a numbered
   version. A cycle, more than MAX_DEPTH levels or more than MAX_REFERENCES schemas is a
   `SchemaError`.
4. Concurrent look-ups of the same id (or subject and version) share one request.
5. Errors: `UnknownSchema` when the registry answers 404 (remembered for `unknown_ttl`
   seconds, so records naming a missing id do not each cost a request);
   `CatalogUnavailable` when it cannot be asked (refused, timeout, TLS, 401/403, 429, 5xx,
   a redirect to another origin); `SchemaError` for an answer that is no usable schema
   (over MAX_RESPONSE_BYTES, not JSON, a schema that is not text, an unknown type).
   Nothing else escapes.
6. Back-off, as Zilla's catalogs do: after a failure the registry is not asked again for
   1 s, then 2 s, 4 s, ... up to `max_age` or MAX_BACKOFF, whichever is less; meanwhile a
   look-up that needs the registry raises `CatalogUnavailable` at once, without waiting (a
   reader never stalls on a registry that is down). `start()` runs a task that probes the
   registry when the back-off ends, so `state` turns back to "ok" without traffic. The
   first answer of any kind (even a 404) ends the back-off.
7. Credentials (basic user and password, or a whole `Authorization` value) travel only in
   request headers: never in a URL, a log line, an error message or `state`.
8. One `httpx.AsyncClient` per catalog, created on first use and closed by `stop()`;
   redirects are followed only within the registry's own origin.

This module holds the interface; `schemas.inline` the inline catalog;
`schemas.http_catalog` the HTTP machinery the registry clients share (`schemas.registry`
for Confluent-compatible registries, `schemas.apicurio` for Apicurio's own API).
"""

from __future__ import annotations

from typing import Literal, Protocol

from ssegate.schemas.schema import Schema, SchemaError, SchemaKind

Version = int | Literal["latest"]

MAX_RESPONSE_BYTES = 1024 * 1024  # a registry's answer, or an inline schema's file


class Catalog(Protocol):
    """What the reader path needs of a catalog (see the module rules)."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> str:
        """Either "ok" or "unavailable: <why> (retrying)"."""
        ...

    @property
    def fetches(self) -> int:
        """Requests sent to the registry."""
        ...

    @property
    def failures(self) -> int:
        """Requests that failed (`CatalogUnavailable`) plus look-ups whose answer was no
        usable schema (`SchemaError`); a 404 is an answer, not a failure."""
        ...

    @property
    def refused(self) -> int:
        """Look-ups answered `CatalogUnavailable` at once because of the back-off."""
        ...

    def cached(self, schema_id: int) -> Schema | None: ...

    async def by_id(self, schema_id: int) -> Schema: ...

    async def by_subject(self, subject: str, version: Version) -> Schema: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_KINDS: dict[str, SchemaKind] = {"AVRO": "avro", "PROTOBUF": "protobuf", "JSON": "json"}


def kind_of(registry_type: object, where: str) -> SchemaKind:
    """A registry's schema type (AVRO, PROTOBUF, JSON; absent means AVRO) as a kind."""
    kind = _KINDS.get(registry_type.upper()) if isinstance(registry_type, str) else None
    if registry_type is None:
        kind = "avro"  # Confluent leaves schemaType out for Avro
    if kind is None:
        raise SchemaError(f"{where}: schema type {registry_type!r} is not AVRO, PROTOBUF or JSON")
    return kind
