"""What a catalog hands a model: a schema's text, its kind and the schemas it references.

Catalogs (`schemas.catalog*`) fetch or hold schemas; codecs (`schemas.avro`,
`schemas.protobuf`, `schemas.jsonschema`) compile them. This module is the seam between the
two and imports neither. Schemas are immutable values: one fetched schema serves every
stream and every record that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ssegate.errors import SsegateError

SchemaKind = Literal["avro", "protobuf", "json"]
SCHEMA_KINDS: tuple[SchemaKind, ...] = ("avro", "protobuf", "json")


@dataclass(frozen=True, slots=True)
class SchemaReference:
    """A schema another one imports, under the name the importer uses: a `.proto` file name,
    an Avro full name, a JSON Schema `$ref` URL."""

    name: str
    schema: Schema


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema as a catalog knows it. `id` is the number records carry in their framing
    (a Confluent schema id, an Apicurio global or content id); `subject` and `version` say
    where it was found, when it was found by name."""

    kind: SchemaKind
    text: str
    references: tuple[SchemaReference, ...] = ()
    id: int | None = None
    subject: str | None = None
    version: int | None = None


class SchemaError(SsegateError):
    """A schema that cannot be used: it does not parse or compile, or a reference is
    missing. The message names the schema (id or subject) and why."""


class CatalogUnavailable(SsegateError):
    """A registry could not be asked (connection refused, timeout, 5xx): try again later;
    the catalog keeps what it has."""


class UnknownSchema(SsegateError):
    """The registry answered, and has no schema with that id (or subject and version)."""


class InvalidRecord(SsegateError):
    """A record that a model cannot turn into JSON. `reason` is a short, fixed label (a
    metric label and a log key: `magic-byte`, `unknown-schema`, `truncated`, `not-json`,
    `schema-mismatch`, `registry-unavailable`, ...); the message says what was wrong
    without quoting the record."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
