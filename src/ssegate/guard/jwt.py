"""Verifying a JWT access token into a `Principal` (sans-I/O: the clock is passed in).

Rules, in order; the first that fails gives `TokenError` with its `TokenProblem`:

1. At most MAX_TOKEN_BYTES, exactly three base64url segments (a five-segment JWE is
   refused, not decrypted), a header that is a JSON object.
2. The header's `alg` is one the guard accepts (`algorithms`); `none` never is. `jku`,
   `x5u`, `jwk` and `x5c` are ignored: keys come only from the guard's key set.
3. The key is the guard's key with the header's `kid`; a token without `kid` may use the
   key set's only key. The key's own `alg`, when it has one, must equal the header's, and
   its type must fit the algorithm (joserfc refuses an RSA key for HS256).
4. The signature verifies; a `crit` header naming anything is refused (none is supported).
5. The payload is a JSON object; `exp` is required, `exp` and `nbf` hold within `leeway`;
   `iss` equals the guard's issuer; `aud` (a string or an array) contains its audience.
6. The identity claim is a non-empty string; roles are an array of strings or one
   space-separated string; each attribute is a string or number (absent: not set).
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ssegate.errors import RequestError

# Larger than any real access token (a few KiB with many roles), small enough that one
# costs nothing to refuse: the header line limit (16 KiB) stops bigger ones first.
MAX_TOKEN_BYTES = 8192


class TokenProblem(enum.Enum):
    """Why a token was refused; the value is the metric's `reason` label."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    ALGORITHM = "algorithm"
    UNKNOWN_KEY = "unknown_key"
    SIGNATURE = "signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUER = "issuer"
    AUDIENCE = "audience"
    CLAIMS = "claims"


class TokenError(RequestError):
    """A token that does not verify (401 `invalid_token`); `problem` says which rule."""

    def __init__(self, problem: TokenProblem, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    identity: str
    roles: frozenset[str]
    attributes: Mapping[str, str] = field(default_factory=dict)
    expires_at: float = 0.0  # the token's `exp`, seconds since the epoch
    issuer: str = ""


@dataclass(frozen=True, slots=True)
class JwtRules:
    """What a guard demands of a token (from its configuration)."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    roles_claim: str = "scope"  # dotted path
    identity_claim: str = "sub"
    attributes: Mapping[str, str] = field(default_factory=dict)  # name -> claim path
    leeway: float = 0.0


def _segment(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError(TokenProblem.MALFORMED, "a segment is not base64url") from None


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise TokenError(TokenProblem.MALFORMED, f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError(TokenProblem.MALFORMED, f"the {what} is not a JSON object")
    return value


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted claim path (`realm_access.roles`), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def verify(token: str, keys: KeySet, rules: JwtRules, now: float) -> Principal:
    """Verify `token` (rules 1-6) with `keys`; TokenError when it does not."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError(TokenProblem.TOO_LARGE, f"longer than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenError(TokenProblem.MALFORMED, "not three segments")
    header = _object(_segment(parts[0]), "header")
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in rules.algorithms:
        raise TokenError(TokenProblem.ALGORITHM, f"algorithm {algorithm!r} is not accepted")
    key = _key(keys, header.get("kid"))
    key_algorithm = key.alg if isinstance(key.alg, str) else None
    if key_algorithm is not None and key_algorithm != algorithm:
        raise TokenError(TokenProblem.ALGORITHM, f"key {key.kid!r} is for {key_algorithm}")
    try:
        signed = jws.deserialize_compact(
            token, key, algorithms=[algorithm], registry=_registry(rules.algorithms)
        )
    except JoseError as exc:
        problem = TokenProblem.SIGNATURE
        if exc.error in ("unsupported_header", "unsupported_algorithm"):
            problem = TokenProblem.ALGORITHM
        raise TokenError(problem, exc.error) from None
    except (ValueError, TypeError):
        raise TokenError(TokenProblem.MALFORMED, "the token does not decode") from None
    claims = _object(signed.payload, "payload")
    return _principal(claims, rules, now)


@functools.lru_cache(maxsize=64)
def _registry(algorithms: tuple[str, ...]) -> jws.JWSRegistry:
    """joserfc's registry allowing exactly the guard's algorithms (its default refuses the
    ones it does not recommend, such as EdDSA, even when asked for by name)."""
    return jws.JWSRegistry(algorithms=list(algorithms))


def _key(keys: KeySet, kid: object) -> Any:
    if kid is None:
        if len(keys.keys) == 1:
            return keys.keys[0]
        raise TokenError(TokenProblem.UNKNOWN_KEY, "no kid, and the guard has several keys")
    if not isinstance(kid, str):
        raise TokenError(TokenProblem.UNKNOWN_KEY, "kid is not a string")
    for key in keys.keys:
        if key.kid == kid:
            return key
    raise TokenError(TokenProblem.UNKNOWN_KEY, "no key has this kid")


def _time(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(TokenProblem.CLAIMS, f"{name} is not a number")
    return float(value)


def _principal(claims: Mapping[str, Any], rules: JwtRules, now: float) -> Principal:
    expires = _time(claims, "exp")
    if expires is None:
        raise TokenError(TokenProblem.CLAIMS, "no exp")
    if now >= expires + rules.leeway:
        raise TokenError(TokenProblem.EXPIRED, "expired")
    not_before = _time(claims, "nbf")
    if not_before is not None and now < not_before - rules.leeway:
        raise TokenError(TokenProblem.NOT_YET_VALID, "not valid yet")
    if claims.get("iss") != rules.issuer:
        raise TokenError(TokenProblem.ISSUER, "another issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if rules.audience not in audiences:
        raise TokenError(TokenProblem.AUDIENCE, "another audience")
    identity = claim(claims, rules.identity_claim)
    if not isinstance(identity, str) or not identity:
        raise TokenError(TokenProblem.CLAIMS, f"no {rules.identity_claim} string")
    raw_roles = claim(claims, rules.roles_claim)
    if raw_roles is None:
        roles: frozenset[str] = frozenset()
    elif isinstance(raw_roles, str):
        roles = frozenset(raw_roles.split())
    elif isinstance(raw_roles, list) and all(isinstance(r, str) for r in raw_roles):
        roles = frozenset(raw_roles)
    else:
        raise TokenError(TokenProblem.CLAIMS, f"{rules.roles_claim} is not roles")
    attributes = {}
    for name, path in rules.attributes.items():
        value = claim(claims, path)
        if isinstance(value, str) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            attributes[name] = str(value)
    return Principal(identity, roles, attributes, expires, rules.issuer)
