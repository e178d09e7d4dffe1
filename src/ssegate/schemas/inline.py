"""Schemas given in the configuration: the `inline` catalog (`schemas.catalog` rules)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ssegate.schemas.catalog import MAX_RESPONSE_BYTES, Version
from ssegate.schemas.schema import (
    SCHEMA_KINDS,
    Schema,
    SchemaError,
    SchemaKind,
    SchemaReference,
    UnknownSchema,
)


@dataclass(frozen=True, slots=True)
class InlineSubject:
    """One inline subject: its schema given as `text` or read from `path`. `references`
    maps the names the schema imports (a .proto file name, an Avro full name, a `$ref`)
    to other subjects of the same catalog; `id` is given only when records carry one."""

    kind: SchemaKind
    text: str | None = None
    path: str | Path | None = None
    references: Mapping[str, str] = field(default_factory=dict)
    id: int | None = None


class InlineCatalog:
    """Schemas given in the configuration: each subject has version 1 (also "latest").
    Everything is read and checked when the catalog is made, so a mistake is a config
    error at start, never a failed record later."""

    fetches = 0
    failures = 0
    refused = 0

    def __init__(self, name: str, subjects: Mapping[str, InlineSubject]) -> None:
        self.name = name
        self._subjects: dict[str, Schema] = {}
        self._ids: dict[int, Schema] = {}
        for subject in subjects:
            self._build(subject, subjects, ())
        for schema in self._subjects.values():
            if schema.id is not None:
                if schema.id in self._ids:
                    other = self._ids[schema.id].subject
                    raise SchemaError(
                        f"catalog {name!r}: subjects {other!r} and {schema.subject!r} "
                        f"both have id {schema.id}"
                    )
                self._ids[schema.id] = schema

    def _build(
        self, subject: str, subjects: Mapping[str, InlineSubject], path: tuple[str, ...]
    ) -> Schema:
        done = self._subjects.get(subject)
        if done is not None:
            return done
        where = f"catalog {self.name!r}: subject {subject!r}"
        if subject in path:
            raise SchemaError(f"{where}: references form a cycle: {' -> '.join(path)}")
        given = subjects.get(subject)
        if given is None:
            raise SchemaError(f"{where}: no such subject (named by {path[-1]!r})")
        if given.kind not in SCHEMA_KINDS:
            raise SchemaError(f"{where}: kind {given.kind!r} is not one of {SCHEMA_KINDS}")
        references = tuple(
            SchemaReference(name, self._build(target, subjects, (*path, subject)))
            for name, target in given.references.items()
        )
        schema = Schema(
            kind=given.kind,
            text=_inline_text(given, where),
            references=references,
            id=given.id,
            subject=subject,
            version=1,
        )
        self._subjects[subject] = schema
        return schema

    @property
    def state(self) -> str:
        return "ok"

    def subject(self, subject: str) -> Schema | None:
        """The schema of `subject`, if this catalog has it (for checks at load time)."""
        return self._subjects.get(subject)

    def cached(self, schema_id: int) -> Schema | None:
        return self._ids.get(schema_id)

    async def by_id(self, schema_id: int) -> Schema:
        schema = self._ids.get(schema_id)
        if schema is None:
            raise UnknownSchema(f"catalog {self.name!r}: no inline subject has id {schema_id}")
        return schema

    async def by_subject(self, subject: str, version: Version) -> Schema:
        schema = self._subjects.get(subject)
        if schema is None or version not in ("latest", 1):
            raise UnknownSchema(
                f"catalog {self.name!r}: no inline subject {subject!r} at version {version} "
                "(inline subjects have version 1 only)"
            )
        return schema

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def _inline_text(given: InlineSubject, where: str) -> str:
    if (given.text is None) == (given.path is None):
        raise SchemaError(f"{where}: give the schema either as text or as a path, not both")
    if given.text is not None:
        return given.text
    assert given.path is not None  # checked just above
    try:
        data = Path(given.path).read_bytes()
    except OSError as exc:
        raise SchemaError(f"{where}: cannot read {given.path}: {exc.strerror}") from exc
    if len(data) > MAX_RESPONSE_BYTES:
        raise SchemaError(f"{where}: {given.path} is larger than 1 MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError(f"{where}: {given.path} is not UTF-8 text") from None
