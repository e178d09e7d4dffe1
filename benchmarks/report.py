"""`python -m benchmarks.report`: results JSON -> docs/performance.md and its plots.

Runs in the bench tools venv (matplotlib); imports nothing of ssegate. The page is
generated entirely from `benchmarks/results/latest.json`, plus the hand-written analysis in
`benchmarks/report_notes.md` (what the figures mean, which is not a number), so
`make bench-report` after `make bench` always shows the figures of the last run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
NOTES = ROOT / "benchmarks" / "report_notes.md"
PAGE = ROOT / "docs" / "performance.md"
PLOTS = ROOT / "docs" / "performance"
TARGET_ORDER = (
    "ssegate",
    "ssegate_tls",
    "ssegate_h2",
    "nchan",
    "nchan_tls",
    "python_stack",
    "ssegate_handshakes",
    "ssegate_guard",
    "ssegate_avro",
    "ssegate_json",
)
SHORT = {
    "ssegate": "ssegate",
    "ssegate_tls": "ssegate TLS",
    "ssegate_h2": "ssegate TLS h2",
    "ssegate_handshakes": "ssegate TLS",
    "ssegate_guard": "ssegate + JWT guard",
    "nchan": "nchan",
    "nchan_tls": "nchan TLS",
    "python_stack": "Python stack",
    "ssegate_avro": "ssegate Avro",
    "ssegate_json": "ssegate JSON",
}
COLOURS = {"ssegate": "tab:blue", "nchan": "tab:green", "python_stack": "tab:red"}

# DESIGN.md §7 and issue 5
BUDGET_STREAMS = 50_000
BUDGET_RSS_KIB = 4.0
BUDGET_CPU_US = 1.0
BUDGET_P99_MS = 25.0
BUDGET_PEER_RATIO = 20.0
# issue 7: beyond capacity, the sustained deliveries/s keep this share of the peak's
OVERLOAD_TARGET_RATIO = 0.8
OVERLOAD_PLOT = "overload.png"
PHASE_COLOURS = {
    "warmup": "tab:gray",
    "peak": "tab:green",
    "overload": "tab:red",
    "drain": "tab:blue",
}


def fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, float):
        text = f"{value:,.{digits}f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return text + unit


def table(headers: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def targets_of(scenario: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = scenario.get("targets", {})
    return [(name, found[name]) for name in TARGET_ORDER if name in found]


def points(scenario: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return list(scenario.get("targets", {}).get(name, {}).get("points", []))


def checks_text(point: dict[str, Any]) -> str:
    checks = point.get("checks")
    if not checks:
        return "\u2013"
    parts = [
        f"lost {fmt(checks.get('lost', 0))}",
        f"dup {fmt(checks.get('duplicated', 0))}",
        f"undelivered {fmt(checks.get('undelivered', 0))}",
    ]
    if checks.get("streams_with_id_errors"):
        parts.append(f"id errors on {fmt(checks['streams_with_id_errors'])} streams")
    return ", ".join(parts)


def status_lines(scenario: dict[str, Any]) -> list[str]:
    lines = []
    for name, result in targets_of(scenario):
        if result.get("status") != "ok":
            lines.append(f"- **{SHORT[name]}: {result['status']}**: {result.get('reason', '')}")
        elif "largest_held" in result:
            held = result["largest_held"]
            last = result["points"][-1] if result["points"] else {}
            why = last.get("reason", "") if not last.get("held", True) else ""
            lines.append(
                f"- {SHORT[name]}: largest load held {fmt(held)} streams"
                + (f"; next step: {why}" if why else "")
            )
    return lines + ([""] if lines else [])


# -- sections --------------------------------------------------------------------------------


def _source(results: dict[str, Any]) -> str:
    source = results.get("source") or {}
    if not source:
        return "not recorded"
    modified = source.get("src_modified") or []
    return f"commit {source.get('commit')}" + (
        f" with {len(modified)} files under src/ modified" if modified else " (src/ clean)"
    )


def machine_section(results: dict[str, Any]) -> list[str]:
    machine = results.get("machine", {})
    fd = results.get("fd_limit", {})
    lines = ["## The machine", ""]
    lines += table(
        ["", ""],
        [
            ["cores", f"{machine.get('cores')} ({machine.get('cpu_model', '')})"],
            ["memory", f"{machine.get('memory_gib')} GiB"],
            ["OS, kernel", f"{machine.get('os')}, Linux {machine.get('kernel')}"],
            ["Python", str(machine.get("python"))],
            ["ephemeral ports", " \u2013 ".join(machine.get("ip_local_port_range", []))],
            ["somaxconn", fmt(machine.get("somaxconn"))],
            ["fd limit per process", f"{fmt(fd.get('now'))} (nr_open {fmt(fd.get('nr_open'))})"],
        ],
    )
    if fd.get("note"):
        lines += [f"The harness tried to raise its fd limit: {fd['note']}.", ""]
    unavailable = results.get("unavailable") or {}
    for name, reason in unavailable.items():
        lines += [f"**{SHORT.get(name, name)} could not run**: {reason}", ""]
    return lines


def budget_section(results: dict[str, Any]) -> list[str]:
    scenarios = results.get("scenarios", {})
    rows = []
    idle = scenarios.get("idle", {})
    ss_idle = points(idle, "ssegate")
    if ss_idle:
        biggest = max(ss_idle, key=lambda p: p["streams"])
        workers = biggest.get("workers", 1)
        rss = [p["server"]["rss_per_stream_kib"] for p in ss_idle if p.get("server")]
        rows.append(
            [
                "50,000 streams per worker",
                f"{fmt(biggest['streams'])} open in "
                f"{fmt((biggest.get('open') or {}).get('seconds'), 2)} s"
                f" on {workers} worker(s)",
                "no: the fd hard limit (20,000) caps a process here"
                if workers > 1
                else ("yes" if biggest["streams"] >= BUDGET_STREAMS else "not measured"),
            ]
        )
        worst = max(rss) if rss else None
        rows.append(
            [
                f"≤ {BUDGET_RSS_KIB:g} KiB RSS per idle stream",
                f"{fmt(worst, 2)} KiB (worst of {', '.join(fmt(p['streams']) for p in ss_idle)})",
                _verdict(worst is not None and worst <= BUDGET_RSS_KIB),
            ]
        )
    fan = scenarios.get("fanout", {})
    ss_fan = {(p["streams"], p["rate"]): p for p in points(fan, "ssegate") if "server" in p}
    nchan_fan = {(p["streams"], p["rate"]): p for p in points(fan, "nchan") if "server" in p}
    cpu_values = [
        (key, p["server"].get("cpu_us_per_delivery"))
        for key, p in ss_fan.items()
        if p["server"].get("cpu_us_per_delivery")
    ]
    if cpu_values:
        best = min(cpu_values, key=lambda item: item[1])
        worst = max(cpu_values, key=lambda item: item[1])
        met = sum(1 for _, value in cpu_values if value <= BUDGET_CPU_US)
        rows.append(
            [
                f"\u2264 {BUDGET_CPU_US:g} \u00b5s server CPU per delivery (fanout)",
                f"{fmt(best[1], 2)} \u00b5s at {fmt(best[0][0])}\u00d7{fmt(best[0][1], 0)}/s; "
                f"{fmt(worst[1], 2)} \u00b5s at {fmt(worst[0][0])}\u00d7{fmt(worst[0][1], 0)}/s",
                _count(met, len(cpu_values)),
            ]
        )
    at = ss_fan.get((10_000, 100.0))
    if at:
        p99 = at["latency_ms"].get("p99")
        rows.append(
            [
                f"p99 ≤ {BUDGET_P99_MS:g} ms at 10,000 streams \u00d7 100 records/s",
                f"p99 {fmt(p99, 1)} ms (p50 {fmt(at['latency_ms'].get('p50'), 1)}, "
                f"Kafka's own p99 {fmt((at.get('kafka_latency_ms') or {}).get('p99'), 1)})",
                _verdict(p99 is not None and p99 <= BUDGET_P99_MS),
            ]
        )
    peer_load = fan.get("peer_load")
    if peer_load:
        key = (peer_load[0], float(peer_load[1]))
        peer_point = next(
            (
                p
                for p in points(fan, "python_stack")
                if (p["streams"], p["rate"]) == key and "server" in p
            ),
            None,
        )
        ss_point = ss_fan.get(key)
        if peer_point and ss_point:
            ratio = _per_cpu(ss_point) / max(_per_cpu(peer_point), 1e-9)
            rows.append(
                [
                    f"≥ {BUDGET_PEER_RATIO:g}\u00d7 the Python stack's deliveries per CPU-second",
                    f"{ratio:,.1f}\u00d7 at {fmt(key[0])} streams \u00d7 {fmt(key[1], 0)}/s "
                    f"(the largest load it held)",
                    _verdict(ratio >= BUDGET_PEER_RATIO),
                ]
            )
    shared = sorted(set(ss_fan) & set(nchan_fan))
    if shared:
        cells = []
        met = 0
        for key in shared:
            mine = ss_fan[key]["server"].get("cpu_us_per_delivery")
            theirs = nchan_fan[key]["server"].get("cpu_us_per_delivery")
            if mine and theirs:
                cells.append(
                    f"{fmt(mine, 2)} vs {fmt(theirs, 2)} at {fmt(key[0])}\u00d7{fmt(key[1], 0)}"
                )
                met += mine <= theirs
        rows.append(
            [
                "no more CPU per delivery than nchan",
                "; ".join(cells) + " (\u00b5s)",
                _count(met, len(cells)),
            ]
        )
    lines = ["## Against the budget", ""]
    lines += ["DESIGN.md §7 and issue 5, per worker; figures from the tables below.", ""]
    lines += table(["budget", "measured", "met"], rows)
    return lines


def _verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _count(met: int, total: int) -> str:
    """A verdict over several loads: yes, no, or at how many of them."""
    if met == total:
        return "yes"
    return "**no**" if met == 0 else f"at {met} of {total} loads"


def _per_cpu(point: dict[str, Any]) -> float:
    """Deliveries per server CPU-second."""
    cpu_us = point["server"].get("cpu_us_per_delivery")
    return 1e6 / cpu_us if cpu_us else 0.0


def idle_section(scenario: dict[str, Any]) -> list[str]:
    lines = ["## idle", "", scenario.get("description", ""), ""]
    rows = []
    for name, result in targets_of(scenario):
        for p in result.get("points", []):
            server = p.get("server", {})
            rows.append(
                [
                    SHORT[name],
                    fmt(p["streams"]),
                    fmt(p.get("workers", 1)),
                    f"{fmt((p.get('open') or {}).get('opened'))}",
                    fmt((p.get("open") or {}).get("seconds"), 2),
                    fmt(server.get("rss_per_stream_kib"), 2),
                    f"{fmt(server.get('rss_base_mib'))} → {fmt(server.get('rss_mib'))}",
                    fmt(server.get("cpu_cores"), 3),
                    "yes" if p.get("held") else "**no**",
                ]
            )
    lines += table(
        [
            "target",
            "streams",
            "processes",
            "opened",
            "open time s",
            "RSS KiB/stream",
            "RSS MiB before → after",
            "idle CPU cores",
            "held",
        ],
        rows,
    )
    return lines + status_lines(scenario)


def load_rows(scenario: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, result in targets_of(scenario):
        for p in result.get("points", []):
            server = p.get("server", {})
            latency = p.get("latency_ms") or {}
            kafka = p.get("kafka_latency_ms") or {}
            rows.append(
                [
                    SHORT[name],
                    fmt(p["streams"]),
                    fmt(p.get("rate"), 0),
                    fmt(p.get("produced_per_s"), 0),
                    fmt(p.get("deliveries_per_s"), 0),
                    fmt(server.get("cpu_cores"), 2),
                    fmt(server.get("cpu_us_per_delivery"), 2),
                    f"{fmt(latency.get('p50'), 1)} / {fmt(latency.get('p99'), 1)} / "
                    f"{fmt(latency.get('max'), 0)}",
                    fmt(kafka.get("p99"), 1) if kafka else "\u2013",
                    fmt(server.get("rss_mib"), 0),
                    fmt((p.get("client") or {}).get("cpu_cores"), 2),
                    fmt(p.get("broker_cpu_cores"), 2),
                    ("yes" if p.get("held") else "**no**")
                    + (f" ({p['reason']})" if p.get("reason") else ""),
                    checks_text(p),
                ]
            )
    return rows


LOAD_HEADERS = [
    "target",
    "streams",
    "records/s",
    "produced/s",
    "deliveries/s",
    "server CPU cores",
    "server µs/delivery",
    "latency ms p50 / p99 / max",
    "Kafka alone p99 ms",
    "RSS MiB",
    "client CPU cores",
    "broker CPU cores",
    "held",
    "checks",
]


def load_section(title: str, scenario: dict[str, Any], intro: list[str]) -> list[str]:
    lines = [f"## {title}", "", scenario.get("description", ""), "", *intro]
    lines += table(LOAD_HEADERS, load_rows(scenario))
    return lines + status_lines(scenario)


def ratio_section(scenario: dict[str, Any]) -> list[str]:
    ss = {(p["streams"], p["rate"]): p for p in points(scenario, "ssegate") if "server" in p}
    rows = []
    for other in ("nchan", "python_stack"):
        for p in points(scenario, other):
            key = (p["streams"], p["rate"])
            mine = ss.get(key)
            if mine is None or "server" not in p or not p["server"].get("cpu_us_per_delivery"):
                continue
            theirs_cpu = p["server"]["cpu_us_per_delivery"]
            my_cpu = mine["server"].get("cpu_us_per_delivery")
            both = "yes" if mine.get("held") and p.get("held") else "**no**"
            rows.append(
                [
                    f"ssegate / {SHORT[other]}",
                    f"{fmt(key[0])} \u00d7 {fmt(key[1], 0)}/s",
                    both,
                    f"{theirs_cpu / my_cpu:,.2f}\u00d7" if my_cpu else "\u2013",
                    f"{(mine['latency_ms'].get('p99') or 0):,.1f} vs "
                    f"{(p['latency_ms'].get('p99') or 0):,.1f}",
                    f"{fmt(mine['server'].get('rss_mib'), 0)} vs "
                    f"{fmt(p['server'].get('rss_mib'), 0)}",
                ]
            )
    if not rows:
        return []
    lines = [
        "Ratios at equal load (deliveries per server CPU-second, ssegate's over the peer's; "
        "where one of them did not hold the load, the ratio compares unequal work):",
        "",
    ]
    headers = ["pair", "load", "both held", "deliveries per CPU-s ratio", "p99 ms", "RSS MiB"]
    return lines + table(headers, rows)


def storm_section(scenario: dict[str, Any]) -> list[str]:
    lines = ["## resume-storm", "", scenario.get("description", ""), ""]
    return lines + guard_ratio(scenario) + storm_table(scenario) + status_lines(scenario)


def guard_ratio(scenario: dict[str, Any]) -> list[str]:
    """The storm with a JWT guard against the same storm without (issue 10: at most 1.5x)."""
    found = dict(targets_of(scenario))
    plain = ((found.get("ssegate") or {}).get("points") or [{}])[0].get("storm") or {}
    guard = ((found.get("ssegate_guard") or {}).get("points") or [{}])[0].get("storm") or {}
    if not plain.get("server_cpu_s") or not guard.get("server_cpu_s"):
        return []
    ratio = guard["server_cpu_s"] / plain["server_cpu_s"]
    return [
        f"With a JWT guard (RS256, a token per stream) this run's storm cost the server "
        f"{fmt(guard['server_cpu_s'], 2)} CPU s against {fmt(plain['server_cpu_s'], 2)} "
        f"without ({ratio:.2f}x). One pair says little: the storm alone costs 3.4 to 10.5 s "
        "from run to run; the guard's own cost per reconnect is measured directly by "
        "`python -m benchmarks.guard_cost` (see the notes above).",
        "",
    ]


def storm_table(
    scenario: dict[str, Any], *, kind: str | None = None, admission: bool = False
) -> list[str]:
    """A table of resume-storm points: every point, or those of `kind`; with `admission`
    also the listen-queue counters, refusals and connect errors (`overload`)."""
    rows = []
    for name, result in targets_of(scenario):
        for p in result.get("points", []):
            if kind is not None and p.get("kind") != kind:
                continue
            storm = p.get("storm") or {}
            row = [
                SHORT[name],
                fmt(p.get("streams")),
                fmt(p.get("rate"), 0),
                fmt(storm.get("reopen_s"), 2),
                fmt(storm.get("caught_up_s"), 2),
                f"{fmt(storm.get('caught_up'))} / {fmt(p.get('streams'))}",
            ]
            if admission:
                row += [
                    _listen(storm.get("listen")),
                    _counts(storm.get("refused")) if storm else "\u2013",
                    _counts(storm.get("connect_errors")) if storm else "\u2013",
                ]
            row += [
                fmt(storm.get("server_cpu_s"), 2),
                checks_text(p),
                "yes" if p.get("held") else f"**no** ({p.get('reason', '')})",
            ]
            rows.append(row)
    if not rows and kind is not None:
        return []  # the scenario ran no point of that kind
    headers = [
        "target",
        "streams",
        "records/s",
        "all reopened after s",
        "all caught up after s",
        "caught up",
    ]
    if admission:
        headers += ["listen overflows / drops", "refused", "connect errors"]
    headers += ["server CPU s (storm)", "checks (whole run)", "held"]
    return table(headers, rows)


def _counts(counts: dict[str, Any] | None) -> str:
    """A counter dict (refusals by status, connect errors by kind): `503: 4, 429: 1`."""
    if counts is None:
        return "\u2013"
    shown = [f"{key}: {fmt(value)}" for key, value in counts.items() if value]
    return ", ".join(shown) or "none"


def _listen(listen: dict[str, Any] | None) -> str:
    """The growth of the kernel's listen-queue counters: overflows / drops."""
    delta = (listen or {}).get("delta")
    if not delta:
        return "\u2013"
    return f"{fmt(delta.get('ListenOverflows'))} / {fmt(delta.get('ListenDrops'))}"


