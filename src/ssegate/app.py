"""The gateway application: what each HTTP request gets. Dispatch only: the decisions
live in the steps it calls.

Order of decisions for a request (each failure answers and stops):
1. built-in endpoints: `/health`, `/ready`, `/metrics`; then configured static files;
2. a route whose path template matches, else 404 (with the CORS headers an allowed origin
   gets: every answer of the route space carries them, errors included);
3. the cross-origin policy (403) and preflight `OPTIONS` (204);
4. the route's guard (`ssegate.guard`): 401, 403, or 404 for a hidden route; a
   challenge-response POST renews the caller's sessions (204);
5. the subscription step (`ssegate.subscription`): method, `Last-Event-ID`, topic, `since`;
6. admission (`ssegate.admission`): room for one more stream, else 429 or 503;
7. 200: the stream opens with its initial comment and `retry:`, and joins the fan-out.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import ClassVar

from ssegate.admission import Admission, Admitted, Deferred
from ssegate.fanout.hub import TopicState
from ssegate.fanout.service import Fanout
from ssegate.fanout.subscriber import State, Subscriber
from ssegate.guard.authorize import Refused, authorize, decision_outcome
from ssegate.guard.guard import JwtGuard
from ssegate.guard.jwt import Principal
from ssegate.guard.sessions import CHALLENGE_EVENT, StreamSession, is_challenge_response
from ssegate.http.cors import CorsPolicy
from ssegate.http.exchange import Exchange
from ssegate.observe.metrics import GatewayMetrics
from ssegate.rejection import Rejection
from ssegate.routing import Router
from ssegate.sources.names import modeled_name
from ssegate.sse.stream import CloseReason
from ssegate.sse.wire import COMMENT, encode_retry
from ssegate.subscription import STREAM_METHODS, subscribe
from ssegate.wiring import CompiledConfig

logger = logging.getLogger("ssegate.app")

TEXT = [("Content-Type", "text/plain; charset=utf-8")]
JSON = [("Content-Type", "application/json")]
EVENT_STREAM = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
METRICS_TYPE = [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]


class Gateway:
    """Answers requests; opens streams into the fan-out."""

    def __init__(
        self,
        compiled: CompiledConfig,
        fanout: Fanout,
        admission: Admission,
        metrics: GatewayMetrics,
        *,
        readiness: ReadinessSource | None = None,
        connection_count: Callable[[], int] = lambda: 0,
    ) -> None:
        config = compiled.config
        self.config = config
        self.router = Router(compiled.routes)
        self.fanout = fanout
        self.admission = admission
        self.metrics = metrics
        self.cors = CorsPolicy(config.cors)
        self.readiness = readiness
        self.connection_count = connection_count
        self.literal_topics = {
            modeled_name(r.topic.resolve({}), r.model)
            for r in compiled.routes
            if r.topic.is_literal
        }
        self.stream_preamble = (COMMENT if config.sse.initial_comment else b"") + (
            encode_retry(config.sse.retry) if config.sse.retry is not None else b""
        )
        self.static = {url: _load_static(path) for url, path in compiled.static_files().items()}
        self.route_guards = compiled.route_guards
        self.guards = compiled.guards
        self.catalogs = compiled.catalogs
        self._responses = metrics.responses

    def record_status(self, status: int) -> None:
        self._responses.labels(str(status)).inc()

    def record_protocol_error(self, protocol: str, reason: str) -> None:
        self.metrics.protocol_errors.labels(protocol, reason).inc()

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, exchange: Exchange) -> None:
        request = exchange.request
        path = request.path
        builtin = self._builtins.get(path)
        if builtin is not None:
            if request.method not in ("GET", "HEAD"):
                exchange.respond(405, [*TEXT, ("Allow", "GET, HEAD")], b"use GET\n")
                return
            builtin(self, exchange)
            return
        static = self.static.get(path)
        if static is not None:
            self._serve_static(exchange, *static)
            return
        origin = request.header("origin")
        host = request.header("host")
        match = self.router.match(path)
        if match is None:
            # With the allowed origin's CORS headers, as every answer of the route space
            # (Zilla's too): a cross-origin page can then see the status.
            cors = self.cors.check(origin, host, request.scheme)
            exchange.respond(404, [*TEXT, *cors.headers], f"no route for {path}\n".encode())
            return
        route, params = match
        if request.method == "OPTIONS":
            preflight = self.cors.preflight(
                origin,
                host,
                request.header("access-control-request-method"),
                request.header("access-control-request-headers"),
                request.scheme,
            )
            if preflight.allowed:
                exchange.respond(204, [*preflight.headers, ("Allow", STREAM_METHODS)])
            else:
                exchange.respond(403, TEXT, f"origin {origin} is not allowed\n".encode())
            return
        cors = self.cors.check(origin, host, request.scheme)
        if not cors.allowed:
            exchange.respond(403, TEXT, f"origin {origin} is not allowed\n".encode())
            return
        values = None
        guarded: tuple[JwtGuard, Principal] | None = None
        step = self.route_guards[route.index] if self.route_guards else None
        if step is not None:
            decision = authorize(step, request, lambda: Rejection(HTTPStatus.NOT_FOUND, ""))
            self.metrics.guard_requests.labels(step.guard.name, decision_outcome(decision)).inc()
            if isinstance(decision, Refused):
                if decision.rejection.status is HTTPStatus.NOT_FOUND:
                    # Hidden (`unauthorized: 404`): exactly the answer of a missing route.
                    exchange.respond(404, [*TEXT, *cors.headers], f"no route for {path}\n".encode())
                    return
                rejection = decision.rejection
                exchange.respond(
                    rejection.status.value,
                    [*TEXT, *rejection.headers, *cors.headers],
                    rejection.body,
                )
                return
            if request.method == "POST" and is_challenge_response(request):
                # In-band renewal (guard.sessions rule 4): the caller's streams live on.
                step.guard.sessions.renew(decision.principal)
                exchange.respond(204, cors.headers)
                return
            guarded = (step.guard, decision.principal)
            values = decision.values
        subscription = subscribe(route, params, request, values)
        admitted = (
            subscription
            if isinstance(subscription, Rejection)
            else self.admission.admit(subscription)
        )
        if isinstance(admitted, Rejection):
            exchange.respond(
                admitted.status.value, [*TEXT, *admitted.headers, *cors.headers], admitted.body
            )
        elif isinstance(admitted, Deferred):
            self._defer(exchange, admitted, cors.headers)
        else:
            self._open(exchange, admitted, cors.headers, guarded)

    def _defer(
        self, exchange: Exchange, deferred: Deferred, headers: list[tuple[str, str]]
    ) -> None:
        """An event stream that ends at once, asking to be reopened `retry_ms` from now:
        its client keeps its id and resumes (admission's docstring)."""
        route = deferred.subscription.route.path
        self.metrics.deferred.labels(route).inc()
        logger.debug("stream on %s deferred: %s", route, deferred.why)
        exchange.respond(
            200, [*EVENT_STREAM, *headers], encode_retry(deferred.retry_ms), close=True
        )

    def _open(
        self,
        exchange: Exchange,
        admitted: Admitted,
        headers: list[tuple[str, str]],
        guarded: tuple[JwtGuard, Principal] | None = None,
    ) -> None:
        subscription = admitted.subscription
        sink = exchange.start_stream(headers)
        if self.stream_preamble:
            sink.write_events(self.stream_preamble)
        sessions: list[StreamSession] = []  # the stream's, once open (a guarded stream)

        def on_close(reason: CloseReason) -> None:
            admitted.release(reason)
            if sessions and guarded is not None:
                guarded[0].sessions.close(sessions[0])

        subscriber = self.fanout.subscribe(
            sink,
            topic=subscription.topic,
            key=subscription.key,
            stats=self.metrics.route(subscription.route.path),
            start=subscription.start,
            on_close=on_close if guarded is not None else admitted.release,
        )
        if guarded is not None and subscriber.state is not State.CLOSED:
            guard, principal = guarded
            sessions.append(
                guard.sessions.open(
                    principal,
                    on_challenge=partial(sink.write_events, CHALLENGE_EVENT),
                    on_expired=partial(_expire, subscriber),
                )
            )
        logger.debug(
            "stream %s opened for %s", exchange.request.loggable_target(), subscription.client_ip
        )

    # -- built-in endpoints ----------------------------------------------------------------

    def _health(self, exchange: Exchange) -> None:
        exchange.respond(200, TEXT, b"ok\n")

    def _ready(self, exchange: Exchange) -> None:
        ready, report = self.readiness_report()
        body = json.dumps(report, sort_keys=True).encode() + b"\n"
        exchange.respond(200 if ready else 503, JSON, body)

    def readiness_report(self) -> tuple[bool, dict[str, object]]:
        kafka_ok, kafka_detail = (
            self.readiness.kafka_status() if self.readiness is not None else (True, "unknown")
        )
        states = self.fanout.topic_states(self.literal_topics)
        topics = {topic: state.value for topic, state in sorted(states.items())}
        ready = kafka_ok and all(state is TopicState.OK for state in states.values())
        report: dict[str, object] = {"ready": ready, "kafka": kafka_detail, "topics": topics}
        remote = {n: g.remote for n, g in sorted(self.guards.items()) if g.remote is not None}
        if remote:
            # Keys never loaded: the guard answers 503. Stale keys still verify: ready.
            report["guards"] = {name: keys.state for name, keys in remote.items()}
            ready = report["ready"] = ready and all(k.keys is not None for k in remote.values())
        if self.catalogs:
            # Shown, not required: streams go on with the schemas already fetched, and
            # taking every instance out of a load balancer would not bring a registry back.
            report["catalogs"] = {name: c.state for name, c in sorted(self.catalogs.items())}
        return ready, report

    def _metrics(self, exchange: Exchange) -> None:
        self.metrics.connections.labels().set(self.connection_count())
        exchange.respond(200, METRICS_TYPE, self.metrics.render().encode())

    _builtins: ClassVar[dict[str, Callable[[Gateway, Exchange], None]]] = {
        "/health": _health,
        "/ready": _ready,
        "/metrics": _metrics,
    }

    def _serve_static(self, exchange: Exchange, content_type: str, body: bytes) -> None:
        if exchange.request.method not in ("GET", "HEAD"):
            exchange.respond(405, [*TEXT, ("Allow", "GET, HEAD")], b"use GET\n")
            return
        exchange.respond(200, [("Content-Type", content_type), ("Cache-Control", "no-cache")], body)


def _expire(subscriber: Subscriber) -> None:
    """Its token expired unrenewed: a clean end after a checkpoint (the client resumes
    exactly, once it has a fresh token)."""
    subscriber.close(CloseReason.EXPIRED, final=subscriber.final_checkpoint())


class ReadinessSource:
    """Reports whether Kafka answered recently (see `ssegate.server.KafkaProbe`)."""

    def kafka_status(self) -> tuple[bool, str]:
        raise NotImplementedError


def _load_static(path: Path) -> tuple[str, bytes]:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript",):
        content_type += "; charset=utf-8"
    return content_type, path.read_bytes()
