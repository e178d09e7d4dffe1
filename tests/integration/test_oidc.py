"""The JWT guard with a real OpenID provider (npm `oidc-provider`, tests/support/oidc): the
guard names only the provider's issuer, finds its keys by OpenID discovery, and takes the
provider's client-credentials tokens; each client streams only its own records."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.oidc_provider import Client, OidcProvider, running_provider
from tests.support.sse_client import open_stream, request

pytestmark = pytest.mark.kafka

Gateways = Callable[..., GatewayProcess]

RESOURCE = "https://ssegate.test/"  # the resource indicator: the tokens' `aud`
DESK_A = Client("desk-a", "desk-a-secret", "quotes:read")
DESK_B = Client("desk-b", "desk-b-secret", "quotes:read")
AUDITOR = Client("auditor", "auditor-secret", "audit:read")  # may not ask for quotes:read


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with running_provider(
        tmp_path_factory.mktemp("oidc"),
        audience=RESOURCE,
        scopes=["quotes:read", "audit:read"],
        clients=[DESK_A, DESK_B, AUDITOR],
    ) as running:
        yield running


def token_of(provider: OidcProvider, client: Client, scope: str = "quotes:read") -> str:
    return provider.token(client.client_id, client.client_secret, scope, RESOURCE)


def oidc_gateway(gateways: Gateways, topic: str, provider: OidcProvider) -> GatewayProcess:
    # No `keys`: the gateway asks <issuer>/.well-known/openid-configuration for them.
    guard = {
        "type": "jwt",
        "issuer": provider.issuer,
        "audience": RESOURCE,
        "algorithms": ["RS256"],
        "roles": "scope",  # "quotes:read" (a space-separated string)
        "identity": "sub",  # oidc-provider sets it to the client_id for client credentials
    }
    routes = [
        {"path": "/quotes", "topic": topic, "guarded": {"oidc": ["quotes:read"]}},
        {
            "path": "/mine",
            "topic": topic,
            "filters": [{"key": "${guarded['oidc'].identity}"}],
            "guarded": {"oidc": ["quotes:read"]},
        },
    ]
    return gateways(routes, guards={"oidc": guard})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsegment(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(unsegment(token.split(".")[1]))
    return claims


async def test_provider_tokens_open_streams_found_by_discovery(
    kafka: KafkaCluster, gateways: Gateways, provider: OidcProvider
) -> None:
    topic = kafka.new_topic(partitions=1)
    kafka.produce(topic, [Record(b'{"AAPL":189.52}', key=b"desk-a")])
    token = token_of(provider, DESK_A)
    now = int(time.time())
    claims = claims_of(token)
    assert claims == {
        "jti": claims["jti"],
        "sub": "desk-a",
        "client_id": "desk-a",
        "iss": provider.issuer,
        "aud": RESOURCE,
        "scope": "quotes:read",
        "iat": claims["iat"],
        "exp": claims["iat"] + 300,
    }
    assert abs(claims["iat"] - now) <= 5

    gateway = oidc_gateway(gateways, topic, provider)
    # It started ready: the keys were found through discovery, at the provider's jwks_uri
    # (/jwks, not the /.well-known/jwks.json fallback, which oidc-provider does not serve).
    async with httpx.AsyncClient() as client:
        fallback = await client.get(f"{provider.issuer}/.well-known/jwks.json")
    assert fallback.status_code == 404
    log = gateway.log()
    assert (
        f"OpenID discovery {provider.issuer}/.well-known/openid-configuration: "
        f"jwks_uri {provider.jwks_uri}" in log
    )
    assert f"JWKS {provider.jwks_uri}: 1 keys" in log
    ready = (await request(gateway.port, "/ready")).body.decode()
    assert '"guards": {"oidc": "ok"}' in ready

    stream = await open_stream(gateway.port, "/quotes", headers=bearer(token))
    assert stream.response.status == 200
    assert stream.response.header("Content-Type") == "text/event-stream"
    await stream.wait_raw(b'data:{"AAPL":189.52}\n\n')
    await asyncio.to_thread(kafka.produce, topic, [Record(b'{"AAPL":189.96}', key=b"desk-b")])
    await stream.wait_raw(b'data:{"AAPL":189.96}\n\n')
    assert bytes(stream.raw) == (
        b":\n\n"  # the gateway's first comment
        b'id:AQIAAg==\ndata:{"AAPL":189.52}\n\n'
        b'id:AQIABA==\ndata:{"AAPL":189.96}\n\n'
    )
    await stream.close()

    # A token of a client without the route's scope: 403, and which scope it lacks.
    audit = token_of(provider, AUDITOR, "audit:read")
    forbidden = await request(gateway.port, "/quotes", headers=bearer(audit))
    assert (forbidden.status, forbidden.header("WWW-Authenticate")) == (
        403,
        'Bearer realm="ssegate", error="insufficient_scope", scope="quotes:read"',
    )
    # No token: 401.
    missing = await request(gateway.port, "/quotes")
    assert (missing.status, missing.header("WWW-Authenticate")) == (
        401,
        'Bearer realm="ssegate"',
    )
    # The provider's token with one bit of its signature flipped: 401.
    header, payload, signature = token.split(".")
    flipped = bytearray(unsegment(signature))
    flipped[len(flipped) // 2] ^= 0x01
    tampered = f"{header}.{payload}.{segment(bytes(flipped))}"
    refused = await request(gateway.port, "/quotes", headers=bearer(tampered))
    assert (refused.status, refused.header("WWW-Authenticate"), refused.body) == (
        401,
        'Bearer realm="ssegate", error="invalid_token"',
        b"the access token is not valid\n",
    )
    # Its claims rewritten to another client's, its signature kept: 401 as well.
    other = segment(json.dumps({**claims, "sub": "desk-b", "client_id": "desk-b"}).encode())
    forged = await request(gateway.port, "/mine", headers=bearer(f"{header}.{other}.{signature}"))
    assert (forged.status, forged.header("WWW-Authenticate")) == (
        401,
        'Bearer realm="ssegate", error="invalid_token"',
    )
    # The original still works after all that.
    again = await request(gateway.port, "/quotes", headers=bearer(token), timeout=2)
    assert again.status == 200


async def test_each_client_streams_only_its_own_records(
    kafka: KafkaCluster, gateways: Gateways, provider: OidcProvider
) -> None:
    topic = kafka.new_topic(partitions=1)
    kafka.produce(
        topic,
        [
            Record(b"a1", key=b"desk-a"),
            Record(b"b1", key=b"desk-b"),
            Record(b"a2", key=b"desk-a"),
            Record(b"x1", key=b"auditor"),
        ],
    )
    gateway = oidc_gateway(gateways, topic, provider)
    desk_a = await open_stream(gateway.port, "/mine", headers=bearer(token_of(provider, DESK_A)))
    # EventSource's way: the token in the query.
    desk_b = await open_stream(gateway.port, f"/mine?access_token={token_of(provider, DESK_B)}")
    assert (desk_a.response.status, desk_b.response.status) == (200, 200)
    await desk_a.wait_raw(b"data:a2\n\n")
    await desk_b.wait_raw(b"data:b1\n\n")
    await asyncio.to_thread(
        kafka.produce, topic, [Record(b"b2", key=b"desk-b"), Record(b"a3", key=b"desk-a")]
    )
    await desk_a.wait_raw(b"data:a3\n\n")
    await desk_b.wait_raw(b"data:b2\n\n")
    # Each event's id is the position after its record (1 to 6): only the client's own.
    assert bytes(desk_a.raw) == (
        b":\n\n"  # the gateway's first comment
        b"id:AQIAAg==\ndata:a1\n\n"
        b"id:AQIABg==\ndata:a2\n\n"
        b"id:AQIADA==\ndata:a3\n\n"
    )
    assert bytes(desk_b.raw) == (b":\n\nid:AQIABA==\ndata:b1\n\nid:AQIACg==\ndata:b2\n\n")
    await desk_a.close()
    await desk_b.close()
