"""A guard's verification keys: given in the configuration, or fetched from a JWKS URL.

1. A JWK is usable when its `kty` is RSA, EC, OKP, or `oct` with an HS* algorithm
   accepted, and its `use` (if any) is `sig`. Private members are dropped: a key set only
   ever verifies. Inline keys that are not usable are configuration errors; a fetched set
   skips them.
2. A remote set (`RemoteKeys`) is fetched on the loop (httpx), again when its time to live
   ends (`Cache-Control: max-age`, held between MIN_TTL and MAX_TTL, else DEFAULT_TTL), and
   at once when a token names a `kid` it lacks, at most once per MIN_REFETCH. A failed
   fetch keeps the last good set and retries with back-off; `state` says how it stands
   (for `/ready` and `/metrics`). Tokens are never allowed to point at keys (`jku`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

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
MAX_JWKS_BYTES = 1024 * 1024
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
    """A JWKS URL's keys, kept fresh on the loop (rule 2)."""

    def __init__(self, url: str, algorithms: Sequence[str]) -> None:
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
                    wait = await self._fetch(client)
                    failures = 0
                except (httpx.HTTPError, KeySetError, ValueError) as exc:
                    failures += 1
                    self.error = str(exc) or type(exc).__name__
                    logger.warning("JWKS %s: %s (keeping the last good keys)", self.url, self.error)
                    wait = min(2.0**failures, RETRY_MAX)
                with contextlib.suppress(TimeoutError):  # the time to live ended
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def _fetch(self, client: Any) -> float:
        response = await client.get(self.url, headers={"Accept": "application/json"})
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
        logger.info("JWKS %s: %d keys", self.url, len(keys.keys))
        return time_to_live(response.headers.get("cache-control"))


def _fingerprint(keys: KeySet) -> list[Any]:
    return sorted((str(key.kid), key.thumbprint()) for key in keys.keys)
