"""A route's value model, compiled: which schema a record names, and its JSON text.

1. A record's schema is found by its framing's id (`confluent`, `apicurio`, `apicurio-4`),
   or, with framing `none`, by the model's subject and version (the catalog's `latest`
   asked again after its `max_age`, in the background: records never wait for that).
   A `json` model without a catalog only checks that each value is one JSON text.
2. Each schema is compiled once (`Decoder`), when the first record naming it arrives; the
   reader path asks `missing` which schemas a batch still needs and awaits `fetch` for
   them before converting (bounded by the catalog's own timeout: a registry that does not
   answer makes those records invalid, it never stalls the stream).
3. `convert` turns a value into its JSON text or raises `InvalidRecord` with a fixed reason:
   the framing's (`magic-byte`, `truncated`, `message-index`), the codec's, or
   `unknown-schema` (the registry has no such id), `registry-unavailable` (it could not be
   asked), `bad-schema` (the schema does not compile: remembered, ids are immutable).
4. Tombstones (no value) are never converted: they stay `delete` events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ssegate.schemas import avro, jsonschema, protobuf
from ssegate.schemas.catalog import Catalog, Version
from ssegate.schemas.framing import Framing, read_message_indexes, schema_id_reader
from ssegate.schemas.mapping import Decoder, JsonMapping
from ssegate.schemas.schema import (
    CatalogUnavailable,
    InvalidRecord,
    Schema,
    SchemaError,
    SchemaKind,
    UnknownSchema,
)

logger = logging.getLogger("ssegate.schemas")

# What `missing` returns for a model that names its schema by subject: one key for it.
SUBJECT = "subject"
SchemaKey = int | str


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model as configured (route `value:`), with its catalog resolved."""

    kind: SchemaKind
    catalog: Catalog | None
    framing: Framing
    subject: str | None  # with framing `none`
    version: Version
    message: str | None  # protobuf: the message when the framing names none
    mapping: JsonMapping
    max_age: float = 300.0


def compile_decoder(schema: Schema, mapping: JsonMapping, message: str | None) -> Decoder:
    """The kind's codec for `schema`; SchemaError when it does not compile."""
    if schema.kind == "avro":
        return avro.compile_decoder(schema, mapping)
    if schema.kind == "protobuf":
        return protobuf.compile_decoder(schema, mapping, message)
    return jsonschema.compile_decoder(schema, mapping)


class ValueModel:
    """One model's compiled schemas, shared by every reader of its topic (rules 1-3)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._read_id = schema_id_reader(spec.framing)
        self._indexes = spec.kind == "protobuf" and spec.framing != "none"
        self._decoders: dict[SchemaKey, Decoder] = {}
        self._broken: dict[SchemaKey, str] = {}  # schemas that do not compile: why
        self._subject_at = 0.0  # monotonic time the subject's schema was fetched
        self._refresh: asyncio.Task[None] | None = None
        if spec.catalog is None:  # a json model without a schema: well-formed JSON only
            self._decoders[SUBJECT] = jsonschema.JsonOnlyDecoder()

    def __repr__(self) -> str:
        return f"<ValueModel {self.spec.kind} schemas={len(self._decoders)}>"

    def _key(self, value: bytes) -> SchemaKey:
        schema_id, _ = self._read_id(value)
        return SUBJECT if schema_id is None else schema_id

    def missing(self, values: Iterable[bytes | None]) -> set[SchemaKey]:
        """The schemas `values` name that are not compiled yet (rule 2). A framing error is
        not a missing schema: `convert` reports it."""
        decoders = self._decoders
        wanted: set[SchemaKey] = set()
        for value in values:
            if value is None:
                continue
            try:
                key = self._key(value)
            except InvalidRecord:
                continue
            if key not in decoders and key not in self._broken:
                wanted.add(key)
        if self.spec.catalog is not None and (SUBJECT in decoders or SUBJECT in self._broken):
            self._maybe_refresh_subject()  # a `latest` that did not compile may be fixed
        return wanted

    async def fetch(self, keys: Iterable[SchemaKey]) -> None:
        """Fetch and compile the schemas `keys` name; failures are left for `convert`."""
        await asyncio.gather(*(self._fetch_one(key) for key in keys))

    async def _fetch_one(self, key: SchemaKey) -> None:
        catalog = self.spec.catalog
        assert catalog is not None  # without a catalog nothing is ever missing
        try:
            if key == SUBJECT:
                schema = await catalog.by_subject(self._subject(), self.spec.version)
                self._subject_at = time.monotonic()
            else:
                assert isinstance(key, int)
                schema = await catalog.by_id(key)
        except (CatalogUnavailable, UnknownSchema, SchemaError):
            return  # `convert` says which, from the catalog's state
        await self._compile(key, schema)

    async def _compile(self, key: SchemaKey, schema: Schema) -> None:
        if schema.kind != self.spec.kind:
            self._broken[key] = f"the schema is {schema.kind}, the model {self.spec.kind}"
            return
        try:
            # Off the loop: protoc runs as a child process (about 0.3 s).
            self._decoders[key] = await asyncio.to_thread(
                compile_decoder, schema, self.spec.mapping, self.spec.message
            )
            self._broken.pop(key, None)
        except SchemaError as exc:
            self._broken[key] = str(exc)
            logger.error("model of %s: %s", self.spec.subject or f"schema {key}", exc)

    def _subject(self) -> str:
        assert self.spec.subject is not None
        return self.spec.subject

    def _maybe_refresh_subject(self) -> None:
        """`latest` is asked again after max_age, in the background (rule 1)."""
        if self.spec.version != "latest" or self._refresh is not None:
            return
        if time.monotonic() - self._subject_at < self.spec.max_age:
            return

        async def refresh() -> None:
            try:
                await self._fetch_one(SUBJECT)
            finally:
                self._refresh = None

        self._refresh = asyncio.get_running_loop().create_task(refresh())

    def convert(self, value: bytes) -> bytes:
        """The JSON text of `value` (rule 3); InvalidRecord when there is none."""
        schema_id, start = self._read_id(value)
        key: SchemaKey = SUBJECT if schema_id is None else schema_id
        decoder = self._decoders.get(key)
        if decoder is None:
            raise self._why_missing(key)
        indexes = None
        if self._indexes:
            indexes, start = read_message_indexes(value, start)
        return decoder.to_json(value, start, indexes)

    def _why_missing(self, key: SchemaKey) -> InvalidRecord:
        broken = self._broken.get(key)
        if broken is not None:
            return InvalidRecord("bad-schema", f"schema {key} cannot be used: {broken}")
        catalog = self.spec.catalog
        named = f"subject {self.spec.subject}" if key == SUBJECT else f"schema id {key}"
        if catalog is not None and catalog.state != "ok":
            return InvalidRecord(
                "registry-unavailable", f"{named}: catalog {catalog.name} {catalog.state}"
            )
        return InvalidRecord("unknown-schema", f"{named} is not in catalog {catalog_name(catalog)}")


def catalog_name(catalog: Catalog | None) -> str:
    return catalog.name if catalog is not None else "(none)"
