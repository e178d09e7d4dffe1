"""The `schemas` section of docs/performance.md (see report.py for the page)."""

from __future__ import annotations

from typing import Any

from benchmarks.report import SHORT, checks_text, fmt, status_lines, table, targets_of

LOADS = {
    "keyed": "keyed",
    "fanout": "fan-out",
    "catch-up": "catch-up",
}


def _load(row: dict[str, Any], scenario: dict[str, Any]) -> str:
    kind = row.get("kind", "")
    if kind == "keyed":
        return f"keyed: {fmt(row['streams'])} streams over {fmt(scenario.get('keys'))} keys"
    if kind == "fanout":
        return f"fan-out: {fmt(row['streams'])} streams, every record to each"
    if kind == "catch-up":
        return f"catch-up: 1 stream replays {fmt(row.get('records'))} records"
    return str(kind)


def _range(row: dict[str, Any]) -> str:
    span = row.get("model_cost_range")
    if not span or row.get("rounds", 1) < 2:
        return ""
    return f" ({fmt(span[0], 1)} to {fmt(span[1], 1)})"


def _goal(row: dict[str, Any], goal: float) -> str:
    cost = row.get("model_cost_us_per_record")
    if cost is None:
        return "\u2013"
    verdict = "met" if cost <= goal else "**not met**"
    notes = []
    span = row.get("model_cost_range")
    if span and span[1] - span[0] > goal:
        notes.append("the rounds differ by more than the goal")
    if not row.get("all_held"):
        notes.append("a run did not hold its load")
    return verdict + (f" ({'; '.join(notes)})" if notes else "")


def _per_delivery(row: dict[str, Any], alone: float | None) -> str:
    """What converting once per delivery, not once per record, would cost per record."""
    deliveries = row.get("deliveries_per_record")
    if alone is None or not deliveries:
        return "\u2013"
    return fmt(alone * float(deliveries), 1)


def cost_table(scenario: dict[str, Any]) -> list[str]:
    goal = float(scenario.get("goal_us_per_record", 10.0))
    alone = (scenario.get("in_process") or {}).get("best_us_per_record")
    rows = []
    for row in scenario.get("model_cost", []):
        rows.append(
            [
                _load(row, scenario),
                fmt(row.get("deliveries_per_record"), 0),
                fmt(row.get("rate"), 0) if row.get("rate") else "as fast as it goes",
                fmt(row.get("avro_us_per_record"), 1),
                fmt(row.get("json_us_per_record"), 1),
                f"**{fmt(row.get('model_cost_us_per_record'), 1)}**{_range(row)}",
                _per_delivery(row, alone),
                fmt(row.get("rounds")),
                _goal(row, goal),
            ]
        )
    if not rows:
        return []
    return table(
        [
            "load",
            "deliveries per record",
            "records/s",
            "Avro: server µs/record",
            "JSON: server µs/record",
            "model's cost µs/record (range over rounds)",
            "µs/record if converted per delivery",
            "rounds",
            f"goal ≤ {fmt(goal, 0)} µs",
        ],
        rows,
    )


def in_process_lines(scenario: dict[str, Any]) -> list[str]:
    alone = scenario.get("in_process")
    if not alone:
        return []
    if "error" in alone:
        return [f"The model alone could not be measured: {alone['error']}", ""]
    return [
        f"The model alone (`python -m benchmarks.model_cost`: the decoder the inline model "
        f"compiles, on these records, in one process): **{fmt(alone['best_us_per_record'], 2)} "
        f"µs per record** (best of {fmt(alone['rounds'])} rounds of {fmt(alone['records'])}; "
        f"median {fmt(alone['median_us_per_record'], 2)} µs), {fmt(alone['avro_bytes'])}-byte "
        f"Avro to {fmt(alone['json_bytes'])}-byte JSON. The JSON target does none of this work, "
        "so this is what the differences below estimate under load.",
        "",
    ]


