"""A configured JWT guard: where a request's token comes from, the keys that verify it,
and a cache of verified tokens.

1. Credentials, in Zilla's order: the named cookie, then `Authorization: Bearer`, then the
   query parameter (`access_token`: an `EventSource` cannot set headers). The first source
   present is the one used, even if it does not verify.
2. Verified tokens are cached by their SHA-256 until their `exp` (plus leeway), at most
   CACHE_SIZE of them (the oldest go first): a resume storm of clients holding tokens costs
   one verification per token, not per connection. Refused tokens are not cached, and
   the cache is emptied when a remote key set changes.
3. Keys: a fixed set, or a `RemoteKeys` that may not be loaded yet (then the request is
   answered 503: the guard cannot tell). A token naming an unknown `kid` asks a remote
   set to refetch.
"""

from __future__ import annotations

import enum
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from joserfc.jwk import KeySet

from ssegate.guard.jwt import JwtRules, Principal, TokenError, TokenProblem, verify
from ssegate.guard.keys import RemoteKeys
from ssegate.guard.sessions import Sessions
from ssegate.http.request import Request, decode_query_value

CACHE_SIZE = 100_000  # ~200 B a principal: 20 MB at most


class Missing(enum.Enum):
    """No token, or no keys to check one with."""

    NO_CREDENTIALS = "missing"
    NO_KEYS = "unavailable"


@dataclass(frozen=True, slots=True)
class CredentialSources:
    cookie: str | None = None
    header: bool = True
    query: str | None = "access_token"


def credential(request: Request, sources: CredentialSources) -> str | None:
    """The request's token (rule 1), or None."""
    if sources.cookie is not None:
        for header_name, value in request.headers:
            if header_name != "cookie":
                continue
            for part in value.split(";"):
                name, sep, cookie = part.strip().partition("=")
                if sep and name == sources.cookie:
                    return cookie.strip('"')
    if sources.header:
        authorization = request.header("authorization")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    if sources.query is not None:
        raw = request.query_param(sources.query)
        if raw:
            return decode_query_value(raw)
    return None


class JwtGuard:
    """One entry of `guards:` (rules 1-3)."""

    def __init__(
        self,
        name: str,
        rules: JwtRules,
        keys: KeySet | RemoteKeys,
        sources: CredentialSources,
        challenge: float | None = None,
    ) -> None:
        self.name = name
        self.sessions = Sessions(challenge)  # its open streams, until their tokens expire
        self.rules = rules
        self.keys = keys
        self.sources = sources
        self._cache: OrderedDict[bytes, Principal] = OrderedDict()
        self._generation = 0  # of the remote keys the cached tokens were verified with

    @property
    def remote(self) -> RemoteKeys | None:
        return self.keys if isinstance(self.keys, RemoteKeys) else None

    def authenticate(self, request: Request, now: float) -> Principal | Missing | TokenError:
        token = credential(request, self.sources)
        if token is None:
            return Missing.NO_CREDENTIALS
        remote = self.remote
        if remote is not None and remote.generation != self._generation:
            self._cache.clear()  # the keys changed: a removed key's tokens must fail
            self._generation = remote.generation
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            if now < cached.expires_at + self.rules.leeway:
                return cached
            del self._cache[digest]
        keys = self.keys.keys if isinstance(self.keys, RemoteKeys) else self.keys
        if keys is None:
            return Missing.NO_KEYS
        try:
            principal = verify(token, keys, self.rules, now)
        except TokenError as exc:
            if exc.problem is TokenProblem.UNKNOWN_KEY and remote is not None:
                remote.unknown_kid()
            return exc
        self._cache[digest] = principal
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal
