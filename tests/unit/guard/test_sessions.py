"""Guarded streams' sessions: challenge before exp, end at exp, renewal by identity."""

from __future__ import annotations

import asyncio
import time

from ssegate.guard.jwt import Principal
from ssegate.guard.sessions import Sessions, is_challenge_response
from ssegate.http.request import Request

ISSUER = "https://issuer.test"


def principal(identity: str, roles: set[str], ttl: float, issuer: str = ISSUER) -> Principal:
    return Principal(identity, frozenset(roles), {}, time.time() + ttl, issuer)


async def test_challenge_then_expiry_unless_renewed() -> None:
    sessions = Sessions(challenge=0.2)
    seen: list[str] = []
    alice = principal("alice", {"read"}, 0.4)
    sessions.open(
        alice, lambda: seen.append("alice challenged"), lambda: seen.append("alice ended")
    )
    bob = principal("bob", {"read"}, 0.4)
    sessions.open(bob, lambda: seen.append("bob challenged"), lambda: seen.append("bob ended"))
    await asyncio.sleep(0.3)
    assert sorted(seen) == ["alice challenged", "bob challenged"]
    # Renewals that must not extend: another issuer, fewer roles, another identity.
    assert sessions.renew(principal("alice", {"read"}, 10, issuer="https://other.test")) == 0
    assert sessions.renew(principal("alice", set(), 10)) == 0
    assert sessions.renew(principal("carol", {"read"}, 10)) == 0
    assert sessions.renew(principal("alice", {"read", "write"}, 0.6)) == 1
    await asyncio.sleep(0.25)
    assert "bob ended" in seen
    assert "alice ended" not in seen
    assert len(sessions) == 1
    await asyncio.sleep(0.5)  # alice: challenged again before her new exp, then ended
    assert seen.count("alice challenged") == 2
    assert "alice ended" in seen
    assert len(sessions) == 0


async def test_a_closed_stream_forgets_its_timers() -> None:
    sessions = Sessions(challenge=None)
    seen: list[str] = []
    session = sessions.open(
        principal("alice", set(), 0.1), lambda: seen.append("c"), lambda: seen.append("e")
    )
    sessions.close(session)
    await asyncio.sleep(0.2)
    assert seen == []
    assert len(sessions) == 0


def test_the_renewal_content_type() -> None:
    def post(content_type: str) -> Request:
        return Request("POST", "/p", "", [("content-type", content_type)], "1.1", True, "x")

    assert is_challenge_response(post("application/x-challenge-response"))
    assert is_challenge_response(post("Application/X-Challenge-Response; charset=utf-8"))
    assert not is_challenge_response(post("application/json"))
