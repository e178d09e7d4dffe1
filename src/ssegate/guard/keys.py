"""A guard's verification keys: given in the configuration, or fetched from a JWKS URL,
given or found by OpenID Connect discovery.

1. A JWK is usable when its `kty` is RSA, EC, OKP, or `oct` with an HS* algorithm
   accepted, and its `use` (if any) is `sig`. Private members are dropped: a key set only
   ever verifies. Inline keys that are not usable are configuration errors; a fetched set
   skips them.
2. A remote set (`RemoteKeys`) is fetched on the loop (httpx), again when its time to live
   ends (`Cache-Control: max-age`, held between MIN_TTL and MAX_TTL, else DEFAULT_TTL), and
   at once when a token names a `kid` it lacks, at most once per MIN_REFETCH. A failed
   fetch keeps the last good set and retries with back-off; `state` says how it stands
   (for `/ready` and `/metrics`). Tokens are never allowed to point at keys (`jku`).
3. Without a JWKS URL, the set is found from the issuer (`RemoteKeys.discover`, OpenID
   Connect Discovery 1.0 §4): `<issuer>/.well-known/openid-configuration`, the issuer
   without a trailing slash. A 200 answer must be a JSON object whose `issuer` is the
   guard's issuer exactly (§4.3; anything else is an error, never a fallback) and whose
   `jwks_uri` is an http(s) URL (https when the issuer is); that URL is used. A 404 answer
   means no discovery: `<issuer>/.well-known/jwks.json` is used (Zilla's default). Any
   other failure of discovery is a failed fetch (rule 2). The URL found is kept until a
   fetch from it fails; the next attempt discovers again (the provider may have moved it).
   A configured JWKS URL is never discovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet, import_key

from ssegate.errors import SsegateError

logger = logging.getLogger("ssegate.guard")

KEY_TYPES = ("RSA", "EC", "OKP", "oct")
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "oth")
DEFAULT_TTL = 300.0  # seconds, when the server says nothing
MIN_TTL = 60.0
MAX_TTL = 86_400.0
MIN_REFETCH = 30.0  # at most one fetch for unknown kids per this many seconds
RETRY_MAX = 60.0  # back-off cap after failed fetches
FETCH_TIMEOUT = 10.0
MAX_JWKS_BYTES = 1024 * 1024  # a JWKS or a discovery document
DISCOVERY_PATH = "/.well-known/openid-configuration"
FALLBACK_PATH = "/.well-known/jwks.json"  # when the issuer has no discovery document
_ACCEPT_JSON = {"Accept": "application/json"}
_MAX_AGE = re.compile(r"max-age=(\d+)")


class KeySetError(SsegateError):
    """A JWK or JWKS that cannot be used; the message names which and why."""


def usable_key(jwk: Mapping[str, Any], algorithms: Sequence[str]) -> Any | None:
    """The public key of `jwk` (rule 1), or None when it is not for verifying; KeySetError
    when it cannot be read."""
    kty = jwk.get("kty")
    if kty not in KEY_TYPES:
        raise KeySetError(f"kty {kty!r} is not one of {', '.join(KEY_TYPES)}")
    if jwk.get("use") not in (None, "sig"):
        return None
    if kty == "oct" and not any(a.startswith("HS") for a in algorithms):
        raise KeySetError("an oct (HMAC) key needs an HS256/384/512 algorithm in `algorithms`")
    public = dict(jwk) if kty == "oct" else {k: v for k, v in jwk.items() if k not in _PRIVATE}
    try:
        return import_key(public)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise KeySetError(f"cannot be read: {exc}") from None


def key_set(jwks: Sequence[Mapping[str, Any]], algorithms: Sequence[str]) -> KeySet:
    """Inline keys (rule 1): every one must be usable; KeySetError names the first that is
    not, by its index."""
    keys = []
    for index, jwk in enumerate(jwks):
        try:
            key = usable_key(jwk, algorithms)
        except KeySetError as exc:
            raise KeySetError(f"keys[{index}]: {exc}") from None
        if key is not None:
            keys.append(key)
    if len(keys) > 1 and any(key.kid is None for key in keys):
        raise KeySetError("with several keys, each needs a kid")
    return KeySet(keys)


def parse_jwks(document: Any, algorithms: Sequence[str]) -> KeySet:
    """A fetched JWKS: the usable keys, the others skipped (rule 1)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetError('not a JWKS (an object with a "keys" array)')
    keys = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        try:
            key = usable_key(jwk, algorithms)
        except KeySetError:
            continue
        if key is not None:
            keys.append(key)
    return KeySet(keys)


def time_to_live(cache_control: str | None) -> float:
    match = _MAX_AGE.search(cache_control or "")
    if match is None:
        return DEFAULT_TTL
    return min(max(float(match.group(1)), MIN_TTL), MAX_TTL)


