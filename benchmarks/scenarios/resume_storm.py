"""`resume-storm`: every stream drops at once and reconnects with its last id.

Under a running fan-out load, the clients abort every connection in the same instant and
reconnect at once, each with `Last-Event-ID` (the id of the last event it got). Measured:
the time until every stream is open again, then until every stream has received each key's
last record produced by then; and the sequence checks, which span the reconnect: nothing
lost, nothing repeated. The Python stack runs at the largest fan-out load it held.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.scenarios.common import RunContext, guarded, not_run, target_result
from benchmarks.scenarios.fanout import fanout_point
from benchmarks.scenarios.load import LoadRun
from benchmarks.system import ProcessTree
from benchmarks.targets.base import Target

DESCRIPTION = (
    "N fan-out streams under a producer at R records/s all drop at once and reconnect with "
    "their last id: time to reopen, time until all have caught up, and the loss checks."
)


def storm(run: LoadRun, timeout: float) -> dict[str, Any]:
    """Drop every stream, reconnect, wait for all to catch up (bounded by `timeout`)."""
    if not run.point.get("held"):
        return {
            "storm": None,
            "storm_held": False,
            "storm_skipped": "not attempted: the load before the storm did not hold",
        }
    pool = run.pool
    streams = run.spec.streams
    before = run.server.sample()
    dropped_at = pool.drop()
    deadline = dropped_at + timeout
    status = pool.status()
    while status["open"] < streams and time.monotonic() < deadline:
        time.sleep(0.05)
        status = pool.status()
    reopened_at = time.monotonic()
    reopened = status["open"]
    assert run.producer is not None
    pool.set_targets(run.producer.last_seq())
    while status["caught_up"] < streams and time.monotonic() < deadline:
        time.sleep(0.05)
        status = pool.status()
    after = run.server.sample()
    caught_up = status["caught_up"]
    last = status["last_caught_up_at"]
    result = {
        "reopened": reopened,
        "reopen_s": round(reopened_at - dropped_at, 3),
        "caught_up": caught_up,
        "caught_up_s": round(last - dropped_at, 3) if last and caught_up >= streams else None,
        "server_cpu_s": round(ProcessTree.cpu_between(before, after), 3),
        "server_rss_mib_after": round(after.rss / 2**20, 1),
    }
    held = reopened >= streams and caught_up >= streams
    return {"storm": result, "storm_held": held}


def _point(
    run: RunContext, target: Target, streams: int, rate: float, peer: bool
) -> dict[str, Any]:
    timeout = 120.0 if run.sizes.name == "full" else 30.0
    point = fanout_point(
        run, target, streams, rate, peer=peer, extra=lambda load: storm(load, timeout)
    )
    if not point.get("storm_held", False) and point.get("held", True):
        point["held"] = False
        point["reason"] = point.get(
            "storm_skipped", "not every stream reopened and caught up within the time bound"
        )
    return point


def run(run: RunContext) -> dict[str, Any]:
    streams, rate = run.sizes.resume
    results: dict[str, Any] = {
        "description": DESCRIPTION,
        "streams": streams,
        "rate": rate,
        "targets": {},
    }
    for name, target in run.targets.items():
        if name in run.unavailable:
            results["targets"][name] = not_run(target.label, run.unavailable[name])
            continue
        result = target_result(target)
        results["targets"][name] = result
        if name == "python_stack":
            held = run.shared.get("peer_fanout_held") or run.sizes.peer_ladder[0]
            result["reason"] = f"run at the largest fan-out load it held: {held} streams"
            guarded(result, lambda t=target, n=held: _point(run, t, n, run.sizes.peer_rate, True))
            continue
        guarded(result, lambda t=target: _point(run, t, streams, rate, False))
    return results
