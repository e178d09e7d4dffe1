"""`idle`: many open streams and no records: time to open them, RSS per stream, idle CPU.

RSS per stream is (the server tree's RSS with the streams open - its RSS before) / streams.
A process here may hold at most the fd hard limit (20,000 on this machine, which root
cannot raise without CAP_SYS_RESOURCE), so a count beyond it runs on as many server
processes as needed (`ssegate run --workers N`, nginx `worker_processes N`); the point
says how many. The Python stack climbs its ladder and stops where it falls over.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmarks.records import key_names
from benchmarks.scenarios.common import (
    RunContext,
    guarded,
    ladder,
    not_run,
    target_result,
    topic_name,
)
from benchmarks.scenarios.load import LoadSpec, run_load
from benchmarks.targets.base import Feed, Target

DESCRIPTION = (
    "Streams that receive nothing: the time from the first connect to the last `200`, the "
    "server's RSS per open stream, and the CPU it spends holding them."
)


def idle_spec(run: RunContext, streams: int, *, peer: bool = False, workers: int = 1) -> LoadSpec:
    """`streams` streams on a feed that gets no records, measured for `idle_window`."""
    sizes = run.sizes
    return LoadSpec(
        streams=streams,
        rate=0.0,
        feed=Feed(topic_name("idle"), partitions=3),
        keys=key_names(3),
        window=sizes.idle_window,
        warmup=2.0 if sizes.name == "full" else 0.5,
        open_timeout=sizes.peer_open_timeout if peer else sizes.open_timeout,
        processes=run.processes_for(streams),
        workers=workers,
    )


def _point(run: RunContext, target: Target, streams: int, peer: bool) -> dict[str, Any]:
    workers = 1 if peer else run.workers_for(streams)
    return run_load(target, idle_spec(run, streams, peer=peer, workers=workers))


def run(run: RunContext) -> dict[str, Any]:
    results: dict[str, Any] = {"description": DESCRIPTION, "targets": {}}
    for name, target in run.targets.items():
        if name in run.unavailable:
            results["targets"][name] = not_run(target.label, run.unavailable[name])
            continue
        result = target_result(target)
        results["targets"][name] = result
        if name == "python_stack":
            ladder(result, run.sizes.peer_ladder, partial(_point, run, target, peer=True))
            continue
        for streams in run.sizes.idle_streams:
            guarded(result, partial(_point, run, target, streams, False))
    return results