class RemoteKeys:
    """A JWKS URL's keys, kept fresh on the loop (rule 2), the URL given or discovered from
    an issuer (rule 3)."""

    def __init__(
        self, url: str | None, algorithms: Sequence[str], *, issuer: str | None = None
    ) -> None:
        """`url`, a JWKS URL fetched as it is; or None and the `issuer` it is found from."""
        if (url is None) == (issuer is None):
            raise ValueError("RemoteKeys needs a JWKS URL or an issuer, not both")
        self.issuer = issuer
        # The JWKS URL in use: the configured one, or the one discovered (None until it is
        # known, and again after a fetch from it failed).
        self.url = url
        self.algorithms = tuple(algorithms)
        self.keys: KeySet | None = None
        self.error = ""  # the last fetch's failure, if it failed
        self.fetched_at: float | None = None  # wall clock of the last good fetch
        # Counts the fetches that changed the keys: verified tokens are forgotten then,
        # so a token whose key was removed stops working.
        self.generation = 0
        self._asked = 0.0  # monotonic time of the last fetch for an unknown kid
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def discover(cls, issuer: str, algorithms: Sequence[str]) -> RemoteKeys:
        """The keys of `issuer`, their URL found by OpenID discovery (rule 3)."""
        return cls(None, algorithms, issuer=issuer)

    @property
    def state(self) -> str:
        if self.keys is None:
            return f"not loaded: {self.error}" if self.error else "not loaded yet"
        return f"stale: {self.error}" if self.error else "ok"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def unknown_kid(self) -> None:
        """A token named a kid the set lacks: fetch again soon (rate-limited)."""
        now = time.monotonic()
        if now - self._asked >= MIN_REFETCH:
            self._asked = now
            self._wake.set()

    async def _run(self) -> None:
        import httpx

        failures = 0
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
            while True:
                self._wake.clear()
                try:
                    wait = await self._refresh(client)
                    failures = 0
                except (httpx.HTTPError, KeySetError, ValueError) as exc:
                    failures += 1
                    self.error = str(exc) or type(exc).__name__
                    logger.warning(
                        "keys of %s: %s (keeping the last good keys)",
                        self.issuer or self.url,
                        self.error,
                    )
                    wait = min(2.0**failures, RETRY_MAX)
                with contextlib.suppress(TimeoutError):  # the time to live ended
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def _refresh(self, client: Any) -> float:
        """Fetch the set; first discover its URL if it is not known (rule 3)."""
        import httpx

        if self.issuer is None:  # a configured URL: fetched as it is, never discovered
            assert self.url is not None
            return await self._fetch(client, self.url)
        url = self.url or await self._discover(client, self.issuer)
        self.url = url
        try:
            return await self._fetch(client, url)
        except (httpx.HTTPError, KeySetError, ValueError) as exc:
            self.url = None  # discover again before the next attempt
            raise KeySetError(f"JWKS {url}: {str(exc) or type(exc).__name__}") from exc

    async def _discover(self, client: Any, issuer: str) -> str:
        """The JWKS URL of `issuer` (rule 3); KeySetError when it cannot be found."""
        import httpx

        discovery_url = issuer.rstrip("/") + DISCOVERY_PATH
        where = f"OpenID discovery {discovery_url}"
        try:
            response = await client.get(discovery_url, headers=_ACCEPT_JSON)
        except httpx.HTTPError as exc:
            raise KeySetError(f"{where}: {str(exc) or type(exc).__name__}") from exc
        if response.status_code == 404:
            url = issuer.rstrip("/") + FALLBACK_PATH
            logger.info("%s: none (404); using %s", where, url)
            return url
        if response.status_code != 200:
            raise KeySetError(f"{where}: answered {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise KeySetError(f"{where}: larger than 1 MiB")
        try:
            document = response.json()
        except ValueError:
            raise KeySetError(f"{where}: not JSON") from None
        if not isinstance(document, dict):
            raise KeySetError(f"{where}: not a JSON object")
        if document.get("issuer") != issuer:
            raise KeySetError(
                f"{where}: its issuer {document.get('issuer')!r} is not the guard's issuer "
                f"{issuer!r} (they must be equal: OpenID Connect Discovery 1.0 §4.3)"
            )
        jwks_uri = document.get("jwks_uri")
        # Keys fetched over plain HTTP could be anyone's: an https issuer's must be https.
        schemes = ("https",) if issuer.startswith("https://") else ("https", "http")
        parts = urlsplit(jwks_uri) if isinstance(jwks_uri, str) else None
        if parts is None or parts.scheme not in schemes or not parts.netloc:
            raise KeySetError(
                f"{where}: jwks_uri {jwks_uri!r} is not an {' or '.join(schemes)} URL"
            )
        logger.info("%s: jwks_uri %s", where, jwks_uri)
        return str(jwks_uri)

    async def _fetch(self, client: Any, url: str) -> float:
        response = await client.get(url, headers=_ACCEPT_JSON)
        if response.status_code != 200:
            raise KeySetError(f"answered {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise KeySetError("larger than 1 MiB")
        keys = parse_jwks(response.json(), self.algorithms)
        if self.keys is None or _fingerprint(keys) != _fingerprint(self.keys):
            self.generation += 1
        self.keys = keys
        self.error = ""
        self.fetched_at = time.time()
        logger.info("JWKS %s: %d keys", url, len(keys.keys))
        return time_to_live(response.headers.get("cache-control"))


def _fingerprint(keys: KeySet) -> list[Any]:
    return sorted((str(key.kid), key.thumbprint()) for key in keys.keys)