def stream_rows(scenario: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, result in targets_of(scenario):
        for p in result.get("points", []):
            if p.get("kind") not in ("keyed", "fanout"):
                continue
            server = p.get("server") or {}
            latency = p.get("latency_ms") or {}
            kafka = p.get("kafka_latency_ms") or {}
            rows.append(
                [
                    SHORT[name],
                    LOADS[p["kind"]],
                    fmt(p.get("round", 0) + 1),
                    fmt(p.get("streams")),
                    fmt(p.get("produced_per_s"), 0),
                    fmt(p.get("deliveries_per_s"), 0),
                    fmt(server.get("cpu_cores"), 3),
                    fmt(server.get("cpu_us_per_record"), 1),
                    fmt(server.get("cpu_us_per_delivery"), 2),
                    f"{fmt(latency.get('p50'), 1)} / {fmt(latency.get('p99'), 1)} / "
                    f"{fmt(latency.get('max'), 0)}",
                    fmt(kafka.get("p99"), 1) if kafka else "\u2013",
                    ("yes" if p.get("held") else "**no**")
                    + (f" ({p['reason']})" if p.get("reason") else ""),
                    checks_text(p),
                ]
            )
    return rows


def catchup_rows(scenario: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, result in targets_of(scenario):
        for p in result.get("points", []):
            if p.get("kind") != "catch-up":
                continue
            server = p.get("server") or {}
            rows.append(
                [
                    SHORT[name],
                    fmt(p.get("records")),
                    fmt(p.get("received")),
                    fmt(p.get("seconds"), 2),
                    fmt(p.get("records_per_s"), 0),
                    fmt(server.get("cpu_s"), 2),
                    fmt(server.get("cpu_us_per_record"), 2),
                    fmt(server.get("rss_mib"), 0),
                    fmt(p.get("fill_s"), 1),
                    checks_text(p),
                    "yes" if p.get("held") else f"**no** ({p.get('reason', '')})",
                ]
            )
    return rows


def schemas_section(scenario: dict[str, Any]) -> list[str]:
    goal = float(scenario.get("goal_us_per_record", 10.0))
    lines = ["## schemas", "", scenario.get("description", ""), ""]
    lines += [
        f"Goal (issue 11): Avro to JSON costs at most {fmt(goal, 0)} µs of server CPU per "
        "record on one core, whatever the number of streams: ssegate converts each record "
        "once, before the fan-out. Server CPU per record is the server's CPU over the window "
        "divided by the records produced in it, nothing subtracted; the model's cost is the "
        "Avro target's figure minus the JSON target's (the same records as JSON, no model). "
        f"Stream points: {fmt(scenario.get('rate'), 0)} records/s, windows of "
        f"{fmt(scenario.get('window_s'), 0)} s, {fmt(scenario.get('rounds'))} rounds with the "
        "two targets taking turns; the cost is the median of the rounds' differences.",
        "",
        "*Keyed* points hold all their streams open on the topic, each naming one key, so a "
        "record goes to streams/keys of them: every record to each of 10,000 streams at "
        "1,000 records/s would be ten million deliveries per second, which no target holds "
        "on this machine (`fanout`'s 10,000 \u00d7 1,000/s point), and the CPU those deliveries "
        "take would bury a cost of a few µs per record. The *fan-out* point sends every record "
        "to every stream. At these rates the model's cost is a small share of the server's "
        "CPU per record, so read the range: the catch-up (a million records, sustained) and "
        "the model alone are the precise figures; the stream points show whether the cost "
        "changes with the streams. *If converted per delivery* is what the model would add "
        "per record were each record converted for every stream it reaches, rather than once "
        "(the model alone \u00d7 deliveries per record): the cost the stream points rule out.",
        "",
    ]
    lines += in_process_lines(scenario)
    lines += cost_table(scenario)
    streams = stream_rows(scenario)
    if streams:
        lines += ["Every stream point, per round:", ""]
        lines += table(
            [
                "target",
                "load",
                "round",
                "streams",
                "produced/s",
                "deliveries/s",
                "server CPU cores",
                "server µs/record",
                "server µs/delivery",
                "latency ms p50 / p99 / max",
                "Kafka alone p99 ms",
                "held",
                "checks",
            ],
            streams,
        )
    replays = catchup_rows(scenario)
    if replays:
        lines += [
            f"Catch-up of {fmt(scenario.get('catchup_records'))} records (the ring holds the "
            "newest tenth; the rest come through the catch-up reader):",
            "",
        ]
        lines += table(
            [
                "target",
                "records",
                "received",
                "seconds",
                "records/s",
                "server CPU s",
                "server µs/record",
                "RSS MiB",
                "fill s",
                "checks",
                "complete",
            ],
            replays,
        )
    return lines + status_lines(scenario)
