"""`resume-storm`: every stream drops at once and reconnects with its last id.

Under a running fan-out load, the clients abort every connection in the same instant and
reconnect at once, each with `Last-Event-ID` (the id of the last event it got). Measured:
the time until every stream is open again, then until every stream has received each key's
last record produced by then; and the sequence checks, which span the reconnect: nothing
lost, nothing repeated. The Python stack runs at the largest fan-out load it held.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from benchmarks import system
from benchmarks.scenarios.common import RunContext, guarded, not_run, target_result
from benchmarks.scenarios.fanout import fanout_point
from benchmarks.scenarios.load import LoadRun
from benchmarks.system import ProcessTree, TreeSample
from benchmarks.targets.base import Target
from benchmarks.targets.ssegate import Ssegate

DESCRIPTION = (
    "N fan-out streams under a producer at R records/s all drop at once and reconnect with "
    "their last id: time to reopen, time until all have caught up, and the loss checks."
)


def storm(run: LoadRun, timeout: float, sample_every: float = 0.0) -> dict[str, Any]:
    """Drop every stream, reconnect, wait for all to catch up (bounded by `timeout`).

    Also read: refusals and connect errors during the storm, and the kernel's listen-queue
    counters before the drop and after the catch-up. `sample_every` > 0 adds a timeline
    (streams open and caught up, refusals, server CPU) at that interval."""
    if not run.point.get("held"):
        return {
            "storm": None,
            "storm_held": False,
            "storm_skipped": "not attempted: the load before the storm did not hold",
        }
    pool = run.pool
    streams = run.spec.streams
    listen_before = system.listen_counters()
    before = run.server.sample()
    status = first = pool.status()
    timeline = StormTimeline(run, first, before, sample_every)
    dropped_at = pool.drop()
    timeline.started(dropped_at)
    deadline = dropped_at + timeout
    while status["open"] < streams and time.monotonic() < deadline:
        time.sleep(0.05)
        status = pool.status()
        timeline.tick(status)
    reopened_at = time.monotonic()
    reopened = status["open"]
    assert run.producer is not None
    pool.set_targets(run.producer.last_seq())
    while status["caught_up"] < streams and time.monotonic() < deadline:
        time.sleep(0.05)
        status = pool.status()
        timeline.tick(status)
    after = run.server.sample()
    listen_after = system.listen_counters()
    caught_up = status["caught_up"]
    last = status["last_caught_up_at"]
    result = {
        "reopened": reopened,
        "reopen_s": round(reopened_at - dropped_at, 3),
        "caught_up": caught_up,
        "caught_up_s": round(last - dropped_at, 3) if last and caught_up >= streams else None,
        "server_cpu_s": round(ProcessTree.cpu_between(before, after), 3),
        "server_rss_mib_after": round(after.rss / 2**20, 1),
        "refused": _difference(first["refused"], status["refused"]),
        "connect_errors": _difference(first["connect_errors"], status["connect_errors"]),
        "listen": {
            "before": listen_before,
            "after": listen_after,
            "delta": system.counter_delta(listen_before, listen_after),
        },
    }
    if sample_every > 0:
        result["samples"] = timeline.samples
    held = reopened >= streams and caught_up >= streams
    return {"storm": result, "storm_held": held}


class StormTimeline:
    """Samples of a storm at a fixed interval, from the controller's status polls."""

    def __init__(
        self, run: LoadRun, status: dict[str, Any], server: TreeSample, every: float
    ) -> None:
        self.run = run
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self.start = 0.0
        self.next_at = float("inf")
        self.first_refused = sum(status["refused"].values())
        self.last_server = server
        self.last_at = time.monotonic()

    def started(self, at: float) -> None:
        self.start = at
        self.next_at = at + self.every if self.every > 0 else float("inf")

    def tick(self, status: dict[str, Any]) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at += self.every
        server = self.run.server.sample()
        seconds = max(now - self.last_at, 1e-9)
        self.samples.append(
            {
                "t": round(now - self.start, 2),
                "open": status["open"],
                "caught_up": status["caught_up"],
                "refused": sum(status["refused"].values()) - self.first_refused,
                "connect_errors": sum(status["connect_errors"].values()),
                "server_cpu_cores": round(
                    ProcessTree.cpu_between(self.last_server, server) / seconds, 3
                ),
                "listen": system.listen_counters(),
            }
        )
        self.last_server, self.last_at = server, now


def _difference(before: dict[Any, int], after: dict[Any, int]) -> dict[str, int]:
    """Per-key growth of a counter dict (keys as strings, as JSON has them)."""
    grown = {str(key): value - before.get(key, 0) for key, value in after.items()}
    return {key: value for key, value in grown.items() if value}


def _point(
    run: RunContext, target: Target, streams: int, rate: float, peer: bool
) -> dict[str, Any]:
    timeout = 120.0 if run.sizes.name == "full" else 30.0
    point = fanout_point(
        run, target, streams, rate, peer=peer, extra=lambda load: storm(load, timeout)
    )
    return storm_verdict(point)


def storm_verdict(point: dict[str, Any]) -> dict[str, Any]:
    """A point holds only if its storm did: every stream reopened and caught up in time."""
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
            guarded(result, partial(_point, run, target, held, run.sizes.peer_rate, True))
            continue
        guarded(result, partial(_point, run, target, streams, rate, False))
        if name == "ssegate":
            # The same storm with a JWT guard: every reconnect carries a token (issue 10:
            # no more than 1.5 times the storm without one).
            secured = Ssegate(run.context, guard=True)
            result = results["targets"][secured.name] = target_result(secured)
            guarded(result, partial(_point, run, secured, streams, rate, False))
    return results
