"""A catalog over a Confluent-compatible schema registry (Confluent, Karapace, Redpanda,
Apicurio's `/apis/ccompat/v7`).

Rules (beyond those of `schemas.catalog`, which this client follows):

1. Two requests are used: `GET /schemas/ids/{id}` (its JSON gives `schema`, `schemaType`,
   where absent means AVRO, and `references: [{name, subject, version}]`) and
   `GET /subjects/{subject}/versions/{version|latest}` (the same plus `id` and `version`).
   A reference is fetched as a subject at its version. `GET /schemas/types` is the probe.
2. A `context` (Confluent schema contexts) other than the default qualifies every subject
   as `:.<context>:<subject>`, and ids are looked up with `?subject=:.<context>:`. A
   reference's subject that is not qualified is taken as within the same context.
3. Schemas are asked for as text (never `?format=serialized`): the Protobuf codec compiles
   `.proto` text, and registries disagree on the serialized form. Confluent answers base64
   of a FileDescriptorProto. Apicurio 3.3.3's ccompat API (observed, and checked by
   tests/integration/test_catalogs.py) answers the descriptor's bytes read as UTF-8, as
   the JSON string: no base64, and every byte sequence that is not UTF-8 (a field number
   of 128 or more, say) replaced by U+FFFD, so the descriptor is corrupt (field 200 comes
   back as 3104751). Its file is named after the message ("Order"), and an import of
   "money.proto" becomes "shop/money.proto".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ssegate.schemas.catalog import Version, kind_of
from ssegate.schemas.http_catalog import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_MAX_AGE,
    DEFAULT_TIMEOUT,
    DEFAULT_UNKNOWN_TTL,
    Credentials,
    HttpCatalog,
    Raw,
    text_of,
)
from ssegate.schemas.schema import SchemaError

_ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"
_CONTEXT = re.compile(r"[A-Za-z0-9_.-]+")


class SchemaRegistryCatalog(HttpCatalog):
    """A Confluent-compatible registry at `url` (e.g. `http://registry:8081`)."""

    probe_path = "/schemas/types"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        context: str | None = None,
        credentials: Credentials | None = None,
        ca_file: str | Path | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        timeout: float = DEFAULT_TIMEOUT,
        cache_size: int = DEFAULT_CACHE_SIZE,
        unknown_ttl: float = DEFAULT_UNKNOWN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            name,
            url,
            credentials=credentials,
            ca_file=ca_file,
            max_age=max_age,
            timeout=timeout,
            cache_size=cache_size,
            unknown_ttl=unknown_ttl,
            clock=clock,
        )
        # Zilla's default context is named "default"; Confluent's is ".".
        bare = (context or "").removeprefix(".")
        if bare == "default":
            bare = ""
        if bare and not _CONTEXT.fullmatch(bare):
            raise ValueError(f"catalog {name!r}: context {context!r} is not a context name")
        self.context = bare

    def qualified(self, subject: str) -> str:
        """Rule 2: the subject as the registry knows it within this catalog's context."""
        if not self.context or subject.startswith(":."):
            return subject
        return f":.{self.context}:{subject}"

    async def _fetch_id(self, schema_id: int) -> Raw:
        what = f"schema id {schema_id}"
        params = {"subject": f":.{self.context}:"} if self.context else None
        answer = await self._get(f"/schemas/ids/{schema_id}", what, params, _ACCEPT)
        return self._raw(self._json(answer, what), what, schema_id, None, None)

    async def _fetch_version(self, subject: str, version: Version) -> tuple[Raw, Hashable]:
        what = f"subject {subject!r} version {version}"
        document = await self._subject_version(self.qualified(subject), version, what)
        found = document.get("version")
        schema_id = document.get("id")
        if not isinstance(found, int) or not isinstance(schema_id, int):
            raise SchemaError(f"catalog {self.name!r}: {what}: the answer has no id or version")
        raw = self._raw(document, what, schema_id, subject, found)
        return raw, self._locator(subject, found)

    async def _fetch_reference(self, locator: Hashable) -> Raw:
        assert isinstance(locator, tuple)  # built by _locator
        subject, version = locator
        what = f"referenced subject {subject!r} version {version}"
        document = await self._subject_version(subject, version, what)
        schema_id = document.get("id")
        return self._raw(
            document, what, schema_id if isinstance(schema_id, int) else None, subject, version
        )

    def _locator(self, subject: str, version: int) -> Hashable:
        return (self.qualified(subject), version)

    async def _subject_version(self, qualified: str, version: Version, what: str) -> dict[str, Any]:
        path = f"/subjects/{quote(qualified, safe='')}/versions/{version}"
        document = self._json(await self._get(path, what, None, _ACCEPT), what)
        if not isinstance(document, dict):
            raise SchemaError(f"catalog {self.name!r}: {what}: the answer is not a JSON object")
        return document

    def _raw(
        self,
        document: object,
        what: str,
        schema_id: int | None,
        subject: str | None,
        version: int | None,
    ) -> Raw:
        where = f"catalog {self.name!r}: {what}"
        if not isinstance(document, dict):
            raise SchemaError(f"{where}: the answer is not a JSON object")
        references = document.get("references") or []
        if not isinstance(references, list):
            raise SchemaError(f"{where}: its references are not a list")
        located: list[tuple[str, Hashable]] = []
        for reference in references:
            name = reference.get("name") if isinstance(reference, dict) else None
            target = reference.get("subject") if isinstance(reference, dict) else None
            at = reference.get("version") if isinstance(reference, dict) else None
            if not isinstance(name, str) or not isinstance(target, str):
                raise SchemaError(f"{where}: a reference has no name or subject: {reference!r}")
            if isinstance(at, bool) or not isinstance(at, int) or at < 1:
                raise SchemaError(f"{where}: reference {name!r} has no version number")
            located.append((name, self._locator(target, at)))
        return Raw(
            kind=kind_of(document.get("schemaType"), where),
            text=text_of(document.get("schema"), where),
            references=tuple(located),
            id=schema_id,
            subject=subject,
            version=version,
        )