def _delays(delays: dict[str, Any] | None) -> str:
    """The reconnect delays the clients used, by what set them."""
    if not delays:
        return "none"
    parts = []
    for kind, entry in delays.items():
        low, high = entry.get("min_s"), entry.get("max_s")
        spread = (
            f"{fmt(low, 2)} s"
            if low == high
            else f"mean {fmt(entry.get('mean_s'), 2)} s, {fmt(low, 2)}\u2013{fmt(high, 2)} s"
        )
        parts.append(f"`{kind}` {fmt(entry.get('count'))}\u00d7 ({spread})")
    return "; ".join(parts)


def _percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 100:,.0f}%"


def _plural(count: Any, one: str, many: str) -> str:
    return f"{fmt(count)} {one if count == 1 else many}"


def overload_rows(point: dict[str, Any]) -> list[list[str]]:
    """One overload point as rows (what) by columns (peak, overload, drain)."""
    phases = point.get("phases") or {}
    peak = phases.get("peak") or {}
    over = phases.get("overload") or {}
    drain = point.get("drain") or {}
    columns = (peak, over, drain)
    streams = point.get("streams")

    def each(read: Any) -> list[str]:
        return [read(phase) if phase else "\u2013" for phase in columns]

    def latency(phase: dict[str, Any]) -> str:
        got = phase.get("latency_ms")
        if not got:
            return "\u2013"
        return f"{fmt(got.get('p50'), 0)} / {fmt(got.get('p99'), 0)} / {fmt(got.get('max'), 0)}"

    def server(phase: dict[str, Any], key: str, digits: int) -> str:
        return fmt((phase.get("server") or {}).get(key), digits)

    ratio = over.get("ratio_to_peak")
    sustained = over.get("sustained_deliveries_per_s")
    if sustained is not None:
        count = over.get("sustained_samples")
        sustained_text = (
            f"**{fmt(sustained, 0)}** (median of {_plural(count, 'sample', 'samples')} "
            f"over the last {fmt(over.get('sustained_seconds'), 1)} s"
        )
        seconds = over.get("sustained_seconds")
        if count is not None and seconds and count < 0.8 * seconds:
            sustained_text += "; the harness could not sample every second"
        sustained_text += ")"
    else:
        sustained_text = "\u2013"
    verdict = ""
    if ratio is not None:
        verdict = " (met)" if ratio >= OVERLOAD_TARGET_RATIO else " (**missed**)"
    if drain.get("settled"):
        settled = f"in {fmt(drain.get('settled_in_s'), 1)} s"
    elif drain:
        settled = (
            f"**not** within {fmt(drain.get('seconds'), 0)} s: "
            f"{fmt(drain.get('caught_up'))} of {fmt(streams)} caught up, "
            f"{fmt(drain.get('refused_waiting'))} refused and waiting"
        )
    else:
        settled = "\u2013"
    return [
        ["seconds sampled", *each(lambda p: fmt(p.get("seconds"), 1))],
        [
            "records/s asked / produced (median)",
            *each(lambda p: f"{fmt(p.get('rate', 0.0), 0)} / {fmt(p.get('produced_per_s'), 0)}"),
        ],
        [
            "deliveries/s: median of the samples / over the phase",
            *each(
                lambda p: (
                    f"{fmt(p.get('median_deliveries_per_s'), 0)} / "
                    f"{fmt(p.get('deliveries_per_s'), 0)}"
                )
            ),
        ],
        ["sustained deliveries/s", "\u2013", sustained_text, "\u2013"],
        [
            f"ratio to the peak (target \u2265 {OVERLOAD_TARGET_RATIO:.0%})",
            "\u2013",
            _percent(ratio) + verdict,
            "\u2013",
        ],
        [
            f"streams open at the end: kept (fewest sampled), of {fmt(streams)}",
            *each(lambda p: f"{fmt(p.get('open_at_end'))} ({fmt(p.get('min_open'))})"),
        ],
        ["refused, by status", *each(lambda p: _counts(p.get("refused")))],
        ["reconnects", *each(lambda p: fmt(p.get("reconnects")))],
        ["connect errors", *each(lambda p: fmt(p.get("connect_errors")))],
        ["listen overflows / drops (kernel, delta)", *each(lambda p: _listen(p.get("listen")))],
        ["server CPU cores", *each(lambda p: server(p, "cpu_cores", 2))],
        ["server \u00b5s/delivery", *each(lambda p: server(p, "cpu_us_per_delivery", 2))],
        [
            "server RSS MiB at the end / max",
            *each(lambda p: f"{server(p, 'rss_mib', 0)} / {server(p, 'max_rss_mib', 0)}"),
        ],
        ["latency ms p50 / p99 / max", *each(latency)],
        ["client CPU cores", *each(lambda p: fmt(p.get("client_cpu_cores"), 2))],
        ["every stream settled", "\u2013", "\u2013", settled],
    ]


