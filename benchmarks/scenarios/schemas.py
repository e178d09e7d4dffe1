"""`schemas`: what a route's Avro model costs per record (issue 11, "Performance").

Two ssegate targets, alike but for their records: `ssegate_avro` streams a topic of Avro
records (records.py: the bare Avro binary of the fields the JSON records have, same values,
same padding) through an inline Avro model (docs/schemas.md: subject `<topic>-value`,
framing `none`), so each record is decoded, validated and encoded as JSON once, before the
fan-out; `ssegate_json` streams the same records written as JSON, with no model. The
clients see the same 256-byte JSON from both, so the sequence checks, ids and latency work
unchanged. The figure is server CPU per record produced (nothing subtracted); the model's
cost is the Avro target's figure minus the JSON target's at the same point.

1. Keyed: N streams over K keys (stream i names key i mod K on a key-filter route), R
   records/s spread over the keys. All N streams are open on the topic while each record
   goes to N/K of them, a delivery rate this machine carries, so the server's CPU goes to
   records more than to deliveries. Two stream counts at the same records/s: the model's
   cost per record should not grow with the streams. (At 1,000 records/s the model's few
   µs per record are a few thousandths of a core, beside a server CPU per record of some
   hundred µs that moves with the machine's load: the range over rounds says how far the
   difference can be trusted.)
2. Fan-out: N streams each get every record at R records/s. (Every record to each of
   10,000 streams at 1,000 records/s is ten million deliveries per second: no target holds
   that on 2 cores, `fanout`'s own point delivers about an eighth of it. Here the model's
   cost is a small share of the CPU the deliveries take.)
3. Catch-up: one stream replays a topic filled beforehand with C records; the ring holds
   the newest tenth, so most are read by the catch-up reader (catch_up.py): records/s and
   server CPU per record.
4. In process: the model's decoder alone on the same records (model_cost.py), the figure the
   differences above estimate, without a server or the noise of a shared machine.

The two targets take turns point by point (which goes first alternates by round), and each
stream point runs `rounds` times: the model's cost is the median of the rounds'
differences, with their range.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from functools import partial
from typing import Any

from benchmarks import model_cost
from benchmarks.producers.kafka import produce_bulk
from benchmarks.records import key_names
from benchmarks.scenarios.catch_up import replay
from benchmarks.scenarios.common import (
    RunContext,
    guarded,
    not_run,
    target_result,
    topic_name,
)
from benchmarks.scenarios.load import LoadSpec, run_load
from benchmarks.targets.base import Feed
from benchmarks.targets.ssegate import Ssegate
from ssegate.devkafka.topics import create_topic

DESCRIPTION = (
    "The same 256-byte records as Avro (an inline Avro model: decode, validate, encode as "
    "JSON) and as JSON (no model), on two ssegate targets taking turns: server CPU per "
    "record produced, and the difference, the model's cost."
)
GOAL_US_PER_RECORD = 10.0  # issue 11: Avro to JSON on one core, whatever the streams
PARTITIONS = 3
JSON_NAME = "ssegate_json"
JSON_LABEL = "ssegate, JSON topic, no model"


def make_targets(run: RunContext, ring_records: int = 100_000) -> list[Ssegate]:
    """The Avro target and the JSON one (a plain ssegate under its own name)."""
    plain = Ssegate(run.context, ring_records=ring_records)
    plain.name, plain.label = JSON_NAME, JSON_LABEL
    return [Ssegate(run.context, ring_records=ring_records, avro=True), plain]


def stream_spec(run: RunContext, kind: str, streams: int) -> LoadSpec:
    """A point's load, on a fresh topic (each target has its own: the JSON target must not
    read the Avro records)."""
    sizes = run.sizes
    keyed = kind == "keyed"
    return LoadSpec(
        streams=streams,
        rate=sizes.schemas.rate,
        feed=Feed(topic_name("schemas"), filtered=keyed, partitions=PARTITIONS),
        keys=key_names(sizes.schemas.keys if keyed else PARTITIONS),
        pin_partitions=not keyed,  # keyed: by key hash, as in `filtered`
        window=sizes.schemas.window,
        warmup=sizes.warmup,
        open_timeout=sizes.open_timeout,
        drain_timeout=sizes.drain_timeout,
        processes=run.processes_for(streams),
    )


def stream_point(run: RunContext, target: Ssegate, kind: str, streams: int) -> dict[str, Any]:
    spec = stream_spec(run, kind, streams)
    point = {"kind": kind, **run_load(target, spec)}
    server = point.get("server") or {}
    produced = point.get("produced_per_s")
    if "cpu_cores" in server and produced:
        server["cpu_us_per_record"] = round(server["cpu_cores"] / produced * 1e6, 3)
    if kind == "keyed":
        point["deliveries_per_record"] = round(spec.streams / len(spec.keys), 2)
    else:
        point["deliveries_per_record"] = spec.streams
    return point


def catchup_point(run: RunContext, target: Ssegate, count: int) -> dict[str, Any]:
    """A fresh topic of `count` records in the target's encoding, then one stream replays it."""
    feed = Feed(topic_name("schemas-catchup"), start="earliest", partitions=PARTITIONS)
    create_topic(run.context.bootstrap, feed.topic, PARTITIONS)
    started = time.monotonic()
    last_seq = produce_bulk(
        run.context.bootstrap, feed.topic, key_names(PARTITIONS), count, target.encoding
    )
    fill_s = round(time.monotonic() - started, 1)
    point = replay(run, target, feed, last_seq)
    return {"kind": "catch-up", "fill_s": fill_s, "ring_records": target.ring_records, **point}


