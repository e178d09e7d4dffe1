"""The secure demo's token issuer: client-credentials grants, discovery, keys, CORS."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from ssegate.demo.issuer import AUDIENCE, TOKEN_LIFETIME, DemoIssuer


@pytest.fixture
def issuer() -> Iterator[DemoIssuer]:
    running = DemoIssuer()
    running.start()
    yield running
    running.stop()


def call(
    url: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, httpx.Headers, Any]:
    if form is None:
        answer = httpx.get(url, headers=headers, timeout=5)
    else:
        answer = httpx.post(url, data=form, headers=headers, timeout=5)
    return answer.status_code, answer.headers, answer.json()


def test_a_client_credentials_token_verifies_with_the_published_keys(issuer: DemoIssuer) -> None:
    status, headers, discovery = call(f"{issuer.issuer}/.well-known/openid-configuration")
    assert status == 200
    assert discovery["issuer"] == issuer.issuer
    _, _, jwks = call(discovery["jwks_uri"])
    status, headers, body = call(
        discovery["token_endpoint"],
        {"grant_type": "client_credentials", "client_id": "bob", "client_secret": "bob"},
    )
    assert (status, body["token_type"], body["expires_in"]) == (200, "Bearer", TOKEN_LIFETIME)
    assert headers["access-control-allow-origin"] == "*"
    token = jwt.decode(body["access_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    claims = token.claims
    assert (claims["iss"], claims["aud"], claims["sub"]) == (issuer.issuer, AUDIENCE, "bob")
    assert (claims["scope"], claims["desk"]) == ("quotes:read", "nyse")
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME


def test_http_basic_client_authentication(issuer: DemoIssuer) -> None:
    basic = base64.b64encode(b"alice:alice").decode()
    status, _, body = call(
        f"{issuer.issuer}/token",
        {"grant_type": "client_credentials"},
        {"Authorization": f"Basic {basic}"},
    )
    assert status == 200
    assert body["scope"] == "quotes:read"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (
            {"grant_type": "password", "client_id": "alice", "client_secret": "alice"},
            400,
            "unsupported_grant_type",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "alice", "client_secret": "bob"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "mallory", "client_secret": "x"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
    ],
)
def test_refused_grants(issuer: DemoIssuer, form: dict[str, str], status: int, error: str) -> None:
    assert call(f"{issuer.issuer}/token", form)[0::2] == (status, {"error": error})


def test_unknown_paths_are_404(issuer: DemoIssuer) -> None:
    assert call(f"{issuer.issuer}/admin")[0] == 404
    assert call(f"{issuer.issuer}/admin", {"a": "b"})[0] == 404
