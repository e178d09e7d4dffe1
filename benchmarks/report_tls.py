"""The `tls-http2` section of docs/performance.md (see report.py for the page)."""

from __future__ import annotations

from typing import Any

from benchmarks.report import SHORT, checks_text, fmt, status_lines, table, targets_of


def _points(scenario: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, point)
        for name, result in targets_of(scenario)
        for point in result.get("points", [])
        if point.get("kind") == kind
    ]


def _cpu_us(point: dict[str, Any]) -> float | None:
    value = (point.get("server") or {}).get("cpu_us_per_delivery")
    return float(value) if value is not None else None


def _goal(mine: float, theirs: float) -> str:
    return "met" if mine <= theirs else "**not met**"


def _share(point: dict[str, Any]) -> str:
    """How much of what it owed a point delivered, when it did not hold."""
    if point.get("held"):
        return ""
    owed = point.get("expected_per_s") or 0
    done = point.get("deliveries_per_s") or 0
    return f" (delivered {done / owed:.0%} of what it owed)" if owed else " (did not hold)"


def _equal_load(ours: dict[str, Any], other: dict[str, Any]) -> str:
    """A caveat when ssegate's point did not hold its load: the figures compared are then
    at different loads, so the goal is not judged there. (When only the other did not,
    ssegate did all the work for its CPU and the other less for its own: judged.)"""
    return "" if ours.get("held") else "; not judged: ssegate did not hold this load here"


def comparisons(scenario: dict[str, Any]) -> list[str]:
    """The issue's goals, each with the two figures it compares."""
    lines = []
    by_rate: dict[float, dict[str, dict[str, Any]]] = {}
    for name, point in _points(scenario, "fanout"):
        by_rate.setdefault(point["rate"], {})[name] = point
    for rate, points in sorted(by_rate.items()):
        ours, nginx, h2 = (
            points.get("ssegate_tls"),
            points.get("nchan_tls"),
            points.get("ssegate_h2"),
        )
        ours_us = _cpu_us(ours) if ours else None
        nginx_us = _cpu_us(nginx) if nginx else None
        h2_us = _cpu_us(h2) if h2 else None
        if ours and ours_us and nginx_us:
            assert nginx is not None
            caveat = _equal_load(ours, nginx)
            goal = "" if caveat else f"goal: no more than nginx: {_goal(ours_us, nginx_us)}"
            lines.append(
                f"- {fmt(ours['streams'])} streams x {fmt(rate, 0)}/s over TLS: ssegate "
                f"{fmt(ours_us, 2)} µs per delivery{_share(ours)}, nchan {fmt(nginx_us, 2)}"
                f"{_share(nginx)} ({goal}{caveat.removeprefix('; ')})."
            )
        if h2 and ours and h2_us and ours_us:
            per = h2["streams"] // max(h2["connections"], 1)
            caveat = _equal_load(h2, ours)
            goal = "" if caveat else f"goal: no more: {_goal(h2_us, ours_us)}"
            lines.append(
                f"- HTTP/2, {fmt(h2['connections'])} connections x {per} streams x "
                f"{fmt(rate, 0)}/s: {fmt(h2_us, 2)} µs per delivery{_share(h2)} against "
                f"{fmt(ours_us, 2)} over HTTP/1.1 and TLS ({fmt(ours['streams'])} connections)"
                f"{_share(ours)} ({goal}{caveat.removeprefix('; ')})."
            )
    idle = dict(_points(scenario, "idle"))
    mine = (idle.get("ssegate_tls") or {}).get("server", {}).get("rss_per_stream_kib")
    theirs = (idle.get("nchan_tls") or {}).get("server", {}).get("rss_per_stream_kib")
    if mine is not None and theirs is not None:
        lines.append(
            f"- RSS per idle TLS stream: ssegate {fmt(mine, 2)} KiB, nchan {fmt(theirs, 2)} KiB "
            f"(goal: no more than nginx: {_goal(float(mine), float(theirs))})."
        )
    return [*lines, ""] if lines else []


def tls_section(scenario: dict[str, Any]) -> list[str]:
    lines = ["## tls-http2", "", scenario.get("description", ""), ""]
    lines += comparisons(scenario)
    rows = []
    for name, point in _points(scenario, "idle"):
        server = point.get("server", {})
        rows.append(
            [
                SHORT[name],
                fmt(point["streams"]),
                fmt((point.get("open") or {}).get("seconds"), 2),
                fmt(server.get("rss_per_stream_kib"), 2),
                fmt(server.get("cpu_cores"), 3),
                "yes" if point.get("held") else "**no**",
            ]
        )
    lines += ["Idle streams:", ""]
    lines += table(
        ["target", "streams", "open time s", "RSS KiB/stream", "idle CPU cores", "held"], rows
    )
    rows = []
    for name, point in _points(scenario, "fanout"):
        server = point.get("server", {})
        latency = point.get("latency_ms") or {}
        rows.append(
            [
                SHORT[name],
                point.get("protocol", ""),
                fmt(point.get("connections")),
                fmt(point["streams"]),
                fmt(point.get("rate"), 0),
                fmt(point.get("deliveries_per_s"), 0),
                fmt(server.get("cpu_cores"), 2),
                fmt(server.get("cpu_us_per_delivery"), 2),
                f"{fmt(latency.get('p50'), 1)} / {fmt(latency.get('p99'), 1)} / "
                f"{fmt(latency.get('max'), 0)}",
                fmt(server.get("rss_mib"), 0),
                fmt((point.get("client") or {}).get("cpu_cores"), 2),
                ("yes" if point.get("held") else "**no**")
                + (f" ({point['reason']})" if point.get("reason") else ""),
                checks_text(point),
            ]
        )
    lines += ["Fan-out:", ""]
    lines += table(
        [
            "target",
            "protocol",
            "connections",
            "streams",
            "records/s",
            "deliveries/s",
            "server CPU cores",
            "server µs/delivery",
            "latency ms p50 / p99 / max",
            "RSS MiB",
            "client CPU cores",
            "held",
            "checks",
        ],
        rows,
    )
    rows = [
        [
            "with resumption" if point.get("resume") else "full handshakes",
            fmt(point.get("handshakes")),
            fmt(point.get("resumed")),
            fmt(point.get("failed")),
            fmt(point.get("seconds"), 2),
            fmt(point.get("per_second"), 0),
            fmt(point.get("server_cpu_ms_per_handshake"), 3),
        ]
        for _, point in _points(scenario, "handshakes")
    ]
    lines += ["TLS reconnect storm on one worker (each: connect, handshake, `/health`, close):", ""]
    lines += table(
        [
            "storm",
            "handshakes",
            "resumed",
            "failed",
            "seconds",
            "handshakes/s",
            "server CPU ms/handshake",
        ],
        rows,
    )
    return lines + status_lines(scenario)