def overload_point_lines(name: str, point: dict[str, Any]) -> list[str]:
    """One target's overload point: the phases table and what spans the whole point."""
    opened = point.get("open") or {}
    checks = point.get("checks") or {}
    lines = [f"**{SHORT.get(name, name)}**", ""]
    if point.get("phases"):
        lines += table(["", "peak", "overload", "drain"], overload_rows(point))
    correct = "yes" if point.get("correct") else "**no**"
    if point.get("reason"):
        correct += f" ({point['reason']})"
    undelivered = ""
    if checks.get("undelivered") and not (point.get("drain") or {}).get("settled"):
        undelivered = " (owed to streams still catching up when the drain's time ran out)"
    lines += [
        f"- opened {fmt(opened.get('opened'))} of {fmt(point.get('streams'))} streams in "
        f"{fmt(opened.get('seconds'), 2)} s (refused: {_counts(opened.get('refused'))}); "
        f"server RSS before the load {fmt(point.get('server_rss_base_mib'), 0)} MiB, "
        f"listen backlog {fmt(point.get('listen_backlog'))}",
        f"- over the whole point: {fmt(checks.get('reconnects'))} reconnects after "
        f"{fmt(checks.get('lost_connections'))} connections the server closed or dropped; "
        f"refused {_counts(point.get('refused'))} "
        f"({fmt(point.get('refused_streams'))} streams ever refused)",
        f"- reconnect delays used: {_delays(point.get('reconnect_delays'))}",
        f"- checks: {checks_text(point)}{undelivered}; refused and not back "
        f"{fmt(checks.get('refused_not_back'))} (missing {fmt(checks.get('undelivered_refused'))}"
        f" events, not losses); no loss, repeat or id error: {correct}",
        "",
    ]
    return lines


