"""Prometheus text exposition, as scrapers read it."""

from __future__ import annotations

import pytest

from ssegate.observe.metrics import GatewayMetrics, Registry


def test_render_counters_and_gauges() -> None:
    registry = Registry()
    counter = registry.counter("x_total", "Things.", ("route", "reason"))
    gauge = registry.gauge("y", "Level.")
    counter.labels("/a", "slow").inc(2)
    counter.labels('/b"\n\\', "ok").inc()
    gauge.labels().set(1.5)
    assert registry.render() == (
        "# HELP x_total Things.\n"
        "# TYPE x_total counter\n"
        'x_total{route="/a",reason="slow"} 2\n'
        'x_total{route="/b\\"\\n\\\\",reason="ok"} 1\n'
        "# HELP y Level.\n"
        "# TYPE y gauge\n"
        "y 1.5\n"
    )


def test_label_count_is_checked() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        Registry().counter("z", "Z.", ("a",)).labels()


def test_route_stats_feed_the_families() -> None:
    metrics = GatewayMetrics()
    stats = metrics.route("/events")
    assert metrics.route("/events") is stats
    stats.events.value += 10
    stats.closed("slow_client")
    stats.resumed("ring")
    text = metrics.render()
    assert 'ssegate_events_delivered_total{route="/events"} 10\n' in text
    assert 'ssegate_streams_closed_total{route="/events",reason="slow_client"} 1\n' in text
    assert 'ssegate_resume_total{route="/events",outcome="ring"} 1\n' in text