def _us(point: dict[str, Any]) -> float | None:
    value = (point.get("server") or {}).get("cpu_us_per_record")
    return float(value) if value is not None else None


def model_costs(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per load: the Avro target's server µs per record, the JSON one's, and the model's
    cost, each the median over the rounds; the cost is the median of the per-round
    differences (the two runs of a round are next to each other in time), with their range."""
    avro = results["targets"].get("ssegate_avro", {}).get("points", [])
    plain = results["targets"].get(JSON_NAME, {}).get("points", [])

    def load(point: dict[str, Any]) -> tuple[str, int, int]:
        streams = int(point.get("streams", 1))
        return (str(point.get("kind")), streams, int(point.get("records") or 0))

    by_round = {(load(point), point.get("round", 0)): point for point in plain}
    loads: dict[tuple[str, int, int], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for mine in avro:
        theirs = by_round.get((load(mine), mine.get("round", 0)))
        if theirs is not None:
            loads.setdefault(load(mine), []).append((mine, theirs))
    rows = []
    for (kind, streams, records), pairs in loads.items():
        ours = [v for v in (_us(m) for m, _ in pairs) if v is not None]
        theirs = [v for v in (_us(t) for _, t in pairs) if v is not None]
        costs = [
            a - j
            for a, j in ((_us(m), _us(t)) for m, t in pairs)
            if a is not None and j is not None
        ]
        cost = round(statistics.median(costs), 3) if costs else None
        first = pairs[0][0]
        rows.append(
            {
                "kind": kind,
                "streams": streams,
                "records": records or None,
                "rate": first.get("rate"),
                "deliveries_per_record": first.get("deliveries_per_record", 1),
                "rounds": len(pairs),
                "avro_us_per_record": round(statistics.median(ours), 3) if ours else None,
                "json_us_per_record": round(statistics.median(theirs), 3) if theirs else None,
                "model_cost_us_per_record": cost,
                "model_cost_range": [round(min(costs), 3), round(max(costs), 3)] if costs else None,
                "all_held": all(m.get("held") and t.get("held") for m, t in pairs),
                "goal_met": cost is not None and cost <= GOAL_US_PER_RECORD,
            }
        )
    return rows


def run(run: RunContext) -> dict[str, Any]:
    sizes = run.sizes.schemas
    results: dict[str, Any] = {
        "description": DESCRIPTION,
        "rate": sizes.rate,
        "keys": sizes.keys,
        "window_s": sizes.window,
        "rounds": sizes.rounds,
        "catchup_records": sizes.catchup_records,
        "goal_us_per_record": GOAL_US_PER_RECORD,
        "targets": {},
    }
    targets = make_targets(run)
    reason = run.unavailable.get("ssegate")
    if reason is None and "ssegate" not in run.targets:
        reason = "ssegate is not among --targets"
    if reason is not None:
        for target in targets:
            results["targets"][target.name] = not_run(target.label, reason)
        return results
    try:
        results["in_process"] = model_cost.measure()
    except Exception as exc:  # recorded, never silent; the server-side points still run
        results["in_process"] = {"error": f"{type(exc).__name__}: {exc}"}
    for target in targets:
        results["targets"][target.name] = target_result(target)
    loads = [("keyed", n) for n in sizes.keyed_streams]
    loads += [("fanout", n) for n in sizes.fanout_streams]
    for round_ in range(sizes.rounds):
        for kind, streams in loads:
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                result = results["targets"][target.name]
                point = guarded(result, partial(stream_point, run, target, kind, streams))
                if point is not None:
                    point["round"] = round_
    # Catch-up: the ring holds a tenth of the records, so most come from the catch-up reader
    # (the full size's 100,000 of 1,000,000, as in `catch-up`).
    replayers = make_targets(run, ring_records=max(1_000, sizes.catchup_records // 10))
    catchup_run = replace(run, sizes=replace(run.sizes, catchup_timeout=sizes.catchup_timeout))
    for target in replayers:
        guarded(
            results["targets"][target.name],
            partial(catchup_point, catchup_run, target, sizes.catchup_records),
        )
    results["model_cost"] = model_costs(results)
    return results
