"""Prometheus metrics with no locks and no per-event cost.

Everything runs on one event loop, so a counter is a plain integer on an object the hot
path already holds (a route's stats, a group); there is no registry lookup per event. The
`/metrics` handler renders the text exposition format (version 0.0.4) on request. Labels
are routes, topics and reasons, never clients (cardinality).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    inner = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + inner + "}"


class Metric:
    """A counter or gauge family: one value per label combination."""

    def __init__(self, name: str, kind: str, help_text: str, labels: tuple[str, ...] = ()):
        self.name = name
        self.kind = kind
        self.help = help_text
        self.label_names = labels
        self._children: dict[tuple[str, ...], Value] = {}

    def labels(self, *values: str) -> Value:
        if len(values) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {values}")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = Value()
        return child

    def remove(self, *values: str) -> None:
        self._children.pop(values, None)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for values, child in sorted(self._children.items()):
            yield f"{self.name}{_labels(self.label_names, values)} {child.value:g}"


class Value:
    """One time series. `value` is public so hot paths can add to it directly."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


@dataclass
class Registry:
    metrics: list[Metric] = field(default_factory=list)
    collectors: list[Callable[[], None]] = field(default_factory=list)

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Metric:
        return self._add(Metric(name, "counter", help_text, labels))

    def gauge(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Metric:
        return self._add(Metric(name, "gauge", help_text, labels))

    def on_collect(self, collector: Callable[[], None]) -> None:
        """Run `collector` before rendering (to refresh gauges computed on demand)."""
        self.collectors.append(collector)

    def _add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        for collect in self.collectors:
            collect()
        lines: list[str] = []
        for metric in self.metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


class GatewayMetrics:
    """Every metric ssegate exports, created once per process."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.streams_open = r.gauge("ssegate_streams_open", "Open event streams.", ("route",))
        self.streams_opened = r.counter(
            "ssegate_streams_opened_total", "Event streams opened.", ("route",)
        )
        self.streams_closed = r.counter(
            "ssegate_streams_closed_total",
            "Event streams closed, by reason (client_closed, slow_client, shutdown, error, "
            "expired).",
            ("route", "reason"),
        )
        self.streams_fell_behind = r.counter(
            "ssegate_streams_fell_behind_total",
            "Times a live stream's unsent data passed the high-water mark and it went on "
            "from the ring at its client's pace.",
            ("route",),
        )
        self.events = r.counter(
            "ssegate_events_delivered_total",
            "Events written to clients (one per event per stream).",
            ("route",),
        )
        self.bytes = r.counter(
            "ssegate_bytes_delivered_total", "Event bytes written to clients.", ("route",)
        )
        self.resumes = r.counter(
            "ssegate_resume_total",
            "How streams started: fresh (no id), since (?since=), ring (resumed from memory), "
            "catchup (resumed through a catch-up reader), invalid (an id that did not decode "
            "or did not fit the topic).",
            ("route", "outcome"),
        )
        self.responses = r.counter(
            "ssegate_http_responses_total", "HTTP responses by status code.", ("code",)
        )
        self.guard_requests = r.counter(
            "ssegate_guard_requests_total",
            "Stream requests a guard decided, by guard and outcome: allowed, missing (no "
            "token), forbidden (a role lacking), unavailable (no keys yet), or why the token "
            "was refused (expired, signature, unknown_key, algorithm, issuer, audience, ...).",
            ("guard", "outcome"),
        )
        self.guard_keys = r.gauge(
            "ssegate_guard_keys",
            "Verification keys a guard holds (0: none loaded yet).",
            ("guard",),
        )
        self.guard_keys_failing = r.gauge(
            "ssegate_guard_keys_refresh_failing",
            "1 while a guard's last JWKS fetch failed (it keeps its last good keys).",
            ("guard",),
        )
        self.invalid_records = r.counter(
            "ssegate_invalid_records_total",
            "Records a route's model refused (never delivered as data), by topic and reason "
            "(magic-byte, truncated, unknown-schema, registry-unavailable, schema-mismatch, "
            "not-json, ...).",
            ("topic", "reason"),
        )
        self.catalog_available = r.gauge(
            "ssegate_catalog_available",
            "1 while a schema catalog's registry answers, 0 while it is backed off.",
            ("catalog",),
        )
        self.catalog_fetches = r.gauge(
            "ssegate_catalog_requests",
            "Requests a catalog sent to its registry, and those that failed, since start.",
            ("catalog", "outcome"),
        )
        self.protocol_errors = r.counter(
            "ssegate_http_protocol_errors_total",
            "Connections closed for breaking a protocol's rules or limits (HTTP/2 floods, "
            "malformed frames), by protocol and reason.",
            ("protocol", "reason"),
        )
        self.records_read = r.counter(
            "ssegate_kafka_records_read_total", "Records read by topic readers.", ("topic",)
        )
        self.reader_lag = r.gauge(
            "ssegate_reader_lag_records",
            "Records between a topic reader's position and the partitions' ends.",
            ("topic",),
        )
        self.topic_missing = r.gauge(
            "ssegate_topic_missing",
            "1 while a topic that streams wait for does not exist.",
            ("topic",),
        )
        self.ring_records = r.gauge(
            "ssegate_ring_records", "Records held in a topic's ring.", ("topic",)
        )
        self.ring_bytes = r.gauge("ssegate_ring_bytes", "Bytes held in a topic's ring.", ("topic",))
        self.replay_shared = r.counter(
            "ssegate_replay_chunks_shared_total",
            "Replay chunks written to a resuming stream from another stream's encoding.",
            ("topic",),
        )
        self.source_failures = r.counter(
            "ssegate_source_failures_total",
            "Sources (topic readers) that failed, by whether retrying soon may mend it.",
            ("topic", "retriable"),
        )
        self.catchup_readers = r.gauge(
            "ssegate_catchup_readers", "Temporary readers serving clients older than the ring."
        )
        self.catchup_waiting = r.gauge(
            "ssegate_catchup_waiting", "Streams waiting for a catch-up reader slot."
        )
        self.connections = r.gauge("ssegate_connections_open", "Open HTTP connections.")
        self.deferred = r.counter(
            "ssegate_streams_deferred_total",
            "Resuming streams told to come back later (200, retry:, end) under load.",
            ("route",),
        )
        self.loop_lag = r.gauge(
            "ssegate_loop_lag_seconds",
            "How late the event loop runs (recent worst, decaying); admission's overload signal.",
        )
        self._routes: dict[str, RouteStats] = {}

    def render(self) -> str:
        return self.registry.render()

    def route(self, route: str) -> RouteStats:
        """The per-route series the hot paths hold on to."""
        stats = self._routes.get(route)
        if stats is None:
            stats = self._routes[route] = RouteStats(self, route)
        return stats


class RouteStats:
    """One route's series, resolved once so delivery adds to plain attributes."""

    __slots__ = ("_metrics", "bytes", "events", "fell_behind", "open", "opened", "route")

    def __init__(self, metrics: GatewayMetrics, route: str) -> None:
        self._metrics = metrics
        self.route = route
        self.open = metrics.streams_open.labels(route)
        self.opened = metrics.streams_opened.labels(route)
        self.events = metrics.events.labels(route)
        self.bytes = metrics.bytes.labels(route)
        self.fell_behind = metrics.streams_fell_behind.labels(route)

    def closed(self, reason: str) -> None:
        self._metrics.streams_closed.labels(self.route, reason).inc()

    def resumed(self, outcome: str) -> None:
        self._metrics.resumes.labels(self.route, outcome).inc()
