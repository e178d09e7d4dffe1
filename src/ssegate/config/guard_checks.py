"""Checks of `guards` and of the routes' `guarded` entries (docs/security.md)."""

from __future__ import annotations

import re
from typing import NoReturn

from ssegate.config.problems import ConfigPath, ConfigProblem
from ssegate.config.schema import Config, GuardConfig

# RFC 7518 §3.1 and RFC 8037: what a guard may accept; never `none`.
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
    | {"EdDSA", "Ed25519"}  # EdDSA: RFC 8037's name, deprecated by RFC 9864's Ed25519
    | {"HS256", "HS384", "HS512"}
)
GUARD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
CLAIM_PATH = re.compile(r"[^.\s]+(?:\.[^.\s]+)*")
TOKEN_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a cookie or query name


def _fail(path: ConfigPath, message: str) -> NoReturn:
    raise ConfigProblem(path, message)


def check_guards(config: Config) -> None:
    for name, guard in config.guards.items():
        _check_guard(("guards", name), name, guard)
    for index, route in enumerate(config.routes):
        where: ConfigPath = ("routes", index, "guarded")
        if len(route.guarded) > 1:
            _fail(where, "one guard per route")
        for name, roles in route.guarded.items():
            if name not in config.guards:
                known = ", ".join(sorted(config.guards)) or "none are configured"
                _fail((*where, name), f"no such guard (guards: {known})")
            for role_index, role in enumerate(roles):
                if not role.strip() or any(c.isspace() for c in role):
                    _fail((*where, name, role_index), f"{role!r} is not a role name")
        if route.unauthorized == 404 and not route.guarded:
            _fail(("routes", index, "unauthorized"), "applies to guarded routes only")


def _check_guard(where: ConfigPath, name: str, guard: GuardConfig) -> None:
    if not GUARD_NAME.fullmatch(name):
        _fail(where, "a guard name is a letter, then letters, digits, '_' or '-'")
    if not guard.issuer.strip():
        _fail((*where, "issuer"), "must not be empty")
    if not guard.audience.strip():
        _fail((*where, "audience"), "must not be empty")
    if not guard.algorithms:
        _fail((*where, "algorithms"), "at least one algorithm is required")
    for index, algorithm in enumerate(guard.algorithms):
        if algorithm not in ALGORITHMS:
            _fail(
                (*where, "algorithms", index),
                f"{algorithm!r} is not one of {', '.join(sorted(ALGORITHMS))}",
            )
    if isinstance(guard.keys, str) and not guard.keys.startswith(("https://", "http://")):
        _fail((*where, "keys"), "a JWKS URL starts with https:// (or http://)")
    if guard.keys is None and not guard.issuer.startswith(("https://", "http://")):
        _fail(
            (*where, "keys"),
            "required when the issuer is not a URL (without keys, they are found from "
            "<issuer>/.well-known/openid-configuration, else <issuer>/.well-known/jwks.json)",
        )
    for field in ("roles", "identity"):
        if not CLAIM_PATH.fullmatch(getattr(guard, field)):
            _fail((*where, field), "a claim path: names joined by '.'")
    for attribute, path in guard.attributes.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", attribute):
            _fail((*where, "attributes", attribute), "an attribute name is [A-Za-z_][A-Za-z0-9_]*")
        if not CLAIM_PATH.fullmatch(path):
            _fail((*where, "attributes", attribute), "a claim path: names joined by '.'")
    if float(guard.leeway) < 0:
        _fail((*where, "leeway"), "must be at least 0")
    if guard.challenge is not None and not float(guard.challenge) > 0:
        _fail((*where, "challenge"), "must be greater than 0 (or left out: no challenge)")
    sources = guard.credentials
    if sources.cookie is None and not sources.header and sources.query is None:
        _fail((*where, "credentials"), "at least one of cookie, header, query")
    for field in ("cookie", "query"):
        value = getattr(sources, field)
        if value is not None and not TOKEN_NAME.fullmatch(value):
            _fail((*where, "credentials", field), f"{value!r} is not a valid name")
