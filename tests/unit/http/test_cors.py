"""Cross-origin decisions, as Zilla's access-control (zilla-sse.md §2.10)."""

from __future__ import annotations

from ssegate.config.schema import CorsAllow, CorsConfig, Seconds
from ssegate.http.cors import CorsPolicy, normalise_origin


def test_normalise_origin() -> None:
    assert normalise_origin("HTTPS://App.Example:443/") == "https://app.example"
    assert normalise_origin("http://a.example:80") == "http://a.example"
    assert normalise_origin("http://a.example:8080") == "http://a.example:8080"


def test_same_origin() -> None:
    policy = CorsPolicy(CorsConfig())
    assert policy.check(None, "gw:7114").allowed
    assert policy.check("http://gw:7114", "gw:7114").allowed
    assert policy.check("http://gw", "gw:80").allowed
    assert not policy.check("http://other:7114", "gw:7114").allowed
    assert not policy.check("http://gw:7114", None).allowed
    assert policy.check("http://gw:7114", "gw:7114").headers == []


def test_cross_origin_any() -> None:
    policy = CorsPolicy(CorsConfig(policy="cross-origin"))
    decision = policy.check("https://a.example", "gw")
    assert decision.allowed
    assert decision.headers == [("Access-Control-Allow-Origin", "*")]
    assert policy.check(None, "gw").headers == [("Access-Control-Allow-Origin", "*")]


def test_cross_origin_allow_list_with_credentials() -> None:
    policy = CorsPolicy(
        CorsConfig(
            policy="cross-origin",
            allow=CorsAllow(origins=["https://a.example"], credentials=True),
            expose_headers=["X-Id"],
        )
    )
    assert not policy.check("https://b.example", "gw").allowed
    assert policy.check("https://A.example:443", "gw").headers == [
        ("Access-Control-Allow-Origin", "https://A.example:443"),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "X-Id"),
    ]


def test_preflight() -> None:
    policy = CorsPolicy(
        CorsConfig(
            policy="cross-origin",
            allow=CorsAllow(methods=["GET", "POST"], headers=["authorization"]),
            max_age=Seconds(60),
        )
    )
    decision = policy.preflight("https://a.example", "gw", "GET", "authorization, x-other")
    assert decision.allowed
    assert decision.headers == [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "GET, POST"),
        ("Access-Control-Allow-Headers", "authorization"),
        ("Access-Control-Max-Age", "60"),
    ]
    assert not policy.preflight("https://a.example", "gw", "DELETE", None).allowed
