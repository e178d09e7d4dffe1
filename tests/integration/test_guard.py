"""The JWT guard as clients see it: keys from a JWKS server on loopback (with rotation),
the caller's identity selecting their own records, RFC 6750 answers, and tokens kept out of
the logs."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.h2_client import H2Client
from tests.support.kafka import KafkaCluster, Record
from tests.support.sse_client import open_stream, request
from tests.support.tokens import AUDIENCE, ISSUER, Issuer, JwksServer, unsigned
from tests.support.waiting import until

pytestmark = pytest.mark.kafka

Gateways = Callable[..., GatewayProcess]


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def jwks(issuer: Issuer) -> Iterator[JwksServer]:
    with JwksServer(issuer).running() as server:
        yield server


def guarded_gateway(
    gateways: Gateways,
    topic: str,
    jwks: JwksServer,
    guard_options: dict[str, object] | None = None,
    **route: object,
) -> GatewayProcess:
    guard = {"type": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "keys": jwks.url}
    guard.update(guard_options or {})
    routes = [
        {
            "path": "/mine",
            "topic": topic,
            "filters": [{"key": "${guarded['jwt0'].identity}"}],
            "guarded": {"jwt0": ["read:notes"]},
            **route,
        },
        {"path": "/open", "topic": topic},
    ]
    return gateways(routes, guards={"jwt0": guard}, log_level="DEBUG", http2={"cleartext": True})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_caller_streams_only_their_own_records(
    kafka: KafkaCluster, gateways: Gateways, issuer: Issuer, jwks: JwksServer
) -> None:
    topic = kafka.new_topic(partitions=2)
    kafka.produce(
        topic,
        [
            Record(b"alice 1", key=b"alice"),
            Record(b"bob 1", key=b"bob"),
            Record(b"alice 2", key=b"alice"),
        ],
    )
    gateway = guarded_gateway(gateways, topic, jwks)
    alice = issuer.token(sub="alice", scope="read:notes")
    bob = issuer.token(sub="bob", scope="read:notes other")

    mine = await open_stream(gateway.port, "/mine", headers=bearer(alice))
    assert [e.data for e in await mine.next_events(2)] == ["alice 1", "alice 2"]
    await mine.close()
    # EventSource cannot set headers: the token in the query works, and is not logged.
    his = await open_stream(gateway.port, f"/mine?access_token={bob}")
    assert [e.data for e in await his.next_events(1)] == ["bob 1"]
    await his.close()
    log = gateway.log()
    assert "/mine?access_token=[redacted] opened" in log  # the DEBUG line of its opening
    assert bob not in log
    assert alice not in log

    # A forged token naming alice, without a valid signature: 401.
    forged = unsigned(issuer.claims(sub="alice", scope="read:notes"))
    refused = await request(gateway.port, "/mine", headers=bearer(forged))
    assert (refused.status, refused.header("WWW-Authenticate"), refused.body) == (
        401,
        'Bearer realm="ssegate", error="invalid_token"',
        b"the access token is not valid\n",
    )
    none = await request(gateway.port, "/mine")
    assert (none.status, none.header("WWW-Authenticate")) == (401, 'Bearer realm="ssegate"')
    no_role = await request(gateway.port, "/mine", headers=bearer(issuer.token(scope="other")))
    assert (no_role.status, no_role.header("WWW-Authenticate")) == (
        403,
        'Bearer realm="ssegate", error="insufficient_scope", scope="read:notes"',
    )
    # An unguarded route needs nothing.
    assert (await request(gateway.port, "/open", timeout=2)).status == 200

    metrics = (await request(gateway.port, "/metrics")).body.decode()
    outcomes = dict(
        re.findall(r'ssegate_guard_requests_total\{guard="jwt0",outcome="(\w+)"\} (\d+)', metrics)
    )
    # alg "none": refused for its algorithm, before any key is looked at.
    assert outcomes == {"allowed": "2", "algorithm": "1", "missing": "1", "forbidden": "1"}
    assert 'ssegate_guard_keys{guard="jwt0"} 1' in metrics
    ready = (await request(gateway.port, "/ready")).body.decode()
    assert '"guards": {"jwt0": "ok"}' in ready


async def test_keys_rotate_new_kid_fetched_removed_kid_refused(
    kafka: KafkaCluster, gateways: Gateways, issuer: Issuer, jwks: JwksServer
) -> None:
    topic = kafka.new_topic(partitions=1)
    kafka.produce(topic, [Record(b"note", key=b"alice")])
    issuer.add("rsa-2", "RS256")
    gateway = guarded_gateway(gateways, topic, jwks)
    old = issuer.token("rsa-1", scope="read:notes")
    assert (await request(gateway.port, "/mine", headers=bearer(old), timeout=2)).status == 200
    fetches = jwks.fetches

    # The issuer rotates: rsa-3 appears, rsa-1 is removed. A token signed with rsa-3 makes
    # the gateway fetch the keys again (at once, then at most every 30 s).
    issuer.add("rsa-3", "RS256")
    issuer.remove("rsa-1")
    new = issuer.token("rsa-3", scope="read:notes")
    answer = await until(
        lambda: request(gateway.port, "/mine", headers=bearer(new), timeout=2),
        10,
        accept=lambda a: a.status == 200,
        message="the token signed with the new key to be accepted",
    )
    assert answer.status == 200
    assert jwks.fetches == fetches + 1
    # The removed key's tokens fail now, even one verified (and cached) before.
    gone = await request(gateway.port, "/mine", headers=bearer(old))
    assert gone.status == 401
    kept = issuer.token("rsa-2", scope="read:notes")
    assert (await request(gateway.port, "/mine", headers=bearer(kept), timeout=2)).status == 200


async def test_a_jwks_outage_keeps_the_last_good_keys(
    kafka: KafkaCluster, gateways: Gateways, issuer: Issuer, jwks: JwksServer
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = guarded_gateway(gateways, topic, jwks)
    jwks.failing = True
    # An unknown kid asks for a fetch, which fails: the known keys keep working.
    issuer.add("rsa-9", "RS256")
    unknown = await request(
        gateway.port, "/mine", headers=bearer(issuer.token("rsa-9", scope="read:notes"))
    )
    assert unknown.status == 401
    ready = await until(
        lambda: request(gateway.port, "/ready"),
        10,
        accept=lambda a: b"stale" in a.body,
        message="/ready to say the keys are stale",
    )
    assert ready.status == 200  # stale keys still verify
    token = issuer.token("rsa-1", scope="read:notes")
    assert (await request(gateway.port, "/mine", headers=bearer(token), timeout=2)).status == 200
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    assert 'ssegate_guard_keys_refresh_failing{guard="jwt0"} 1' in metrics


async def test_unauthorized_404_hides_the_route(
    kafka: KafkaCluster, gateways: Gateways, issuer: Issuer, jwks: JwksServer
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = guarded_gateway(gateways, topic, jwks, unauthorized=404)
    hidden = await request(gateway.port, "/mine")
    missing = await request(gateway.port, "/nowhere")
    assert (hidden.status, hidden.body) == (404, b"no route for /mine\n")
    # The same answer as a route that does not exist: no WWW-Authenticate, no CORS.
    assert [name for name, _ in hidden.headers] == [name for name, _ in missing.headers]
    ok = await request(
        gateway.port, "/mine", headers=bearer(issuer.token(scope="read:notes")), timeout=2
    )
    assert ok.status == 200


async def test_challenge_renewal_and_expiry_over_http1_and_http2(
    kafka: KafkaCluster, gateways: Gateways, issuer: Issuer, jwks: JwksServer
) -> None:
    topic = kafka.new_topic(partitions=1)
    kafka.produce(topic, [Record(b"a1", key=b"alice"), Record(b"b1", key=b"bob")])
    gateway = guarded_gateway(gateways, topic, jwks, {"challenge": "2s"})
    soon = int(time.time()) + 4  # both first tokens expire in 3 to 4 s
    alice = await open_stream(
        gateway.port,
        "/mine",
        headers=bearer(issuer.token(sub="alice", scope="read:notes", exp=soon)),
    )
    assert [e.data for e in await alice.next_events(1)] == ["a1"]
    h2 = await H2Client.connect(gateway.port)  # HTTP/2 (cleartext) for bob
    bob_token = issuer.token(sub="bob", scope="read:notes", exp=soon)
    bob = await h2.get("/mine", {"authorization": f"Bearer {bob_token}"})
    await h2.read_until(lambda: len(h2.streams[bob].events()) == 1)

    # `challenge` seconds before exp, each stream gets Zilla's challenge event, with no id.
    (challenge,) = await alice.next_events(1, timeout=5)
    assert (challenge.type, challenge.data) == (
        "challenge",
        '{"method":"POST","headers":{"content-type":"application/x-challenge-response"}}',
    )
    assert challenge.last_event_id == "AQIAAg=="  # unchanged: still a1's
    await h2.read_until(lambda: any(e.type == "challenge" for e in h2.streams[bob].events()), 5)

    renew = {"Content-Type": "application/x-challenge-response"}
    fresh = issuer.token(sub="alice", scope="read:notes write", exp=soon + 60)
    answer = await request(gateway.port, "/mine", method="POST", headers={**renew, **bearer(fresh)})
    assert answer.status == 204
    # Bob's renewal without the route's role is refused; another user's renews nothing of his.
    weak = issuer.token(sub="bob", scope="other", exp=soon + 60)
    refused = await request(gateway.port, "/mine", method="POST", headers={**renew, **bearer(weak)})
    assert refused.status == 403
    carol = issuer.token(sub="carol", scope="read:notes", exp=soon + 60)
    assert (
        await request(gateway.port, "/mine", method="POST", headers={**renew, **bearer(carol)})
    ).status == 204

    # At exp bob's stream ends cleanly after a checkpoint; alice's (renewed) goes on.
    await h2.read_until(lambda: h2.streams[bob].ended, 8)
    assert h2.streams[bob].events()[-1].last_event_id  # a final checkpoint id
    await asyncio.to_thread(kafka.produce, topic, [Record(b"a2", key=b"alice")])
    assert [e.data for e in await alice.next_events(1, timeout=10)] == ["a2"]
    assert time.time() > soon  # it outlived its first token
    # Bob comes back with his stale token: 401.
    stale = await request(gateway.port, "/mine", headers=bearer(bob_token))
    assert stale.status == 401
    await alice.close()
    await h2.close()
    metrics = (await request(gateway.port, "/metrics")).body.decode()
    assert 'ssegate_streams_closed_total{route="/mine",reason="expired"} 1' in metrics


async def test_oversized_tokens_are_refused_without_harm(
    kafka: KafkaCluster, gateways: Gateways, issuer: Issuer, jwks: JwksServer
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = guarded_gateway(gateways, topic, jwks)
    huge = "x" * (64 * 1024)
    too_big = await request(gateway.port, "/mine", headers=bearer(huge))
    assert too_big.status == 431  # the header block limit, before any guard
    in_query = await request(gateway.port, f"/mine?access_token={huge}")
    assert in_query.status == 431
    long_token = issuer.token(scope="read:notes " + " ".join(f"r{i}" for i in range(2000)))
    assert 8192 < len(long_token) < 16 * 1024 - 200
    refused = await request(gateway.port, "/mine", headers=bearer(long_token))
    assert (refused.status, refused.header("WWW-Authenticate")) == (
        401,
        'Bearer realm="ssegate", error="invalid_token"',
    )
    ok = await request(
        gateway.port, "/mine", headers=bearer(issuer.token(scope="read:notes")), timeout=2
    )
    assert ok.status == 200  # and the gateway is fine
