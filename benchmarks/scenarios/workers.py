"""`workers`: `fanout` with two server processes (`ssegate run --workers 2`).

ssegate's workers share the port (SO_REUSEPORT), each with its own reader and ring; nchan
runs with `worker_processes 2`. The Python stack is not part of it (its fan-out ladder
already shows where one process falls over). When `ssegate run` has no `--workers` option,
the scenario reports itself not run, with that reason.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmarks.scenarios.common import RunContext, guarded, not_run, target_result
from benchmarks.scenarios.fanout import fanout_point
from benchmarks.targets.ssegate import workers_supported

DESCRIPTION = "The fan-out load with two server processes sharing the port."
WORKERS = 2


def run(run: RunContext) -> dict[str, Any]:
    results: dict[str, Any] = {"description": DESCRIPTION, "workers": WORKERS, "targets": {}}
    missing = workers_supported()
    for name, target in run.targets.items():
        if name == "python_stack":
            continue
        if name in run.unavailable:
            results["targets"][name] = not_run(target.label, run.unavailable[name])
            continue
        if name == "ssegate" and missing:
            results["targets"][name] = not_run(target.label, missing)
            continue
        result = target_result(target)
        results["targets"][name] = result
        for streams, rate in run.sizes.workers_points:
            guarded(
                result,
                partial(fanout_point, run, target, streams, rate, workers=WORKERS),
            )
    return results