def overload_section(scenario: dict[str, Any], images: list[str]) -> list[str]:
    lines = ["## overload", "", scenario.get("description", ""), ""]
    storm = scenario.get("storm") or [None, None]
    kernel = scenario.get("kernel") or {}
    lines += [
        f"{fmt(scenario.get('streams'))} fan-out streams at "
        f"{fmt(scenario.get('peak_rate'), 0)} records/s for {fmt(scenario.get('peak_window_s'), 0)}"
        f" s (the peak), then {fmt(scenario.get('rate'), 0)} records/s for "
        f"{fmt(scenario.get('window_s'), 0)} s (the overload), sampled every second; then the "
        f"producer stops and every stream must catch up within "
        f"{fmt(scenario.get('drain_timeout_s'), 0)} s (the drain). *Sustained*: the median of "
        f"the per-second deliveries of the overload's last "
        f"{fmt(scenario.get('sustained_last_s'), 0)} s; the target is at least "
        f"{OVERLOAD_TARGET_RATIO:.0%} of the peak's median. A stream refused and not admitted "
        "again is counted apart: what it misses is not a loss. Kernel: "
        f"`net.core.somaxconn` {fmt(kernel.get('net.core.somaxconn'))}, "
        f"`net.ipv4.tcp_max_syn_backlog` {fmt(kernel.get('net.ipv4.tcp_max_syn_backlog'))}, "
        f"`net.ipv4.tcp_syncookies` {fmt(kernel.get('net.ipv4.tcp_syncookies'))}; the listen "
        "overflows and drops are the network namespace's (anything else on the machine adds "
        "to them).",
        "",
    ]
    if OVERLOAD_PLOT in images:
        lines += [f"![{OVERLOAD_PLOT}](performance/{OVERLOAD_PLOT})", ""]
    for name, result in targets_of(scenario):
        for point in result.get("points", []):
            if point.get("kind") == "overload":
                lines += overload_point_lines(name, point)
    storm_rows = storm_table(scenario, kind="storm", admission=True)
    if storm_rows:
        lines += [
            f"The resume storm: {fmt(storm[0])} streams under {fmt(storm[1], 0)} records/s (a "
            "load every server sustains) drop at once and reconnect with their last id.",
            "",
        ]
        lines += storm_rows
    return lines + status_lines(scenario)


