"""`guards` and `guarded` in the configuration: each mistake named by its place."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ssegate import wiring
from ssegate.errors import ConfigError

GUARD = {"type": "jwt", "issuer": "https://issuer.test", "audience": "https://gw.test"}
ROUTE = {"path": "/mine", "topic": "t", "guarded": {"jwt0": ["read"]}}


def error_of(guards: dict[str, Any], routes: list[dict[str, Any]] | None = None) -> str:
    document = {
        "kafka": {"bootstrap_servers": "localhost:9092"},
        "routes": routes or [ROUTE],
        "guards": guards,
    }
    with pytest.raises(ConfigError) as caught:
        wiring.parse(yaml.safe_dump(document), source="ssegate.yaml")
    return str(caught.value).removeprefix("ssegate.yaml: ")


@pytest.mark.parametrize(
    ("guards", "routes", "message"),
    [
        (
            {"jwt0": {**GUARD, "algorithms": ["none"]}},
            None,
            "guards.jwt0.algorithms[0]: 'none' is not one of",
        ),
        (
            {"jwt0": {**GUARD, "algorithms": []}},
            None,
            "guards.jwt0.algorithms: at least one algorithm is required",
        ),
        (
            {"jwt0": {**GUARD, "keys": "ftp://x"}},
            None,
            "guards.jwt0.keys: a JWKS URL starts with https://",
        ),
        (
            {"jwt0": {**GUARD, "issuer": "issuer", "keys": None}},
            None,
            "guards.jwt0.keys: required when the issuer is not a URL",
        ),
        (
            {"jwt0": {**GUARD, "keys": [{"kty": "XYZ"}]}},
            None,
            "guards.jwt0.keys: keys[0]: kty 'XYZ'",
        ),
        (
            {"jwt0": {**GUARD, "keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
            None,
            "guards.jwt0.keys: keys[0]: an oct (HMAC) key needs an HS256",
        ),
        (
            {"jwt0": {**GUARD, "credentials": {"header": False, "query": None}}},
            None,
            "guards.jwt0.credentials: at least one of cookie, header, query",
        ),
        (
            {"jwt.0": GUARD},
            [{"path": "/p", "topic": "t"}],
            "guards.jwt.0: a guard name is a letter",
        ),
        (
            {"jwt0": GUARD},
            [{**ROUTE, "guarded": {"other": []}}],
            "routes[0].guarded.other: no such guard (guards: jwt0)",
        ),
        (
            {"jwt0": GUARD},
            [{"path": "/p", "topic": "t", "unauthorized": 404}],
            "routes[0].unauthorized: applies to guarded routes only",
        ),
        (
            {"jwt0": GUARD},
            [{**ROUTE, "filters": [{"key": "${guarded['jwt0'].attributes.tenant}"}]}],
            "routes[0].filters[0].key: guard 'jwt0' has no attribute 'tenant' "
            "(its attributes: none)",
        ),
        (
            {"jwt0": GUARD},
            [{"path": "/p", "topic": "t-${guarded['jwt0'].identity}"}],
            "routes[0].topic: \"${guarded['jwt0'].identity}\" needs the route guarded by 'jwt0'",
        ),
    ],
)
def test_guard_mistakes(
    guards: dict[str, Any], routes: list[dict[str, Any]] | None, message: str
) -> None:
    assert error_of(guards, routes).startswith(message)
