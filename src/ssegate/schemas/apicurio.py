"""A catalog over Apicurio Registry's own API, version 3 (`/apis/registry/v3`).

Rules (beyond those of `schemas.catalog`, which this client follows):

1. `url` is the registry's base URL; a trailing `/apis/registry/v2` or `/v3` is allowed
   (Zilla's configurations name v2) and either way v3 is spoken. `group` (default
   "default") is where subjects are looked up: a subject is an artifact id.
2. `use_id` says which number records carry: `globalId` (one per artifact version, the
   default) or `contentId` (one per distinct content). `id_encoding` says how it is
   framed: `8-byte` (Apicurio's default) or `4-byte` (Confluent's width); the catalog only
   keeps it for the codec that reads the frame (Zilla issue #1202: one side wrote 4 bytes,
   the other read 8).
3. An id's schema takes three requests: `GET /ids/{globalIds|contentIds}/{id}` (the text;
   404 means unknown), `GET /search/versions?{globalId|contentId}={id}` (its artifact type)
   and `GET /ids/.../{id}/references` (`[{groupId, artifactId, version, name}]`; a missing
   groupId is the default group). A subject at a version: `GET
   /groups/{g}/artifacts/{a}/versions/{v}` (type and ids; `branch=latest` for "latest"),
   then the text and references by its globalId, so a version added between the two
   requests cannot mix. A reference is fetched the same way at its version.
4. Observed on Apicurio 3.3.3: the content answer names no artifact type (no header, and
   `Content-Type` is `application/x-protobuf` for PROTOBUF but `application/json` for both
   AVRO and JSON), hence the search request. A content id registered under several
   artifact types is a `SchemaError`.
5. `GET /system/info` is the probe.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, Literal
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
    decode_text,
)
from ssegate.schemas.schema import SchemaError, SchemaKind, UnknownSchema

UseId = Literal["globalId", "contentId"]
IdEncoding = Literal["8-byte", "4-byte"]
_API = "/apis/registry/v3"
_API_SUFFIX = re.compile(r"/apis/registry/v[23]/?$")
_JSON = "application/json"


class ApicurioCatalog(HttpCatalog):
    """An Apicurio Registry (3.x) at `url` (e.g. `http://registry:8080`)."""

    probe_path = "/system/info"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        group: str = "default",
        use_id: UseId = "globalId",
        id_encoding: IdEncoding = "8-byte",
        credentials: Credentials | None = None,
        ca_file: str | Path | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        timeout: float = DEFAULT_TIMEOUT,
        cache_size: int = DEFAULT_CACHE_SIZE,
        unknown_ttl: float = DEFAULT_UNKNOWN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if use_id not in ("globalId", "contentId"):
            raise ValueError(f"catalog {name!r}: use_id {use_id!r} is not globalId or contentId")
        if id_encoding not in ("8-byte", "4-byte"):
            raise ValueError(
                f"catalog {name!r}: id_encoding {id_encoding!r} is not 8-byte or 4-byte"
            )
        super().__init__(
            name,
            _API_SUFFIX.sub("", url.rstrip("/")) + _API,
            credentials=credentials,
            ca_file=ca_file,
            max_age=max_age,
            timeout=timeout,
            cache_size=cache_size,
            unknown_ttl=unknown_ttl,
            clock=clock,
        )
        self.group = group or "default"
        self.use_id: UseId = use_id
        self.id_encoding: IdEncoding = id_encoding

    @property
    def id_size(self) -> int:
        """Bytes of the id in a record's frame (rule 2)."""
        return 8 if self.id_encoding == "8-byte" else 4

    async def _fetch_id(self, schema_id: int) -> Raw:
        what = f"{self.use_id} {schema_id}"
        plural = "globalIds" if self.use_id == "globalId" else "contentIds"
        answer = await self._get(f"/ids/{plural}/{schema_id}", what)
        text = decode_text(answer.body, f"catalog {self.name!r}: {what}")
        found = self._json(
            await self._get("/search/versions", what, {self.use_id: str(schema_id)}, _JSON),
            what,
        )
        versions = found.get("versions") if isinstance(found, dict) else None
        if not isinstance(versions, list) or not versions:
            raise UnknownSchema(f"catalog {self.name!r}: {what}: no artifact version has it")
        kinds = {self._kind(version, what) for version in versions}
        if len(kinds) > 1:
            raise SchemaError(
                f"catalog {self.name!r}: {what}: registered as several types ({sorted(kinds)})"
            )
        first = versions[0]
        references = await self._references(f"/ids/{plural}/{schema_id}/references", what)
        return Raw(
            kind=kinds.pop(),
            text=text,
            references=references,
            id=schema_id,
            subject=first.get("artifactId") if isinstance(first.get("artifactId"), str) else None,
            version=_number(first.get("version")),
        )

    async def _fetch_version(self, subject: str, version: Version) -> tuple[Raw, Hashable]:
        expression = "branch=latest" if version == "latest" else str(version)
        return await self._version(self.group, subject, expression)

    async def _fetch_reference(self, locator: Hashable) -> Raw:
        assert isinstance(locator, tuple)  # built by _locator or _references
        group, artifact, version = locator
        raw, _ = await self._version(group, artifact, version)
        return raw

    def _locator(self, subject: str, version: int) -> Hashable:
        return (self.group, subject, str(version))

    async def _version(self, group: str, artifact: str, expression: str) -> tuple[Raw, Hashable]:
        """Rule 3: the version's metadata, then its text and references by globalId."""
        what = f"artifact {group}/{artifact} version {expression}"
        path = f"/groups/{quote(group, safe='')}/artifacts/{quote(artifact, safe='')}"
        metadata = self._json(
            await self._get(f"{path}/versions/{quote(expression, safe='=')}", what, None, _JSON),
            what,
        )
        if not isinstance(metadata, dict):
            raise SchemaError(f"catalog {self.name!r}: {what}: the answer is not a JSON object")
        global_id = metadata.get("globalId")
        schema_id = metadata.get(self.use_id)
        found = metadata.get("version")
        if not isinstance(global_id, int) or not isinstance(schema_id, int):
            raise SchemaError(f"catalog {self.name!r}: {what}: the answer has no ids")
        if not isinstance(found, str):
            raise SchemaError(f"catalog {self.name!r}: {what}: the answer names no version")
        answer = await self._get(f"/ids/globalIds/{global_id}", what)
        raw = Raw(
            kind=self._kind(metadata, what),
            text=decode_text(answer.body, f"catalog {self.name!r}: {what}"),
            references=await self._references(f"/ids/globalIds/{global_id}/references", what),
            id=schema_id,
            subject=artifact,
            version=_number(found),
        )
        return raw, (group, artifact, found)

    async def _references(self, path: str, what: str) -> tuple[tuple[str, Hashable], ...]:
        where = f"catalog {self.name!r}: {what}"
        listed = self._json(await self._get(path, f"{what} references", None, _JSON), what)
        if not isinstance(listed, list):
            raise SchemaError(f"{where}: its references are not a list")
        located: list[tuple[str, Hashable]] = []
        for reference in listed:
            fields: dict[str, Any] = reference if isinstance(reference, dict) else {}
            name, artifact, version = (fields.get(k) for k in ("name", "artifactId", "version"))
            group = fields.get("groupId") or "default"  # ccompat-registered: no group
            if not (
                isinstance(name, str)
                and isinstance(artifact, str)
                and isinstance(version, str)
                and isinstance(group, str)
            ):
                raise SchemaError(f"{where}: a reference lacks a name, artifact or version")
            located.append((name, (group, artifact, version)))
        return tuple(located)

    def _kind(self, version: object, what: str) -> SchemaKind:
        artifact_type = version.get("artifactType") if isinstance(version, dict) else None
        return kind_of(artifact_type or "", f"catalog {self.name!r}: {what}")


def _number(version: object) -> int | None:
    """Apicurio versions are strings ("1", or "1.0.0"); a `Schema` keeps whole numbers."""
    return int(version) if isinstance(version, str) and version.isdigit() else None
