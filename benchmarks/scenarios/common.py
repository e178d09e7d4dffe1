"""What scenarios share: the sizes of a run, the targets, and the peer ladder.

A scenario returns `{"description", "targets": {name: TargetResult}, ...}`; a target result
is `{"label", "status": "ok" | "not run" | "failed", "reason", "points": [...]}` where each
point is a dict from `load.run_load` (or the scenario's own measurement) with `held`.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.targets.base import Context, Target

logger = logging.getLogger("benchmarks")

FD_HEADROOM = 1000  # descriptors a process keeps for itself besides its streams


@dataclass(frozen=True)
class OverloadSizes:
    """The `overload` scenario: a peak phase, an overload phase, a storm (overload.py)."""

    streams: int
    peak_rate: float  # records/s of the peak phase: the load that gave the peak
    rate: float  # records/s of the overload phase
    peak_window: float  # seconds measured at the peak, sampled every second
    window: float  # seconds of overload, sampled every second
    sustained_last: float  # the overload's sustained rate: median of its last seconds
    drain_timeout: float  # after the producer stops: time for open streams to catch up
    storm: tuple[int, float]  # streams, records/s of the storm's base load
    storm_timeout: float


@dataclass(frozen=True)
class TlsSizes:
    """The `tls-http2` scenario (tls_http2.py)."""

    streams: int  # fan-out streams per point (idle, each rate, HTTP/2)
    rates: tuple[float, ...]  # records/s; HTTP/2 runs at the first
    per_connection: int  # HTTP/2 streams per connection
    handshakes: int  # connections in each reconnect storm


@dataclass(frozen=True)
class SchemasSizes:
    """The `schemas` scenario (schemas.py): an Avro topic against the same JSON topic."""

    rate: float  # records/s of every stream point
    keys: int  # keyed points: stream i subscribes to key i mod keys
    keyed_streams: tuple[int, ...]  # streams of each keyed point
    fanout_streams: tuple[int, ...]  # streams of each fan-out point (every record to each)
    window: float  # seconds measured per stream point
    # Each stream point runs this many times, the targets taking turns; the model's cost is
    # the median of the rounds' differences (it is a small share of the server's CPU).
    rounds: int
    catchup_records: int
    catchup_timeout: float


@dataclass(frozen=True)
class Sizes:
    """How big a run is: `full` (make bench) or `quick` (make bench-quick, CI)."""

    name: str
    window: float
    warmup: float
    open_timeout: float
    peer_open_timeout: float
    drain_timeout: float
    idle_streams: tuple[int, ...]
    idle_window: float
    fanout_points: tuple[tuple[int, float], ...]  # (streams, records/s)
    peer_ladder: tuple[int, ...]  # stream counts the Python stack climbs
    peer_rate: float  # records/s for the Python stack's fan-out ladder
    filtered: tuple[int, int, float]  # streams, keys, records/s
    resume: tuple[int, float]  # streams, records/s
    catchup_records: int
    catchup_timeout: float
    workers_points: tuple[tuple[int, float], ...]
    profile_seconds: float  # py-spy on ssegate at `profile_point` of fanout; 0: no profile
    overload: OverloadSizes
    tls: TlsSizes
    schemas: SchemasSizes
    profile_point: tuple[int, float] = (10_000, 100.0)


FULL = Sizes(
    name="full",
    window=12.0,
    warmup=3.0,
    open_timeout=120.0,
    peer_open_timeout=45.0,
    drain_timeout=20.0,
    idle_streams=(10_000, 50_000),
    idle_window=5.0,
    fanout_points=((1_000, 100.0), (10_000, 10.0), (10_000, 100.0), (10_000, 1_000.0)),
    peer_ladder=(100, 300, 1_000, 3_000, 10_000),
    peer_rate=100.0,
    filtered=(10_000, 1_000, 5_000.0),
    resume=(10_000, 10.0),
    catchup_records=1_000_000,
    catchup_timeout=90.0,
    workers_points=((10_000, 100.0), (10_000, 1_000.0)),
    profile_seconds=10.0,
    overload=OverloadSizes(
        streams=10_000,
        peak_rate=100.0,
        rate=1_000.0,
        peak_window=15.0,
        window=60.0,
        sustained_last=30.0,
        drain_timeout=60.0,
        storm=(10_000, 10.0),
        storm_timeout=120.0,
    ),
    tls=TlsSizes(streams=10_000, rates=(10.0, 100.0), per_connection=10, handshakes=10_000),
    schemas=SchemasSizes(
        rate=1_000.0,
        keys=1_000,
        keyed_streams=(1_000, 10_000),
        fanout_streams=(1_000,),
        window=12.0,
        rounds=3,
        catchup_records=1_000_000,
        catchup_timeout=240.0,
    ),
)

QUICK = Sizes(
    name="quick",
    window=3.0,
    warmup=1.0,
    open_timeout=30.0,
    peer_open_timeout=20.0,
    drain_timeout=10.0,
    idle_streams=(300,),
    idle_window=1.0,
    fanout_points=((300, 100.0),),
    peer_ladder=(50, 200),
    peer_rate=50.0,
    filtered=(300, 30, 300.0),
    resume=(300, 50.0),
    catchup_records=20_000,
    catchup_timeout=30.0,
    workers_points=((300, 100.0),),
    profile_seconds=0.0,
    overload=OverloadSizes(
        streams=300,
        peak_rate=100.0,
        rate=3_000.0,
        peak_window=5.0,
        window=15.0,
        sustained_last=7.0,
        drain_timeout=20.0,
        storm=(300, 50.0),
        storm_timeout=30.0,
    ),
    tls=TlsSizes(streams=300, rates=(100.0,), per_connection=10, handshakes=300),
    schemas=SchemasSizes(
        rate=300.0,
        keys=30,
        keyed_streams=(30, 300),
        fanout_streams=(100,),
        window=3.0,
        rounds=1,
        catchup_records=50_000,
        catchup_timeout=60.0,
    ),
)


@dataclass
class RunContext:
    """One benchmark run: sizes, shared context, targets, and the fd limit it got."""

    sizes: Sizes
    context: Context
    targets: dict[str, Target]
    unavailable: dict[str, str] = field(default_factory=dict)  # target -> why not
    fd_limit: int = 20000
    shared: dict[str, Any] = field(default_factory=dict)  # what one scenario tells a later one
    results_dir: Path = Path("benchmarks/results")

    def processes_for(self, streams: int) -> int:
        """Client processes: two (one per core), more when the fd limit requires."""
        return max(2, math.ceil(streams / (self.fd_limit - FD_HEADROOM)))

    def workers_for(self, streams: int) -> int:
        """Server processes the fd limit requires for `streams` (1 when it allows)."""
        return max(1, math.ceil(streams / (self.fd_limit - FD_HEADROOM)))


def topic_name(scenario: str) -> str:
    return f"bench-{scenario}-{uuid.uuid4().hex[:8]}"


def target_result(target: Target) -> dict[str, Any]:
    return {"label": target.label, "status": "ok", "reason": "", "points": []}


def not_run(label: str, reason: str) -> dict[str, Any]:
    return {"label": label, "status": "not run", "reason": reason, "points": []}


def guarded(result: dict[str, Any], step: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Run one point; a failure is recorded on `result` (never silent) and returns None."""
    started = time.monotonic()
    try:
        point = step()
    except Exception as exc:
        logger.error("point failed: %s", exc)
        result["status"] = "failed"
        result["reason"] = f"{type(exc).__name__}: {exc}"
        result.setdefault("traceback", traceback.format_exc(limit=6))
        return None
    point["elapsed_s"] = round(time.monotonic() - started, 1)
    result["points"].append(point)
    return point


def ladder(
    result: dict[str, Any], loads: tuple[int, ...], step: Callable[[int], dict[str, Any]]
) -> int | None:
    """Climb `loads` until a point does not hold; the largest held load (or None)."""
    held = None
    for streams in loads:
        point = guarded(result, partial(step, streams))
        if point is None:
            break
        logger.info("  %d streams: %s", streams, "held" if point.get("held") else "fell over")
        if not point.get("held"):
            break
        held = streams
    result["largest_held"] = held
    if held is None and result["status"] == "ok":
        result["reason"] = result["points"][-1].get("reason", "") if result["points"] else ""
    return held