def catchup_section(scenario: dict[str, Any]) -> list[str]:
    lines = ["## catch-up", "", scenario.get("description", ""), ""]
    if scenario.get("fill_s") is not None:
        lines += [
            f"Filling the topic with {fmt(scenario.get('records'))} records took "
            f"{scenario['fill_s']} s.",
            "",
        ]
    rows = []
    for name, result in targets_of(scenario):
        for p in result.get("points", []):
            server = p.get("server", {})
            rows.append(
                [
                    SHORT[name],
                    fmt(p.get("records")),
                    fmt(p.get("received")),
                    fmt(p.get("seconds"), 2),
                    fmt(p.get("records_per_s"), 0),
                    fmt(server.get("cpu_us_per_record"), 2),
                    fmt(server.get("rss_mib"), 0),
                    checks_text(p),
                    "yes" if p.get("held") else f"**no** ({p.get('reason', '')})",
                ]
            )
    lines += table(
        [
            "target",
            "records",
            "received",
            "seconds",
            "records/s",
            "server µs/record",
            "RSS MiB",
            "checks",
            "complete",
        ],
        rows,
    )
    return lines + status_lines(scenario)


def profile_section(results: dict[str, Any]) -> list[str]:
    profile = (results.get("scenarios", {}).get("fanout") or {}).get("profile")
    if not profile:
        return []
    lines = ["## Where ssegate's CPU goes in fanout (py-spy)", ""]
    if "error" in profile:
        return [*lines, f"The profile could not be taken: {profile['error']}", ""]
    load = profile.get("load", ["?", "?"])
    lines += [
        f"`py-spy {profile.get('command', '').replace(str(ROOT) + '/', '')}` on the gateway "
        "while it served "
        f"{fmt(load[0])} streams \u00d7 {fmt(load[1], 0)} records/s, after the measurement window "
        f"(so the profiler does not weigh on the figures above): {fmt(profile.get('samples'))} "
        f"samples of non-idle threads. Raw collapsed stacks: "
        f"`benchmarks/results/{profile.get('file', '')}`.",
        "",
        "Top functions by self time (the frame on top of the stack):",
        "",
    ]
    lines += table(
        ["frame", "samples", "%"],
        [[f"`{r['frame']}`", fmt(r["samples"]), fmt(r["percent"], 1)] for r in profile["self"]],
    )
    lines += ["Top functions by inclusive time (anywhere on the stack):", ""]
    lines += table(
        ["frame", "samples", "%"],
        [
            [f"`{r['frame']}`", fmt(r["samples"]), fmt(r["percent"], 1)]
            for r in profile["inclusive"]
        ],
    )
    if profile.get("threads"):
        lines += ["By thread:", ""]
        lines += table(
            ["thread", "samples", "%"],
            [
                [f"`{r['frame']}`", fmt(r["samples"]), fmt(r["percent"], 1)]
                for r in profile["threads"]
            ],
        )
    return lines


