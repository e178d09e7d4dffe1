"""OpenID Connect discovery of a guard's keys (keys.py rule 3), against a real HTTP server
on loopback: the document's jwks_uri, the 404 fallback, the issuer that must be equal,
outages that keep the last good keys, and a jwks_uri that moved."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from ssegate.guard.keys import RemoteKeys
from tests.support.gateway import free_port
from tests.support.tokens import Issuer, JwksServer
from tests.support.waiting import until

ALGORITHMS = ("RS256",)


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def server(issuer: Issuer) -> Iterator[JwksServer]:
    with JwksServer(issuer).running() as running:
        yield running


@pytest.fixture
async def started() -> AsyncIterator[list[RemoteKeys]]:
    """RemoteKeys a test starts, stopped at its end."""
    remotes: list[RemoteKeys] = []
    yield remotes
    for remote in remotes:
        remote.stop()
        if remote._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await remote._task


def start(started: list[RemoteKeys], remote: RemoteKeys) -> RemoteKeys:
    remote.start()
    started.append(remote)
    return remote


def kids(remote: RemoteKeys) -> list[str]:
    assert remote.keys is not None
    return sorted(str(key.kid) for key in remote.keys.keys)


@pytest.mark.parametrize("slash", ["", "/"])
async def test_the_jwks_uri_of_the_discovery_document_is_used(
    server: JwksServer, started: list[RemoteKeys], slash: str
) -> None:
    # The document is asked for at the issuer without its trailing slash (Discovery §4.1),
    # and must name the issuer exactly as configured, slash and all (§4.3).
    issuer_url = server.base + slash
    server.jwks_path = "/oauth/keys"
    server.discovery = server.openid_configuration(
        issuer=issuer_url, jwks_uri=f"{server.base}/oauth/keys"
    )
    remote = start(started, RemoteKeys.discover(issuer_url, ALGORITHMS))
    await until(lambda: remote.state, 5, accept=lambda s: s == "ok")
    assert kids(remote) == ["rsa-1"]
    assert remote.url == f"{server.base}/oauth/keys"
    assert (server.discoveries, server.fetches) == (1, 1)

    # A refresh fetches the known URL again, without discovering it again.
    remote.unknown_kid()
    await until(lambda: server.fetches, 5, accept=lambda n: n == 2)
    await until(lambda: remote.state, 5, accept=lambda s: s == "ok")
    assert server.discoveries == 1


async def test_no_discovery_document_falls_back_to_well_known_jwks_json(
    server: JwksServer, started: list[RemoteKeys]
) -> None:
    server.discovery = 404
    server.jwks_path = "/.well-known/jwks.json"
    remote = start(started, RemoteKeys.discover(server.base, ALGORITHMS))
    await until(lambda: remote.state, 5, accept=lambda s: s == "ok")
    assert kids(remote) == ["rsa-1"]
    assert remote.url == f"{server.base}/.well-known/jwks.json"
    assert (server.discoveries, server.fetches) == (1, 1)


async def test_a_configured_jwks_url_is_never_discovered(
    server: JwksServer, started: list[RemoteKeys]
) -> None:
    server.discovery = server.openid_configuration(jwks_uri=f"{server.base}/elsewhere")
    remote = start(started, RemoteKeys(server.url, ALGORITHMS))
    await until(lambda: remote.state, 5, accept=lambda s: s == "ok")
    assert (remote.url, server.discoveries, server.fetches) == (server.url, 0, 1)
    with pytest.raises(ValueError, match="a JWKS URL or an issuer"):
        RemoteKeys(server.url, ALGORITHMS, issuer=server.base)


async def test_another_issuer_in_the_document_is_refused_not_fallen_back_from(
    server: JwksServer, started: list[RemoteKeys]
) -> None:
    # A document for another issuer (here a proxy's public name): its keys would verify
    # that issuer's tokens, not ours. No key is fetched, from its jwks_uri or the fallback.
    server.discovery = server.openid_configuration(issuer="https://auth.example.com")
    remote = start(started, RemoteKeys.discover(server.base, ALGORITHMS))
    state = await until(lambda: remote.state, 5, accept=lambda s: s != "not loaded yet")
    assert state == (
        f"not loaded: OpenID discovery {server.base}/.well-known/openid-configuration: "
        f"its issuer 'https://auth.example.com' is not the guard's issuer '{server.base}' "
        "(they must be equal: OpenID Connect Discovery 1.0 §4.3)"
    )
    assert remote.keys is None
    assert server.fetches == 0


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (503, "answered 503"),
        (b"<html>down for maintenance</html>", "not JSON"),
        (b'["issuer"]', "not a JSON object"),
        (
            {"jwks_uri": "file:///etc/passwd"},
            "jwks_uri 'file:///etc/passwd' is not an https or http URL",
        ),
        ({"jwks_uri": None}, "jwks_uri None is not an https or http URL"),
    ],
)
async def test_a_discovery_that_fails_is_a_failed_fetch(
    server: JwksServer,
    started: list[RemoteKeys],
    answer: dict[str, object] | bytes | int,
    why: str,
) -> None:
    server.discovery = server.openid_configuration(**answer) if isinstance(answer, dict) else answer
    remote = start(started, RemoteKeys.discover(server.base, ALGORITHMS))
    state = await until(lambda: remote.state, 5, accept=lambda s: s != "not loaded yet")
    assert (
        state
        == f"not loaded: OpenID discovery {server.base}/.well-known/openid-configuration: {why}"
    )
    assert server.fetches == 0  # not a fallback either


async def test_a_refused_connection_to_the_issuer_is_a_failed_fetch(
    started: list[RemoteKeys],
) -> None:
    issuer_url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    remote = start(started, RemoteKeys.discover(issuer_url, ALGORITHMS))
    state = await until(lambda: remote.state, 5, accept=lambda s: s != "not loaded yet")
    assert state == (
        f"not loaded: OpenID discovery {issuer_url}/.well-known/openid-configuration: "
        "All connection attempts failed"
    )


async def test_an_outage_of_discovery_keeps_the_last_good_keys(
    issuer: Issuer, server: JwksServer, started: list[RemoteKeys]
) -> None:
    server.discovery = server.openid_configuration()
    remote = start(started, RemoteKeys.discover(server.base, ALGORITHMS))
    await until(lambda: remote.state, 5, accept=lambda s: s == "ok")
    generation = remote.generation

    # The provider goes down: its JWKS, then (the next attempt discovers again) its document.
    server.failing = True
    server.discovery = 503
    remote.unknown_kid()
    await until(
        lambda: remote.state,
        5,
        accept=lambda s: s == f"stale: JWKS {server.url}: answered 503",
    )
    state = await until(lambda: remote.state, 10, accept=lambda s: "discovery" in s)
    assert state == (
        f"stale: OpenID discovery {server.base}/.well-known/openid-configuration: answered 503"
    )
    # The keys it had are still there, unchanged: tokens signed with them still verify.
    assert kids(remote) == ["rsa-1"]
    assert remote.generation == generation
    assert server.discoveries == 2


async def test_a_jwks_uri_that_fails_is_discovered_again(
    issuer: Issuer, server: JwksServer, started: list[RemoteKeys]
) -> None:
    server.jwks_path = "/keys/v1"
    server.discovery = server.openid_configuration(jwks_uri=f"{server.base}/keys/v1")
    remote = start(started, RemoteKeys.discover(server.base, ALGORITHMS))
    await until(lambda: remote.state, 5, accept=lambda s: s == "ok")
    assert remote.url == f"{server.base}/keys/v1"

    # The provider moves its keys (and adds one): the old URL answers 404 now.
    server.jwks_path = "/keys/v2"
    server.discovery = server.openid_configuration(jwks_uri=f"{server.base}/keys/v2")
    issuer.add("rsa-2", "RS256")
    remote.unknown_kid()
    await until(
        lambda: remote.state,
        5,
        accept=lambda s: s == f"stale: JWKS {server.base}/keys/v1: answered 404",
    )
    # The next attempt (after the back-off) asks the document again and finds the new URL.
    await until(lambda: remote.state, 10, accept=lambda s: s == "ok")
    assert remote.url == f"{server.base}/keys/v2"
    assert kids(remote) == ["rsa-1", "rsa-2"]
    assert server.discoveries == 2
