"""`filtered`: each stream names one key and gets only that key's records.

ssegate: a route with `filters: [{key: ${params.key}}]` (one subscription group per key).
nchan: one channel per key (the publisher posts each record to its key's channel).
The Python stack: each client's consumer reads the whole topic and skips other keys.
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
    "N streams over K keys (stream i subscribes to key i mod K), a producer at R records/s "
    "spread evenly over the keys (partitioned by key hash, 3 partitions)."
)


def _point(run: RunContext, target: Target, streams: int, peer: bool) -> dict[str, Any]:
    sizes = run.sizes
    _, keys, rate = sizes.filtered
    spec = LoadSpec(
        streams=streams,
        rate=rate,
        feed=Feed(topic_name("filtered"), filtered=True, partitions=3),
        keys=key_names(keys),
        pin_partitions=False,
        window=sizes.window,
        warmup=sizes.warmup,
        open_timeout=sizes.peer_open_timeout if peer else sizes.open_timeout,
        drain_timeout=sizes.drain_timeout,
        processes=run.processes_for(streams),
    )
    return run_load(target, spec)


def run(run: RunContext) -> dict[str, Any]:
    streams, keys, rate = run.sizes.filtered
    results: dict[str, Any] = {
        "description": DESCRIPTION,
        "streams": streams,
        "keys": keys,
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
            loads = tuple(n for n in run.sizes.peer_ladder if n <= streams)
            ladder(result, loads, partial(_point, run, target, peer=True))
            continue
        guarded(result, partial(_point, run, target, streams, False))
    return results
