"""The gateway application: what each HTTP request gets.

Order of decisions for a request (each failure answers and stops):
1. built-in endpoints: `/health`, `/ready`, `/metrics`; then configured static files;
2. a route whose path template matches, else 404;
3. the cross-origin policy (403), preflight `OPTIONS` (204), then GET only (405);
4. `Last-Event-ID` (header, else `?lastEventId=`): over 254 bytes is 400; one that does
   not decode starts per the route's policy and is counted;
5. the topic and filters from the path parameters (404 when they name no valid topic);
6. the stream limits (429);
7. 200: the stream opens with its initial comment and `retry:`, and joins the fan-out.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import ClassVar, cast
from urllib.parse import unquote

from ssegate.config.loader import LoadedConfig
from ssegate.fanout.service import Fanout
from ssegate.fanout.subscriber import Policy, StartAt
from ssegate.http.cors import CorsPolicy
from ssegate.http.h1 import Exchange
from ssegate.http.request import Request, decode_query_value
from ssegate.kafka.eventid import MAX_ID_BYTES, EventIdError, IdForm, parse_event_id
from ssegate.observe.metrics import GatewayMetrics
from ssegate.routing import Router, TopicNameError
from ssegate.sse.wire import COMMENT, encode_retry

logger = logging.getLogger("ssegate.app")

TEXT = [("Content-Type", "text/plain; charset=utf-8")]
JSON = [("Content-Type", "application/json")]
METRICS_TYPE = [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]
ALLOW = "GET, OPTIONS"


class Gateway:
    """Answers requests; opens streams into the fan-out."""

    def __init__(
        self,
        loaded: LoadedConfig,
        fanout: Fanout,
        metrics: GatewayMetrics,
        *,
        readiness: ReadinessSource | None = None,
        connection_count: Callable[[], int] = lambda: 0,
    ) -> None:
        config = loaded.config
        self.config = config
        self.router = Router(loaded.routes)
        self.fanout = fanout
        self.metrics = metrics
        self.cors = CorsPolicy(config.cors)
        self.readiness = readiness
        self.connection_count = connection_count
        self.max_streams = config.limits.max_streams
        self.max_streams_per_ip = config.limits.max_streams_per_ip
        self.max_topics = config.limits.max_topics
        self.streams_per_ip: Counter[str] = Counter()
        self.stream_preamble = (COMMENT if config.sse.initial_comment else b"") + (
            encode_retry(config.sse.retry) if config.sse.retry is not None else b""
        )
        self.static = {url: _load_static(path) for url, path in loaded.static_files().items()}
        self._responses = metrics.responses

    def record_status(self, status: int) -> None:
        self._responses.labels(str(status)).inc()

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
        match = self.router.match(path)
        if match is None:
            exchange.respond(404, TEXT, f"no route for {path}\n".encode())
            return
        route, params = match
        origin = request.header("origin")
        host = request.header("host")
        if request.method == "OPTIONS":
            preflight = self.cors.preflight(
                origin,
                host,
                request.header("access-control-request-method"),
                request.header("access-control-request-headers"),
            )
            if preflight.allowed:
                exchange.respond(204, [*preflight.headers, ("Allow", ALLOW)])
            else:
                exchange.respond(403, TEXT, f"origin {origin} is not allowed\n".encode())
            return
        cors = self.cors.check(origin, host)
        if not cors.allowed:
            exchange.respond(403, TEXT, f"origin {origin} is not allowed\n".encode())
            return
        if request.method != "GET":
            exchange.respond(
                405,
                [*TEXT, ("Allow", ALLOW), *cors.headers],
                f"{request.method} is not allowed on an event stream; use GET\n".encode(),
            )
            return
        last_event_id, id_bytes = _last_event_id(request)
        if id_bytes > MAX_ID_BYTES:
            exchange.respond(
                400,
                [*TEXT, *cors.headers],
                f"Last-Event-ID is {id_bytes} bytes; the limit is {MAX_ID_BYTES}\n".encode(),
            )
            return
        try:
            topic, filters = route.resolve(params)
        except TopicNameError as exc:
            exchange.respond(404, [*TEXT, *cors.headers], f"{exc}\n".encode())
            return
        client_ip = request.client_ip
        limit = self._limit_reached(topic, client_ip)
        if limit is not None:
            exchange.respond(
                429, [*TEXT, ("Retry-After", "1"), *cors.headers], f"{limit}\n".encode()
            )
            return
        form = IdForm(route.event_id)
        start = self._start_at(route.start, last_event_id)
        if not start.resumed:
            since = request.query_param("since")
            if since is not None:
                try:
                    start = replace(start, since_ms=parse_since(unquote(since)))
                except ValueError as exc:
                    exchange.respond(400, [*TEXT, *cors.headers], f"since: {exc}\n".encode())
                    return
        sink = exchange.start_stream(cors.headers)
        if self.stream_preamble:
            sink.write_events(self.stream_preamble)
        on_close = None
        if self.max_streams_per_ip:
            self.streams_per_ip[client_ip] += 1
            on_close = partial(self._release_ip, client_ip)
        self.fanout.subscribe(
            sink,
            stats=self.metrics.route(route.path),
            topic=topic,
            group_key=(route.path, filters, form),
            start=start,
            on_close=on_close,
        )
        logger.debug("stream %s opened for %s", request.loggable_target(), client_ip)

    def _limit_reached(self, topic: str, client_ip: str) -> str | None:
        """Which stream limit a new stream would pass (the 429 body), or None."""
        if topic not in self.fanout.hubs and len(self.fanout.hubs) >= self.max_topics:
            return f"this server reads its limit of {self.max_topics} topics"
        if self.fanout.open_streams >= self.max_streams:
            return f"this server holds its limit of {self.max_streams} streams"
        if self.max_streams_per_ip and self.streams_per_ip[client_ip] >= self.max_streams_per_ip:
            return f"{client_ip} holds its limit of {self.max_streams_per_ip} streams"
        return None

    @staticmethod
    def _start_at(policy: str, last_event_id: str | None) -> StartAt:
        start_policy = cast(Policy, policy)
        if not last_event_id:
            return StartAt(start_policy)
        try:
            parsed = parse_event_id(last_event_id)
        except EventIdError as exc:
            logger.info("Last-Event-ID does not decode (%s); starting %s", exc, start_policy)
            return StartAt(start_policy, invalid=True)
        if parsed.compact is not None:
            return StartAt(start_policy, compact=parsed.compact)
        return StartAt(start_policy, parsed.progress)

    def _release_ip(self, client_ip: str) -> None:
        self.streams_per_ip[client_ip] -= 1
        if self.streams_per_ip[client_ip] <= 0:
            del self.streams_per_ip[client_ip]

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
        topics: dict[str, str] = {}
        for route in self.router.routes:
            if not route.topic.is_literal:
                continue
            topic = route.topic.resolve({})
            hub = self.fanout.hubs.get(topic)
            if hub is None or hub.failure is not None:
                topics[topic] = "no reader"
            elif hub.missing:
                topics[topic] = "missing"
            elif not hub.assigned:
                topics[topic] = "starting"
            else:
                topics[topic] = "ok"
        ready = kafka_ok and all(state == "ok" for state in topics.values())
        return ready, {"ready": ready, "kafka": kafka_detail, "topics": topics}

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


def _last_event_id(request: Request) -> tuple[str | None, int]:
    """The id a client resumes from, and its size in the bytes the client sent.

    The header wins (even empty). Header values arrive as latin-1 text, byte for byte; a
    browser sends the id's UTF-8 (WHATWG P-18), so the bytes are decoded again as UTF-8.
    The query parameter is percent-decoded as UTF-8 when it holds escapes (Zilla's rule).
    """
    header = request.header("last-event-id")
    if header is not None:
        sent = header.encode("latin-1")
        return sent.decode("utf-8", "replace"), len(sent)
    raw = request.query_param("lastEventId")
    if raw is None:
        return None, 0
    decoded = decode_query_value(raw)
    return decoded, len(decoded.encode("utf-8", "surrogatepass"))


def parse_since(text: str) -> int:
    """`?since=`: epoch milliseconds, or an ISO-8601 time (UTC when it names no zone)."""
    if text.isascii() and text.isdigit():
        millis = int(text)
        if millis > 2**63 - 1:
            raise ValueError(f"{text[:40]!r} is too far in the future")
        return millis
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"expected epoch milliseconds or an ISO-8601 time, got {text[:60]!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return max(int(moment.timestamp() * 1000), 0)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{text[:60]!r} is out of range") from None


class ReadinessSource:
    """Reports whether Kafka answered recently (see `ssegate.server.KafkaProbe`)."""

    def kafka_status(self) -> tuple[bool, str]:
        raise NotImplementedError


def _load_static(path: Path) -> tuple[str, bytes]:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript",):
        content_type += "; charset=utf-8"
    return content_type, path.read_bytes()
