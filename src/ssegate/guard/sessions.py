"""The guarded streams of a guard, each living until its token's `exp`, and their renewal.

1. A stream opened with a token is a session: (identity, issuer, roles, expires_at).
2. With `challenge: N`, at `expires_at - N` the stream gets `event:challenge` with Zilla's
   data (no `id:`, so the client's last id is unchanged).
3. At `expires_at` the stream ends cleanly, with a checkpoint id, unless renewed; its
   client then reconnects with the id, and with a stale token gets 401.
4. Renewal: a POST of a fresh valid token to the route (content type
   `application/x-challenge-response`) extends every open session of the guard with the
   same identity and issuer whose roles the new token still carries, to the new token's
   `exp` (never shortening one), wherever their connections are: HTTP/1.1 or HTTP/2, this
   connection or another. It is safe because the caller proves, with a token that passes
   the same guard, that it is that identity with at least those roles: it could open
   the same streams anew; renewal only spares it the reconnect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ssegate.guard.jwt import Principal
from ssegate.http.request import Request

CHALLENGE_EVENT = (
    b'event:challenge\ndata:{"method":"POST","headers":'
    b'{"content-type":"application/x-challenge-response"}}\n\n'
)
CHALLENGE_CONTENT_TYPE = "application/x-challenge-response"


def is_challenge_response(request: Request) -> bool:
    """A renewal: `Content-Type: application/x-challenge-response` (parameters allowed)."""
    content_type = request.header("content-type") or ""
    return content_type.partition(";")[0].strip().lower() == CHALLENGE_CONTENT_TYPE


class StreamSession:
    """One guarded stream (rule 1) and its timers."""

    __slots__ = (
        "_challenge",
        "_expiry",
        "expires_at",
        "identity",
        "issuer",
        "on_challenge",
        "on_expired",
        "roles",
    )

    def __init__(
        self,
        principal: Principal,
        on_challenge: Callable[[], None],
        on_expired: Callable[[], None],
    ) -> None:
        self.identity = principal.identity
        self.issuer = principal.issuer
        self.roles = principal.roles
        self.expires_at = principal.expires_at
        self.on_challenge = on_challenge
        self.on_expired = on_expired
        self._challenge: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        for timer in (self._challenge, self._expiry):
            if timer is not None:
                timer.cancel()
        self._challenge = self._expiry = None


class Sessions:
    """A guard's sessions by identity (rules 2-4)."""

    def __init__(self, challenge: float | None, clock: Callable[[], float] = time.time) -> None:
        self.challenge = challenge
        self._clock = clock
        self._by_identity: dict[str, set[StreamSession]] = {}

    def __len__(self) -> int:
        return sum(len(sessions) for sessions in self._by_identity.values())

    def open(
        self,
        principal: Principal,
        on_challenge: Callable[[], None],
        on_expired: Callable[[], None],
    ) -> StreamSession:
        session = StreamSession(principal, on_challenge, on_expired)
        self._by_identity.setdefault(session.identity, set()).add(session)
        self._arm(session)
        return session

    def close(self, session: StreamSession) -> None:
        """The stream ended (for whatever reason): forget it."""
        session.cancel()
        sessions = self._by_identity.get(session.identity)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._by_identity[session.identity]

    def renew(self, principal: Principal) -> int:
        """Extend the matching sessions (rule 4); how many were."""
        renewed = 0
        for session in list(self._by_identity.get(principal.identity, ())):
            if session.issuer != principal.issuer or not session.roles <= principal.roles:
                continue
            if principal.expires_at > session.expires_at:
                session.expires_at = principal.expires_at
                session.cancel()
                self._arm(session)
            renewed += 1
        return renewed

    def _arm(self, session: StreamSession) -> None:
        loop = asyncio.get_running_loop()
        left = session.expires_at - self._clock()
        session._expiry = loop.call_later(max(left, 0.0), self._expired, session)
        if self.challenge is not None and left > 0:  # at once when already inside the window
            delay = max(left - self.challenge, 0.0)
            session._challenge = loop.call_later(delay, session.on_challenge)

    def _expired(self, session: StreamSession) -> None:
        self.close(session)
        session.on_expired()