# -- plots -----------------------------------------------------------------------------------


def _save(
    fig: Any,
    ax: Any,
    name: str,
    *,
    legend_size: int,
    directory: Path = PLOTS,
    legend: dict[str, Any] | None = None,
) -> str:
    """Finish a plot the same way as the others, write it under `directory`, return its
    name. `legend`: where the legend goes (`ax.legend`'s arguments), if not the default."""
    import matplotlib.pyplot as plt

    ax.legend(fontsize=legend_size, **(legend or {}))
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(directory / name, dpi=110)
    plt.close(fig)
    return name


def plots(results: dict[str, Any], directory: Path = PLOTS) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    scenarios = results.get("scenarios", {})
    fan = scenarios.get("fanout", {})
    made = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in TARGET_ORDER:
        data = sorted(
            (
                (p["streams"] * p["rate"], p["latency_ms"], bool(p.get("held")))
                for p in points(fan, name)
                if p.get("latency_ms", {}).get("p99") is not None
            ),
            key=lambda item: item[0],
        )
        for index, (offered, latency, held) in enumerate(data):
            face = COLOURS[name] if held else "none"
            first = index == 0
            ax.scatter(
                [offered],
                [latency["p99"]],
                marker="s",
                facecolors=face,
                edgecolors=COLOURS[name],
                label=f"{SHORT[name]} p99" if first else None,
            )
            ax.scatter(
                [offered],
                [latency["p50"]],
                marker="o",
                facecolors=face,
                edgecolors=COLOURS[name],
                alpha=0.6,
                label=f"{SHORT[name]} p50" if first else None,
            )
    ax.axhline(BUDGET_P99_MS, color="grey", linestyle=":", label="budget p99 25 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load: streams \u00d7 records/s (deliveries owed per second)")
    ax.set_ylabel("produce-to-receive latency, ms")
    ax.set_title("Latency vs load (fanout); hollow: the load did not hold")
    made.append(_save(fig, ax, "latency-vs-load.png", legend_size=7, directory=directory))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in TARGET_ORDER:
        for rate, marker in ((100.0, "o-"), (10.0, "^:"), (1000.0, "s--"), (50.0, "o-")):
            cpu = sorted(
                (p["streams"], p["server"]["cpu_us_per_delivery"])
                for p in points(fan, name)
                if p.get("rate") == rate and (p.get("server") or {}).get("cpu_us_per_delivery")
            )
            if cpu:
                ax.plot(
                    [d[0] for d in cpu],
                    [d[1] for d in cpu],
                    marker,
                    color=COLOURS[name],
                    label=f"{SHORT[name]} {rate:g}/s",
                )
    ax.axhline(BUDGET_CPU_US, color="grey", linestyle=":", label="budget 1 µs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("streams")
    ax.set_ylabel("server CPU per delivery, µs")
    ax.set_title("CPU per delivery vs streams (fanout)")
    made.append(
        _save(fig, ax, "cpu-per-delivery-vs-streams.png", legend_size=7, directory=directory)
    )

    fig, ax = plt.subplots(figsize=(7, 4.5))
    idle = scenarios.get("idle", {})
    for name in TARGET_ORDER:
        rss = sorted(
            (p["streams"], p["server"]["rss_mib"])
            for p in points(idle, name)
            if (p.get("server") or {}).get("rss_mib") is not None and p.get("held")
        )
        if rss:
            ax.plot(
                [d[0] for d in rss],
                [d[1] for d in rss],
                "o-",
                color=COLOURS[name],
                label=SHORT[name],
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle streams")
    ax.set_ylabel("server RSS (process tree), MiB")
    ax.set_title("RSS vs streams (idle)")
    made.append(_save(fig, ax, "rss-vs-streams.png", legend_size=8, directory=directory))

    overload = overload_plot(scenarios.get("overload", {}), directory)
    if overload:
        made.append(overload)
    return made


def _phase_spans(samples: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """(phase, start, end) of each run of samples of one phase; a sample covers the time
    since the previous one."""
    spans: list[tuple[str, float, float]] = []
    previous = 0.0
    for sample in samples:
        phase, t = str(sample.get("phase")), float(sample.get("t", previous))
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], t)
        else:
            spans.append((phase, previous, t))
        previous = t
    return spans


def overload_plot(scenario: dict[str, Any], directory: Path) -> str | None:
    """Deliveries/s and streams open over time in the overload point, phases shaded."""
    import matplotlib.pyplot as plt

    runs = [
        (name, point)
        for name in TARGET_ORDER
        for point in points(scenario, name)
        if point.get("kind") == "overload" and point.get("samples")
    ]
    if not runs:
        return None
    from matplotlib.ticker import StrMethodFormatter

    fig, ax = plt.subplots(figsize=(10, 4.5))
    opened = ax.twinx()
    shaded: set[str] = set()
    for phase, start, end in _phase_spans(runs[0][1]["samples"]):
        ax.axvspan(
            start,
            end,
            color=PHASE_COLOURS.get(phase, "tab:gray"),
            alpha=0.12,
            linewidth=0,
            label=phase if phase not in shaded else None,
        )
        shaded.add(phase)
    top = 0
    for name, point in runs:
        samples = point["samples"]
        times = [0.0] + [s.get("t", 0.0) for s in samples]
        rates = [s.get("deliveries_per_s") or 0.0 for s in samples]
        ax.plot(
            times,
            [rates[0], *rates],
            drawstyle="steps-pre",
            color=COLOURS[name],
            label=f"{SHORT[name]} deliveries/s",
        )
        ax.plot(times[1:], rates, "o", color=COLOURS[name], markersize=3)
        peak = ((point.get("phases") or {}).get("peak") or {}).get("median_deliveries_per_s")
        if peak:
            ax.axhline(
                OVERLOAD_TARGET_RATIO * peak,
                color=COLOURS[name],
                linestyle=":",
                label=f"{SHORT[name]} {OVERLOAD_TARGET_RATIO:.0%} of the peak's median",
            )
        opens = [s.get("open") or 0 for s in samples]
        opened.plot(times[1:], opens, "--", color=COLOURS[name], alpha=0.7)
        # the twin axis has no legend of its own: a proxy on the main one
        ax.plot([], [], "--", color=COLOURS[name], alpha=0.7, label=f"{SHORT[name]} streams open")
        top = max(top, point.get("streams") or 0, *opens)
    opened.set_ylim(0, top * 1.05 if top else 1)
    opened.set_ylabel("streams open (dashed)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("seconds since the producer started (each sample: the interval up to it)")
    ax.set_ylabel("deliveries/s (clients' count)")
    ax.set_title("overload: deliveries/s over time, phases shaded")
    outside = {"loc": "upper left", "bbox_to_anchor": (1.1, 1.0)}
    return _save(fig, ax, OVERLOAD_PLOT, legend_size=7, directory=directory, legend=outside)


# -- the page --------------------------------------------------------------------------------


def render(results: dict[str, Any], images: list[str], notes: str) -> str:
    scenarios = results.get("scenarios", {})
    lines = [
        "# Performance",
        "",
        "<!-- Generated by `make bench-report` from benchmarks/results/latest.json and "
        "benchmarks/report_notes.md; edit those, not this page. -->",
        "",
        f"Run: `{results.get('command', '')}` ({results.get('profile')} sizes), started "
        f"{results.get('updated')}, source {_source(results)}. Durations (s): "
        + ", ".join(f"{k} {v}" for k, v in (results.get("durations_s") or {}).items())
        + ".",
        "",
        "ssegate and its peers ran on the same machine, in the same run, against the same load "
        "generator (`benchmarks/`, described in `benchmarks/README.md`): the Python stack a "
        "developer would write today (Starlette + sse-starlette on uvicorn, one aiokafka "
        "consumer per client) and nchan (nginx). Client, server, producer and Kafka broker "
        "share the 2 cores; every figure says whose CPU it is.",
        "",
    ]
    lines += machine_section(results)
    lines += budget_section(results)
    if notes.strip():
        lines += [notes.strip(), ""]
    for image in images:
        if image != OVERLOAD_PLOT:  # shown in its own section
            lines += [f"![{image}](performance/{image})", ""]
    if "idle" in scenarios:
        lines += idle_section(scenarios["idle"])
    if "fanout" in scenarios:
        fan = scenarios["fanout"]
        intro = []
        if fan.get("peer_load"):
            intro = [
                f"The Python stack held at most {fmt(fan['peer_load'][0])} streams at "
                f"{fmt(fan['peer_load'][1], 0)} records/s; ssegate and nchan also ran at "
                "that load.",
                "",
            ]
        lines += load_section("fanout", fan, intro)
        lines += ratio_section(fan)
    if "filtered" in scenarios:
        lines += load_section("filtered", scenarios["filtered"], [])
        lines += ratio_section(scenarios["filtered"])
    if "resume-storm" in scenarios:
        lines += storm_section(scenarios["resume-storm"])
    if "catch-up" in scenarios:
        lines += catchup_section(scenarios["catch-up"])
    if "workers" in scenarios:
        lines += load_section("workers", scenarios["workers"], [])
        lines += ratio_section(scenarios["workers"])
    if "overload" in scenarios:
        lines += overload_section(scenarios["overload"], images)
    if "tls-http2" in scenarios:
        from benchmarks.report_tls import tls_section  # it imports this module's helpers

        lines += tls_section(scenarios["tls-http2"])
    if "schemas" in scenarios:
        from benchmarks.report_schemas import schemas_section  # it imports this module's helpers

        lines += schemas_section(scenarios["schemas"])
    lines += profile_section(results)
    lines += [
        "## How to reproduce",
        "",
        "```sh",
        "make bench                      # every scenario, full size (about 32 minutes here)",
        "make bench SCENARIO=fanout      # one scenario; the others stay in latest.json",
        "make bench-quick                # every scenario, small, ssegate and both peers (CI)",
        "make bench-report               # this page and its plots from latest.json",
        "```",
        "",
        "Column meanings: *deliveries/s* are events the clients counted inside the measurement "
        "window; *server CPU* is user+system of the server's process tree (psutil) over that "
        "window; *latency* is the clients' wall clock at receipt minus the producer's wall "
        "clock in the record, for every event on up to 500 sampled streams; *Kafka alone* is "
        "the same measured by a plain librdkafka consumer on the same topic at the same time; "
        "*held* means every stream stayed open and at least 90 % of the owed events arrived in "
        "the window; *checks* count, over the whole run, per-key sequence gaps (lost), repeats "
        "(dup) and records never delivered by the end (undelivered).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--page", type=Path, default=PAGE)
    parser.add_argument(
        "--plots",
        type=Path,
        default=None,
        help="where the plots go (default: performance/ beside the page, as it links them)",
    )
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    directory = args.plots or args.page.parent / PLOTS.name
    images = [] if args.no_plots else plots(results, directory)
    notes = NOTES.read_text() if NOTES.exists() else ""
    args.page.parent.mkdir(parents=True, exist_ok=True)
    args.page.write_text(render(results, images, notes))
    print(f"wrote {args.page} and {len(images)} plots in {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
