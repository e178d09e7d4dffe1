"""Admission: whether the gateway has room for one more stream, asked after the
subscription step and before the stream opens.

Refusals, in the order they are checked:

1. the topic's source failed in a way retrying soon will not mend: 503 + `Retry-After`
   (the seconds until it is opened again);
2. the process reads `limits.max_topics` topics and this stream would open another: 429;
3. the process holds `limits.max_streams` streams, or the event loop runs late by more
   than `limits.max_loop_lag` (it cannot serve the streams it has): a new stream gets 503 +
   `Retry-After`, a few seconds with jitter so refused clients do not come back together;
   a stream that resumes (it sends an id) is *deferred* instead (below);
4. the client's address holds `limits.max_streams_per_ip` streams: 429;
5. the route closed streams for slowness in the last `SHED_WINDOW` seconds (it is shedding
   load) and its reconnect budget (`limits.reconnect_budget` resumes per second) is spent:
   the resume is deferred.

A deferred stream gets `200`, a `retry:` of a few seconds (jittered) and an immediate end:
a browser's `EventSource` then reconnects by itself with the same `Last-Event-ID`, which it
would not do after a 503 (WHATWG: any other status fails the connection for good). So a
gateway beyond its capacity refuses new streams before it drops established ones, and the
streams it had to drop come back spread out instead of all at once.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

from ssegate.rejection import Rejection
from ssegate.sse.stream import CloseReason
from ssegate.subscription import Subscription

# Retry-After for refusals under load: this many seconds, plus up to as many again at
# random, so a crowd refused together comes back spread out. Deferrals use the same range.
RETRY_AFTER_BASE = 2
# A route sheds load (its resumes are budgeted) for this long after it closed a stream for
# slowness.
SHED_WINDOW = 10.0


class FanoutLoad(Protocol):
    """What admission asks of the fan-out."""

    @property
    def open_streams(self) -> int: ...

    @property
    def topics_read(self) -> int: ...

    def reads(self, topic: str) -> bool: ...

    def retry_after(self, topic: str) -> float | None: ...


class LagSignal(Protocol):
    """How late the event loop runs, in seconds (`ssegate.observe.looplag`)."""

    @property
    def lag(self) -> float: ...


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_streams: int
    max_streams_per_ip: int  # 0: unlimited
    max_topics: int
    max_loop_lag: float  # seconds; 0: not checked
    reconnect_budget: int = 0  # resumes per second per route while it sheds; 0: unlimited


@dataclass(frozen=True, slots=True)
class Admitted:
    """A stream may open; call `release(reason)` once when it closes."""

    subscription: Subscription
    release: Callable[[CloseReason], None]


@dataclass(frozen=True, slots=True)
class Deferred:
    """The stream resumes later: answer 200 with `retry: retry_ms` and end at once."""

    subscription: Subscription
    retry_ms: int
    why: str


class ReconnectBudget:
    """Resumes per second one route may admit while it sheds load (a token bucket)."""

    __slots__ = ("_rate", "last", "shedding_until", "tokens")

    def __init__(self, rate: int, now: float) -> None:
        self._rate = float(rate)
        self.tokens = float(rate)
        self.last = now
        self.shedding_until = 0.0

    def shed(self, now: float) -> None:
        """A stream of the route was closed for slowness."""
        self.shedding_until = now + SHED_WINDOW

    def take(self, now: float) -> bool:
        """Whether one more resume may open now."""
        self.tokens = min(self._rate, self.tokens + (now - self.last) * self._rate)
        self.last = now
        if now >= self.shedding_until:
            return True
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Admission:
    """Counts the streams per client address; decides each new stream (module docstring)."""

    def __init__(
        self,
        limits: AdmissionLimits,
        fanout: FanoutLoad,
        lag: LagSignal | None = None,
        *,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._fanout = fanout
        self._lag = lag
        self._jitter = jitter
        self._clock = clock
        self.streams_per_ip: Counter[str] = Counter()
        self._budgets: dict[str, ReconnectBudget] = {}

    def admit(self, subscription: Subscription) -> Admitted | Deferred | Rejection:
        refusal = self._refusal(subscription)
        if refusal is not None:
            if subscription.start.resumed and refusal.status is HTTPStatus.SERVICE_UNAVAILABLE:
                # Every 503 here says when to come back; the deferral asks the same.
                seconds = int(dict(refusal.headers)["Retry-After"])
                return Deferred(subscription, seconds * 1000, refusal.message)
            return refusal
        budget = self._budget(subscription.route.path)
        if budget is not None and subscription.start.resumed and not budget.take(self._clock()):
            why = "the route's reconnect budget is spent"
            return Deferred(subscription, self._retry_seconds() * 1000, why)
        client_ip = subscription.client_ip
        self.streams_per_ip[client_ip] += 1
        release = _Release(self, client_ip, budget)
        return Admitted(subscription, release)

    def released(self, client_ip: str, budget: ReconnectBudget | None, reason: CloseReason) -> None:
        """A stream admitted for `client_ip` closed."""
        self._release_ip(client_ip)
        if reason is CloseReason.SLOW_CLIENT and budget is not None:
            budget.shed(self._clock())

    def _budget(self, route: str) -> ReconnectBudget | None:
        rate = self.limits.reconnect_budget
        if not rate:
            return None
        budget = self._budgets.get(route)
        if budget is None:
            budget = self._budgets[route] = ReconnectBudget(rate, self._clock())
        return budget

    def _retry_seconds(self) -> int:
        return RETRY_AFTER_BASE + math.floor(self._jitter() * (RETRY_AFTER_BASE + 1))

    def _refusal(self, subscription: Subscription) -> Rejection | None:
        limits = self.limits
        fanout = self._fanout
        topic = subscription.topic
        wait = fanout.retry_after(topic)
        if wait is not None:
            return Rejection(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"topic {topic!r} cannot be read now; try again later",
                (("Retry-After", str(max(math.ceil(wait), 1))),),
            )
        if not fanout.reads(topic) and fanout.topics_read >= limits.max_topics:
            return Rejection(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"this server reads its limit of {limits.max_topics} topics",
                (("Retry-After", "1"),),
            )
        if fanout.open_streams >= limits.max_streams:
            return self._busy(f"this server holds its limit of {limits.max_streams} streams")
        if limits.max_loop_lag and self._lag is not None and self._lag.lag > limits.max_loop_lag:
            return self._busy("this server is overloaded")
        per_ip = limits.max_streams_per_ip
        client_ip = subscription.client_ip
        if per_ip and self.streams_per_ip[client_ip] >= per_ip:
            return Rejection(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"{client_ip} holds its limit of {per_ip} streams",
                (("Retry-After", "1"),),
            )
        return None

    def _busy(self, message: str) -> Rejection:
        return Rejection(
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"{message}; try again later",
            (("Retry-After", str(self._retry_seconds())),),
        )

    def _release_ip(self, client_ip: str) -> None:
        self.streams_per_ip[client_ip] -= 1
        if self.streams_per_ip[client_ip] <= 0:
            del self.streams_per_ip[client_ip]


class _Release:
    """`Admitted.release`: one per open stream, so a small object rather than a closure
    (docs/performance.md: memory per idle stream)."""

    __slots__ = ("_admission", "_budget", "_client_ip")

    def __init__(
        self, admission: Admission, client_ip: str, budget: ReconnectBudget | None
    ) -> None:
        self._admission: Admission | None = admission
        self._client_ip = client_ip
        self._budget = budget

    def __call__(self, reason: CloseReason) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:  # only the first call counts
            admission.released(self._client_ip, self._budget, reason)
