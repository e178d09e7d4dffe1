"""Keys, credentials and the guard step: what a request with or without a token gets."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
from joserfc.jwk import OctKey

from ssegate.guard.authorize import Authorized, Refused, RouteGuard, authorize
from ssegate.guard.guard import CredentialSources, JwtGuard, Missing, credential
from ssegate.guard.jwt import JwtRules
from ssegate.guard.keys import KeySetError, RemoteKeys, key_set, parse_jwks, time_to_live
from ssegate.http.request import Request
from ssegate.rejection import Rejection
from tests.support.tokens import AUDIENCE, ISSUER, Issuer

RULES = JwtRules(ISSUER, AUDIENCE, ("RS256",), attributes={"tenant": "tid"})
NOT_FOUND = Rejection(HTTPStatus.NOT_FOUND, "no route for /p")


def request(headers: list[tuple[str, str]] | None = None, query: str = "") -> Request:
    return Request("GET", "/p", query, headers or [], "1.1", True, "192.0.2.1")


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def guard(issuer: Issuer) -> JwtGuard:
    keys = key_set(issuer.jwks()["keys"], RULES.algorithms)
    sources = CredentialSources(cookie="at", header=True, query="access_token")
    return JwtGuard("jwt0", RULES, keys, sources)


def test_credentials_in_zillas_order_cookie_header_query() -> None:
    sources = CredentialSources(cookie="at", header=True, query="access_token")
    every = request(
        [("cookie", "x=1; at=from-cookie"), ("authorization", "Bearer from-header")],
        "access_token=from%2Bquery",
    )
    assert credential(every, sources) == "from-cookie"
    assert credential(request([("authorization", "bearer  h ")]), sources) == "h"
    assert credential(request(query="access_token=a%2Bb"), sources) == "a+b"
    assert credential(request([("authorization", "Basic dXNlcg==")]), sources) is None
    header_only = CredentialSources(cookie=None, header=True, query=None)
    assert credential(request(query="access_token=q"), header_only) is None


def test_the_guard_step_answers(issuer: Issuer, guard: JwtGuard) -> None:
    step = RouteGuard(guard, frozenset({"read:prices"}))
    allowed = authorize(
        step, request([("authorization", f"Bearer {issuer.token(tid='acme')}")]), lambda: NOT_FOUND
    )
    assert isinstance(allowed, Authorized)
    assert allowed.values == {
        "guarded.jwt0.identity": "alice",
        "guarded.jwt0.attributes.tenant": "acme",
    }
    missing = authorize(step, request(), lambda: NOT_FOUND)
    assert isinstance(missing, Refused)
    assert (missing.rejection.status, missing.rejection.headers, missing.outcome) == (
        HTTPStatus.UNAUTHORIZED,
        (("WWW-Authenticate", 'Bearer realm="ssegate"'),),
        "missing",
    )
    expired = authorize(
        step,
        request(query=f"access_token={issuer.token(exp=int(time.time()) - 1)}"),
        lambda: NOT_FOUND,
    )
    assert isinstance(expired, Refused)
    assert expired.rejection.status is HTTPStatus.UNAUTHORIZED
    assert expired.rejection.headers == (
        ("WWW-Authenticate", 'Bearer realm="ssegate", error="invalid_token"'),
    )
    assert expired.outcome == "expired"
    strict = RouteGuard(guard, frozenset({"admin", "read:prices"}))
    forbidden = authorize(
        strict, request([("authorization", f"Bearer {issuer.token()}")]), lambda: NOT_FOUND
    )
    assert isinstance(forbidden, Refused)
    assert forbidden.rejection.status is HTTPStatus.FORBIDDEN
    assert forbidden.rejection.headers == (
        (
            "WWW-Authenticate",
            'Bearer realm="ssegate", error="insufficient_scope", scope="admin read:prices"',
        ),
    )
    hidden = authorize(RouteGuard(guard, frozenset(), hide=True), request(), lambda: NOT_FOUND)
    assert isinstance(hidden, Refused)
    assert hidden.rejection is NOT_FOUND


def test_verified_tokens_are_cached_until_they_expire(issuer: Issuer, guard: JwtGuard) -> None:
    now = time.time()
    token = issuer.token(exp=int(now) + 10)
    with_token = request([("authorization", f"Bearer {token}")])
    first = guard.authenticate(with_token, now)
    assert guard.authenticate(with_token, now + 5) is first  # no second verification
    assert not isinstance(guard.authenticate(with_token, now + 11), type(first))


def test_remote_keys_not_loaded_yet_answer_503() -> None:
    remote = RemoteKeys("http://127.0.0.1:9/jwks.json", ("RS256",))
    guard = JwtGuard("jwt0", RULES, remote, CredentialSources())
    assert (
        guard.authenticate(request([("authorization", "Bearer x.y.z")]), time.time())
        is Missing.NO_KEYS
    )
    refused = authorize(
        RouteGuard(guard, frozenset(), hide=True),
        request([("authorization", "Bearer a.b.c")]),
        lambda: NOT_FOUND,
    )
    assert isinstance(refused, Refused)
    assert refused.rejection.status is HTTPStatus.SERVICE_UNAVAILABLE  # never hidden: retry
    assert refused.rejection.headers == (("Retry-After", "5"),)
    assert remote.state == "not loaded yet"


def test_key_sets(issuer: Issuer) -> None:
    with pytest.raises(KeySetError, match=r"keys\[0\]: kty 'XYZ' is not one of"):
        key_set([{"kty": "XYZ"}], ("RS256",))
    secret = OctKey.generate_key(256).as_dict()
    with pytest.raises(KeySetError, match="an oct \\(HMAC\\) key needs an HS256"):
        key_set([secret], ("RS256",))
    private = issuer.keys["rsa-1"].as_dict(private=True)
    (public,) = key_set([private], ("RS256",)).keys
    assert not public.is_private  # private members are dropped
    enc = {**issuer.jwks()["keys"][0], "use": "enc"}
    assert key_set([enc], ("RS256",)).keys == []
    fetched = parse_jwks(
        {"keys": [{"kty": "XYZ"}, enc, *issuer.jwks()["keys"], "junk"]}, ("RS256",)
    )
    assert [k.kid for k in fetched.keys] == ["rsa-1"]
    with pytest.raises(KeySetError, match="not a JWKS"):
        parse_jwks([], ("RS256",))


def test_time_to_live_follows_cache_control_within_bounds() -> None:
    assert time_to_live(None) == 300.0
    assert time_to_live("public, max-age=600") == 600.0
    assert time_to_live("max-age=5") == 60.0
    assert time_to_live("max-age=99999999") == 86_400.0
