"""`fanout`: every stream on one route gets every record (256-byte JSON, 3 partitions).

Per point: deliveries/s, server CPU per delivery (and per million), p50/p99/max latency,
client and broker CPU. The Python stack climbs its ladder at `peer_rate`; ssegate and
nchan then also run at the largest load it held, so the ratio is taken at equal load.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmarks import profiling
from benchmarks.records import key_names
from benchmarks.scenarios.common import (
    RunContext,
    guarded,
    ladder,
    not_run,
    target_result,
    topic_name,
)
from benchmarks.scenarios.load import Extra, LoadRun, LoadSpec, run_load
from benchmarks.targets.base import Feed, Target

DESCRIPTION = (
    "N streams on one route, a producer at R records/s of 256-byte JSON over 3 partitions: "
    "every record goes to every stream."
)
PARTITIONS = 3


def fanout_spec(
    run: RunContext, streams: int, rate: float, *, peer: bool = False, workers: int = 1
) -> LoadSpec:
    sizes = run.sizes
    return LoadSpec(
        streams=streams,
        rate=rate,
        feed=Feed(topic_name("fanout"), partitions=PARTITIONS),
        keys=key_names(PARTITIONS),
        window=sizes.window,
        warmup=sizes.warmup,
        open_timeout=sizes.peer_open_timeout if peer else sizes.open_timeout,
        drain_timeout=sizes.drain_timeout,
        processes=run.processes_for(streams),
        workers=workers,
    )


def fanout_point(
    run: RunContext,
    target: Target,
    streams: int,
    rate: float,
    *,
    peer: bool = False,
    workers: int = 1,
    extra: Extra | None = None,
) -> dict[str, Any]:
    return run_load(target, fanout_spec(run, streams, rate, peer=peer, workers=workers), extra)


def run(run: RunContext) -> dict[str, Any]:
    results: dict[str, Any] = {"description": DESCRIPTION, "targets": {}}
    sizes = run.sizes
    peer_held = None
    peer = run.targets.get("python_stack")
    if peer is not None:
        if "python_stack" in run.unavailable:
            results["targets"]["python_stack"] = not_run(
                peer.label, run.unavailable["python_stack"]
            )
        else:
            result = target_result(peer)
            results["targets"]["python_stack"] = result
            peer_held = ladder(
                result,
                sizes.peer_ladder,
                lambda n: fanout_point(run, peer, n, sizes.peer_rate, peer=True),
            )
    points = list(sizes.fanout_points)
    if peer_held and (peer_held, sizes.peer_rate) not in points:
        points.insert(0, (peer_held, sizes.peer_rate))
    results["peer_load"] = [peer_held, sizes.peer_rate] if peer_held else None
    run.shared["peer_fanout_held"] = peer_held
    for name, target in run.targets.items():
        if name == "python_stack":
            continue
        if name in run.unavailable:
            results["targets"][name] = not_run(target.label, run.unavailable[name])
            continue
        result = target_result(target)
        results["targets"][name] = result
        for streams, rate in points:
            extra = None
            if (
                name == "ssegate"
                and sizes.profile_seconds
                and (streams, rate) == sizes.profile_point
            ):
                extra = _profiler(run)
            guarded(
                result,
                partial(fanout_point, run, target, streams, rate, extra=extra),
            )
            if result["points"] and "profile" in result["points"][-1]:
                results["profile"] = result["points"][-1].pop("profile")
                results["profile"]["load"] = [streams, rate]
    return results


def _profiler(run: RunContext) -> Extra:
    """py-spy on the gateway for `profile_seconds` while the load continues."""

    def step(load: LoadRun) -> dict[str, Any]:
        output = run.results_dir / "fanout-profile.txt"
        return {
            "profile": profiling.record(load.target.pids()[0], run.sizes.profile_seconds, output)
        }

    return step
