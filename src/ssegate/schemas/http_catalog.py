"""The machinery of the `schemas.catalog` rules 1-8 for registries reached over HTTP: caching,
shared requests, reference resolution, back-off, credentials. A client subclass
(`schemas.registry`, `schemas.apicurio`) says how to ask its registry."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from ssegate import __version__
from ssegate.errors import SsegateError
from ssegate.schemas.catalog import MAX_RESPONSE_BYTES, Version
from ssegate.schemas.schema import (
    CatalogUnavailable,
    Schema,
    SchemaError,
    SchemaKind,
    SchemaReference,
    UnknownSchema,
)

logger = logging.getLogger("ssegate.schemas")

DEFAULT_MAX_AGE = 300.0  # seconds: Zilla's `max-age`
DEFAULT_TIMEOUT = 5.0  # seconds per request
DEFAULT_CACHE_SIZE = 10_000  # ids (and, separately, subject versions) kept
DEFAULT_UNKNOWN_TTL = 5.0  # seconds a 404 (or unusable answer) is remembered
FIRST_RETRY = 1.0  # seconds of back-off after the first failure; doubles up to max_age
# The longest back-off: records naming a schema not fetched yet are invalid while it lasts,
# so a registry that came back is noticed within this many seconds.
MAX_BACKOFF = 30.0
MAX_REFERENCES = 256  # distinct schemas one schema may pull in, transitively
MAX_DEPTH = 32  # levels of references
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_UNAVAILABLE_STATUSES = frozenset({401, 403, 407, 408, 429})

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Credentials:
    """Basic `username` and `password`, or a whole `authorization` header value (e.g.
    "Bearer <token>", Zilla's `credentials.headers.authorization`). Never printed."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    authorization: str | None = field(default=None, repr=False)

    def header(self) -> str | None:
        if self.authorization:
            return self.authorization
        if self.username is None and self.password is None:
            return None
        pair = f"{self.username or ''}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True, slots=True)
class Raw:
    """A schema as one answer gives it: references named by `locators` (a registry
    client's hashable address of a schema at a fixed version), not fetched yet."""

    kind: SchemaKind
    text: str
    references: tuple[tuple[str, Hashable], ...] = ()
    id: int | None = None
    subject: str | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


class _Lru(Generic[K, V]):
    """A dictionary that forgets its least recently used entry beyond `size`."""

    __slots__ = ("_data", "_size")

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


class HttpCatalog:
    """The machinery of rules 1-8 for a registry reached over HTTP. A client subclass says
    how to ask: `_fetch_id`, `_fetch_version`, `_fetch_reference`, `_locator` and
    `probe_path`; it sends requests only through `_get`."""

    probe_path = "/"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        credentials: Credentials | None = None,
        ca_file: str | Path | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        timeout: float = DEFAULT_TIMEOUT,
        cache_size: int = DEFAULT_CACHE_SIZE,
        unknown_ttl: float = DEFAULT_UNKNOWN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"catalog {name!r}: url {_strip_userinfo(url)!r} is no http(s) URL")
        if credentials is None and (parts.username or parts.password):
            # Userinfo in the URL is taken as basic credentials, then dropped from the URL.
            credentials = Credentials(parts.username, parts.password)
        self.name = name
        self.url = _strip_userinfo(url).rstrip("/")
        self.max_age = max_age
        self.timeout = timeout
        self.unknown_ttl = unknown_ttl
        self.fetches = 0
        self.failures = 0
        self.refused = 0
        self._credentials = credentials or Credentials()
        self._verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            try:
                self._verify = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"catalog {name!r}: CA file {ca_file} cannot be used: {exc}"
                ) from exc
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._ids: _Lru[int, Schema] = _Lru(cache_size)
        self._versions: _Lru[Hashable, Schema] = _Lru(cache_size)
        self._latest: _Lru[str, tuple[Schema, float]] = _Lru(cache_size)
        self._unknown: _Lru[Hashable, tuple[float, SsegateError]] = _Lru(cache_size)
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}
        self._why: str | None = None  # why the registry is unavailable; None when ok
        self._delay = 0.0
        self._retry_at = 0.0
        self._trouble = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        header = self._credentials.header()
        self._secrets = tuple(
            secret
            for secret in (self._credentials.password, self._credentials.authorization, header)
            if secret
        )

    # --- the Catalog interface ----------------------------------------------------------

    @property
    def state(self) -> str:
        return "ok" if self._why is None else f"unavailable: {self._why} (retrying)"

    def cached(self, schema_id: int) -> Schema | None:
        return self._ids.get(schema_id)

    async def by_id(self, schema_id: int) -> Schema:
        schema = self._ids.get(schema_id)
        if schema is not None:
            return schema
        key = ("id", schema_id)
        self._raise_if_remembered(key)
        if schema_id < 0:
            raise UnknownSchema(f"catalog {self.name!r}: schema id {schema_id} is negative")
        return await self._shared(key, lambda: self._load_id(schema_id))

    async def by_subject(self, subject: str, version: Version) -> Schema:
        if version == "latest":
            return await self._latest_of(subject)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise UnknownSchema(
                f"catalog {self.name!r}: subject {subject!r}: version {version!r} is neither "
                'a positive number nor "latest"'
            )
        locator = self._locator(subject, version)
        schema = self._versions.get(locator)
        if schema is not None:
            return schema
        key = ("version", locator)
        self._raise_if_remembered(key)
        return await self._shared(key, lambda: self._load_version(subject, version, locator))

    async def start(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch(), name=f"catalog {self.name}"
            )

    async def stop(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        for task in list(self._inflight.values()):
            task.cancel()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # --- what a client subclass provides ---------------------------------------------------

    async def _fetch_id(self, schema_id: int) -> Raw:
        raise NotImplementedError

    async def _fetch_version(self, subject: str, version: Version) -> tuple[Raw, Hashable]:
        """The subject at `version` and its locator (for "latest": of the version found)."""
        raise NotImplementedError

    async def _fetch_reference(self, locator: Hashable) -> Raw:
        raise NotImplementedError

    def _locator(self, subject: str, version: int) -> Hashable:
        raise NotImplementedError

    # --- loading --------------------------------------------------------------------------

    async def _load_id(self, schema_id: int) -> Schema:
        key = ("id", schema_id)
        raw = await self._remembering(key, self._fetch_id(schema_id))
        schema = await self._remembering(key, self._resolve(raw))
        self._ids.put(schema_id, schema)
        return schema

    async def _load_version(self, subject: str, version: Version, locator: Hashable) -> Schema:
        key = ("version", locator)
        raw, found = await self._remembering(key, self._fetch_version(subject, version))
        schema = await self._remembering(key, self._resolve(raw))
        self._keep(found, schema)
        return schema

    async def _latest_of(self, subject: str) -> Schema:
        held = self._latest.get(subject)
        now = self._clock()
        if held is not None and (now - held[1] < self.max_age or now < self._retry_at):
            return held[0]  # fresh, or the registry is down and this is the best we have
        key = ("latest", subject)
        self._raise_if_remembered(key)
        try:
            return await self._shared(
                key, lambda: self._remembering(key, self._load_latest(subject))
            )
        except CatalogUnavailable:
            if held is None:
                raise
            return held[0]
        except SchemaError as exc:
            if held is None:
                raise
            # The newest version cannot be used: the last good one stays until it can.
            logger.warning(
                "catalog %s: keeping %s version %s: %s", self.name, subject, held[0].version, exc
            )
            return held[0]
        except UnknownSchema:
            self._latest.pop(subject)  # the registry says the subject is gone
            raise

    async def _load_latest(self, subject: str) -> Schema:
        raw, found = await self._fetch_version(subject, "latest")
        schema = await self._resolve(raw)
        self._keep(found, schema)
        self._latest.put(subject, (schema, self._clock()))
        return schema

    def _keep(self, locator: Hashable, schema: Schema) -> None:
        self._versions.put(locator, schema)
        if schema.id is not None:
            self._ids.put(schema.id, schema)

    async def _resolve(self, raw: Raw) -> Schema:
        return await self._build(raw, {}, ())

    async def _build(
        self, raw: Raw, memo: dict[Hashable, Schema], path: tuple[Hashable, ...]
    ) -> Schema:
        references = []
        for import_name, locator in raw.references:
            schema = memo.get(locator) or self._versions.get(locator)
            if schema is None:
                where = f"catalog {self.name!r}: reference {import_name!r}"
                if locator in path:
                    raise SchemaError(f"{where}: references form a cycle")
                if len(path) >= MAX_DEPTH:
                    raise SchemaError(f"{where}: references nest deeper than {MAX_DEPTH}")
                if len(memo) >= MAX_REFERENCES:
                    raise SchemaError(f"{where}: more than {MAX_REFERENCES} references")
                # The answer is shared with concurrent resolutions; the recursion is not,
                # so a cyclic graph fails on the path check instead of awaiting itself.
                child = await self._shared(
                    ("reference", locator), functools.partial(self._fetch_reference, locator)
                )
                schema = await self._build(child, memo, (*path, locator))
                self._versions.put(locator, schema)
            memo[locator] = schema
            references.append(SchemaReference(import_name, schema))
        return Schema(
            kind=raw.kind,
            text=raw.text,
            references=tuple(references),
            id=raw.id,
            subject=raw.subject,
            version=raw.version,
        )

    async def _shared(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """Rule 4: one task per key; every caller awaits it, none can cancel it for all."""
        task = self._inflight.get(key)
        if task is None:

            async def run() -> T:
                return await start()

            task = asyncio.get_running_loop().create_task(run())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        result: T = await asyncio.shield(task)
        return result

    def _finished(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every caller was cancelled

    async def _remembering(self, key: Hashable, work: Awaitable[T]) -> T:
        """Rule 5: a 404 or an unusable answer is remembered for `unknown_ttl` seconds."""
        try:
            return await work
        except (UnknownSchema, SchemaError) as exc:
            if isinstance(exc, SchemaError):
                self.failures += 1
            self._unknown.put(key, (self._clock() + self.unknown_ttl, exc))
            raise

    def _raise_if_remembered(self, key: Hashable) -> None:
        remembered = self._unknown.get(key)
        if remembered is None:
            return
        until, error = remembered
        if self._clock() < until:
            raise type(error)(str(error))
        self._unknown.pop(key)

    # --- requests -------------------------------------------------------------------------

    async def _get(
        self, path: str, what: str, params: Mapping[str, str] | None = None, accept: str = "*/*"
    ) -> Answer:
        """GET `path` under the base URL: a 200 answer, or one of the three errors."""
        where = f"catalog {self.name!r}: {what}"
        if self._clock() < self._retry_at:
            self.refused += 1
            raise CatalogUnavailable(f"{where}: registry {self.state}")
        self.fetches += 1
        url = self.url + path
        try:
            answer = await self._send(url, params, accept, where)
        except CatalogUnavailable:
            self.failures += 1
            raise
        except SchemaError:
            self._answered()
            raise
        self._answered()
        if answer.status == 200:
            return answer
        if answer.status == 404:
            raise UnknownSchema(f"{where}: not found{_said(answer, self._redact)}")
        raise SchemaError(
            f"{where}: the registry answered HTTP {answer.status}{_said(answer, self._redact)}"
        )

    async def _send(
        self, url: str, params: Mapping[str, str] | None, accept: str, where: str
    ) -> Answer:
        client = self._client_now()
        for _ in range(MAX_REDIRECTS + 1):
            shown = _strip_userinfo(url).split("?")[0]
            try:
                async with client.stream(
                    "GET", url, params=params, headers={"Accept": accept}
                ) as response:
                    status = response.status_code
                    if status in _REDIRECTS and "location" in response.headers:
                        target = urljoin(url, response.headers["location"])
                        if _origin(target) != _origin(self.url):
                            raise self._unavailable(
                                f"GET {shown}: redirected to another origin "
                                f"({_origin(_strip_userinfo(target))}), not followed"
                            )
                        url, params = target, None
                        continue
                    if status >= 500 or status in _UNAVAILABLE_STATUSES:
                        raise self._unavailable(f"GET {shown}: HTTP {status}")
                    body = await _read_limited(response, where)
                    content_type = response.headers.get("content-type", "")
                    return Answer(status, content_type, body)
            except httpx.TimeoutException as exc:
                why = f"GET {shown}: no answer within {self.timeout:g} s"
                raise self._unavailable(why) from exc
            except httpx.HTTPError as exc:
                raise self._unavailable(f"GET {shown}: {_reason(exc)}") from exc
        shown = _strip_userinfo(url).split("?")[0]
        raise self._unavailable(f"GET {shown}: more than {MAX_REDIRECTS} redirects")

    def _client_now(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"User-Agent": f"ssegate/{__version__}"}
            authorization = self._credentials.header()
            if authorization:
                headers["Authorization"] = authorization
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=self.timeout,
                verify=self._verify,
                follow_redirects=False,  # _send follows same-origin redirects itself
                trust_env=False,  # no proxy or netrc credentials picked up from the environment
            )
        return self._client

    def _unavailable(self, why: str) -> CatalogUnavailable:
        """Rule 6: note the failure, start or lengthen the back-off; the error to raise."""
        why = self._redact(why)
        now = self._clock()
        if now >= self._retry_at:
            # Requests already in flight when the back-off began fail without doubling it.
            first = self._why is None
            self._delay = FIRST_RETRY if first else self._delay * 2
            self._delay = min(self._delay, self.max_age, MAX_BACKOFF)
            self._retry_at = now + self._delay
            if first:
                logger.warning("catalog %s: registry unavailable: %s", self.name, why)
            else:
                logger.debug("catalog %s: still unavailable: %s", self.name, why)
        self._why = why
        self._trouble.set()
        return CatalogUnavailable(f"catalog {self.name!r}: {why}")

    def _answered(self) -> None:
        if self._why is not None:
            logger.info("catalog %s: registry answers again", self.name)
        self._why = None
        self._delay = 0.0
        self._retry_at = 0.0
        self._trouble.clear()

    async def _watch(self) -> None:
        """Rule 6: probe the registry when the back-off ends, until it answers."""
        while True:
            await self._trouble.wait()
            wait = self._retry_at - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # the back-off may have moved meanwhile
            if self._why is None:
                self._trouble.clear()
                continue
            with contextlib.suppress(SsegateError):
                await self._get(self.probe_path, "probe")

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _json(self, answer: Answer, what: str) -> Any:
        try:
            return json.loads(answer.body)
        except ValueError:
            raise SchemaError(
                f"catalog {self.name!r}: {what}: the registry's answer is not JSON "
                f"(content-type {answer.content_type or 'none'!r})"
            ) from None


async def _read_limited(response: httpx.Response, where: str) -> bytes:
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
        raise SchemaError(f"{where}: the registry's answer ({length} bytes) is over 1 MiB")
    chunks: list[bytes] = []
    total = 0
    # Counted after decompression, so a small gzip bomb is stopped as well.
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > MAX_RESPONSE_BYTES:
            raise SchemaError(f"{where}: the registry's answer is over 1 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _said(answer: Answer, redact: Callable[[str], str]) -> str:
    """What a registry's error answer says (Confluent `message`, Apicurio `title`), short."""
    try:
        document = json.loads(answer.body)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    message = document.get("message") or document.get("title") or document.get("detail")
    if not isinstance(message, str) or not message:
        return ""
    message = message[:200]
    return f" ({redact(message)})"


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc)
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {text}" if text else "cannot connect"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def text_of(value: object, where: str) -> str:
    """A schema's text from a JSON answer: it must be a string."""
    if not isinstance(value, str):
        raise SchemaError(f"{where}: the registry's answer has no schema text")
    return value


def decode_text(body: bytes, where: str) -> str:
    """A schema's text from a raw answer: it must be UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError(f"{where}: the schema is not UTF-8 text") from None
