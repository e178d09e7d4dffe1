"""`overload`: beyond capacity, does the server degrade or collapse?

Two points per target, each with a fresh server and topic (3 partitions, as `fanout`):

1. **overload**, one server and one producer whose rate changes, sampled every second from
   the producer's start (deliveries/s, streams open, refusals, reconnects, listen-queue
   counters, server CPU and RSS):
   - `peak`: N streams at `peak_rate`, the load that gave fanout's peak deliveries/s;
   - `overload`: the same streams at `rate` (beyond what the machine can deliver) for a
     longer window. Its *sustained* deliveries/s is the median of the per-second samples
     of its last `sustained_last` seconds, the peak's the median over its whole window;
     their ratio says how much of the peak survives overload;
   - `drain`: the producer stops; every stream must catch up (bounded by `drain_timeout`).
     A stream refused (`503`/`429`) and not admitted again by then is counted apart: what
     it misses is not a loss.
   The checks (lost, duplicated, id progress) span every reconnect and refusal.
2. **storm**: under a load every server sustains, every stream drops at once and
   reconnects with its last id (as `resume-storm`), sampled every 0.5 s: time to reopen
   and to catch up, refusals, connect errors.

The kernel's `TcpExt` `ListenOverflows` / `ListenDrops` are read before and after every
phase (they are the network namespace's, so anything else on the machine adds to them),
with `net.core.somaxconn` and `net.ipv4.tcp_max_syn_backlog`.

The peers are not run: nchan's publisher shares its one worker with the subscribers, so
beyond its capacity the publish rate falls (fanout: 0 of 1,000 records/s at 10,000
streams) and the overload never reaches the subscribers; the Python stack falls over at
1,000 streams at 100 records/s. Both reasons are in the results.
"""

from __future__ import annotations

import logging
import statistics
import time
from functools import partial
from typing import Any

from benchmarks import system
from benchmarks.loadgen.pool import ClientPool
from benchmarks.producers.pacing import ProducerHandle
from benchmarks.scenarios.common import OverloadSizes, RunContext, guarded, not_run, target_result
from benchmarks.scenarios.fanout import fanout_spec
from benchmarks.scenarios.load import (
    MIB,
    LoadRun,
    LoadSpec,
    prepare_feed,
    run_load,
    stream_specs,
)
from benchmarks.scenarios.resume_storm import storm, storm_verdict
from benchmarks.stats import percentiles_ms, ratio
from benchmarks.system import ProcessTree, TreeSample
from benchmarks.targets.base import Target

logger = logging.getLogger("benchmarks")

DESCRIPTION = (
    "N fan-out streams at the peak load, then at ten times what the machine can deliver, "
    "sampled every second: sustained deliveries/s against the peak, streams kept, refusals, "
    "reconnects; then the open streams must catch up. Separately, a resume storm under a "
    "load every server sustains, with the kernel's listen-queue counters."
)
SAMPLE_EVERY = 1.0
STORM_SAMPLE_EVERY = 0.5
LATENCY_STREAMS = 20  # few: at overload rates every sampled event costs the client memory
NOT_RUN = {
    "nchan": (
        "its HTTP publisher is served by the same single worker as the subscribers, so "
        "beyond capacity the publish rate falls (fanout: 0 of 1,000 records/s at 10,000 "
        "streams) and the subscribers are never offered the overload"
    ),
    "python_stack": (
        "it falls over at 1,000 streams at 100 records/s (fanout) and cannot open 3,000 "
        "idle streams in 45 s (idle): there is no peak at 10,000 streams to degrade from"
    ),
}


class Timeline:
    """Per-second samples of one load, each over the interval since the previous one."""

    def __init__(
        self, pool: ClientPool, server: ProcessTree, producer: ProducerHandle, streams: int
    ) -> None:
        self.pool = pool
        self.server = server
        self.producer = producer
        self.streams = streams
        self.samples: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self.status = pool.status()
        self.tree = server.sample()
        self.listen = system.listen_counters()
        self.sent = producer.sent
        self.at = self.t0

    def sample(self, phase: str) -> dict[str, Any]:
        status = self.pool.status()
        tree = self.server.sample()
        listen = system.listen_counters()
        sent = self.producer.sent
        now = time.monotonic()
        seconds = max(now - self.at, 1e-9)
        refused = sum(status["refused"].values())
        sample = {
            "t": round(now - self.t0, 2),
            "phase": phase,
            "deliveries_per_s": round((status["events"] - self.status["events"]) / seconds, 1),
            "produced_per_s": round((sent - self.sent) / seconds, 1),
            "open": status["open"],
            "caught_up": status["caught_up"],
            "refused": refused - sum(self.status["refused"].values()),
            "refused_total": refused,
            "refused_waiting": status["refused_waiting"],
            "reconnects": status["reconnects"] - self.status["reconnects"],
            "server_cpu_cores": round(ProcessTree.cpu_between(self.tree, tree) / seconds, 3),
            "server_rss_mib": round(tree.rss / MIB, 1),
            "listen": system.counter_delta(self.listen, listen),
        }
        self.samples.append(sample)
        self.status, self.tree, self.listen, self.sent, self.at = status, tree, listen, sent, now
        return sample

    def run_phase(
        self, phase: str, seconds: float, *, settled_stops: bool = False
    ) -> list[dict[str, Any]]:
        """Sample every second for `seconds` (or until every stream has settled: caught
        up, or refused and waiting); the samples of this phase."""
        started = time.monotonic()
        first = len(self.samples)
        tick = 1
        while True:
            pause = started + tick * SAMPLE_EVERY - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.sample(phase)
            tick += 1
            if time.monotonic() - started >= seconds - 0.01:
                break
            if settled_stops and self.status["settled"] >= self.streams:
                break
        return self.samples[first:]


# A timeline's state at one sample: pool status, server sample, listen counters, when.
Snapshot = tuple[dict[str, Any], TreeSample, dict[str, int], float]


def phase_summary(
    samples: list[dict[str, Any]], before: Snapshot, after: Snapshot
) -> dict[str, Any]:
    """What a phase did, from the statuses, server samples and listen counters around it.

    Every rate is over the time between the two snapshots (the samples that bound the
    phase), the interval the counts were taken over, not the wall time the harness spent
    in the phase (ending a window or stopping the producer takes time too)."""
    status_0, tree_0, listen_0, at_0 = before
    status_1, tree_1, listen_1, at_1 = after
    seconds = at_1 - at_0
    events = status_1["events"] - status_0["events"]
    rate = events / max(seconds, 1e-9)
    cores = ProcessTree.cpu_between(tree_0, tree_1) / max(seconds, 1e-9)
    per_second = [s["deliveries_per_s"] for s in samples]
    refused = {
        str(code): count - status_0["refused"].get(code, 0)
        for code, count in status_1["refused"].items()
        if count - status_0["refused"].get(code, 0)
    }
    return {
        "seconds": round(seconds, 2),
        "deliveries_per_s": round(rate, 1),
        "median_deliveries_per_s": round(statistics.median(per_second), 1) if samples else None,
        "produced_per_s": round(statistics.median(s["produced_per_s"] for s in samples), 1)
        if samples
        else None,
        "open_at_end": status_1["open"],
        "min_open": min((s["open"] for s in samples), default=None),
        "refused": refused,
        "refused_total": sum(refused.values()),
        "reconnects": status_1["reconnects"] - status_0["reconnects"],
        "connect_errors": sum(status_1["connect_errors"].values())
        - sum(status_0["connect_errors"].values()),
        "server": {
            "cpu_cores": round(cores, 3),
            "cpu_us_per_delivery": round(cores / rate * 1e6, 3) if rate else None,
            "rss_mib": round(tree_1.rss / MIB, 1),
            "max_rss_mib": max((s["server_rss_mib"] for s in samples), default=None),
        },
        "listen": {
            "before": listen_0,
            "after": listen_1,
            "delta": system.counter_delta(listen_0, listen_1),
        },
    }


def _snapshot(timeline: Timeline) -> Snapshot:
    return timeline.status, timeline.tree, timeline.listen, timeline.at


def wait_admitted(pool: ClientPool, streams: int, timeout: float) -> dict[str, Any]:
    """Wait until every stream is open or refused and waiting (admission may refuse some),
    bounded by `timeout`; what the open looked like."""
    started = time.monotonic()
    status = pool.status()
    while status["open"] + status["refused_waiting"] < streams:
        if time.monotonic() - started > timeout:
            break
        time.sleep(0.2)
        status = pool.status()
    seconds = None
    if status["open"] >= streams and status["connect_started"] is not None:
        seconds = round(status["last_open_at"] - status["connect_started"], 2)
    return {
        "opened": status["open"],
        "seconds": seconds,
        "refused": {str(k): v for k, v in status["refused"].items()},
        "refused_waiting": status["refused_waiting"],
        "errors": status["connect_errors"],
    }


def overload_point(run: RunContext, target: Target, sizes: OverloadSizes) -> dict[str, Any]:
    """The peak, overload and drain phases on one server (module docstring)."""
    spec: LoadSpec = fanout_spec(run, sizes.streams, sizes.peak_rate)
    spec.drain_timeout = sizes.drain_timeout
    point: dict[str, Any] = {
        "kind": "overload",
        "streams": sizes.streams,
        "peak_rate": sizes.peak_rate,
        "rate": sizes.rate,
        "sustained_rule": (
            f"median of the per-second deliveries of the overload's last "
            f"{sizes.sustained_last:g} s, over the median of the peak window's"
        ),
        "listen_backlog": target.listen_backlog,
    }
    prepare_feed(target, spec)
    target.start([spec.feed], spec.workers)
    producer: ProducerHandle | None = None
    pool: ClientPool | None = None
    try:
        server = ProcessTree(target.pids())
        base = server.sample()
        pool = ClientPool(spec.processes)
        pool.open(
            target.port,
            stream_specs(target, spec, LATENCY_STREAMS),
            terminator=target.terminator,
            id_kind=target.id_kind,
            exact_ids=True,
        )
        point["open"] = wait_admitted(pool, spec.streams, spec.open_timeout)
        if not point["open"]["opened"]:
            raise RuntimeError(f"no stream opened in {spec.open_timeout:g} s: {point['open']}")
        partitions = [i % spec.feed.partitions for i in range(len(spec.keys))]
        producer = target.producer(spec.feed, spec.keys, sizes.peak_rate, partitions).start()
        timeline = Timeline(pool, server, producer, spec.streams)
        timeline.run_phase("warmup", spec.warmup)
        phases: dict[str, dict[str, Any]] = {}
        for phase, rate, seconds in (
            ("peak", sizes.peak_rate, sizes.peak_window),
            ("overload", sizes.rate, sizes.window),
        ):
            logger.info(
                "  %s: %d streams x %g records/s for %g s", phase, spec.streams, rate, seconds
            )
            producer.set_rate(rate)
            before = _snapshot(timeline)
            client_cpu = pool.window_start()
            samples = timeline.run_phase(phase, seconds)
            summary = phase_summary(samples, before, _snapshot(timeline))
            window = pool.window_end(client_cpu)
            summary["rate"] = rate
            summary["latency_ms"] = percentiles_ms(window.latencies_ns)
            summary["client_cpu_cores"] = round(window.client_cpu / window.seconds, 3)
            phases[phase] = summary
        overload = phases["overload"]
        end = timeline.samples[-1]["t"]
        last = [
            s["deliveries_per_s"]
            for s in timeline.samples
            if s["phase"] == "overload" and s["t"] > end - sizes.sustained_last
        ]
        overload["sustained_deliveries_per_s"] = round(statistics.median(last), 1)
        overload["sustained_samples"] = len(last)
        # The time those samples cover: less than `sustained_last` samples when the
        # controller could not sample every second.
        overload["sustained_seconds"] = round(
            end - _before_first(timeline.samples, end - sizes.sustained_last), 2
        )
        peak_sustained = phases["peak"]["median_deliveries_per_s"]
        overload["ratio_to_peak"] = ratio(overload["sustained_deliveries_per_s"], peak_sustained)
        overload["streams_kept"] = overload["open_at_end"]
        point["phases"] = phases
        point["drain"] = _drain(timeline, producer, sizes)
        point["checks"] = pool.final(producer.last_seq())
        status = pool.status()
        point["checks"]["reconnects"] = status["reconnects"]
        point["checks"]["lost_connections"] = status["lost_connections"]
        point["checks"]["produced"] = producer.sent
        point["checks"]["producer_errors"] = producer.errors
        point["reconnect_delays"] = status["reconnect_delays"]
        point["refused"] = {str(k): v for k, v in status["refused"].items()}
        point["refused_streams"] = status["refused_streams"]
        point["samples"] = timeline.samples
        point["server_rss_base_mib"] = round(base.rss / MIB, 1)
        checks = point["checks"]
        point["correct"] = not (
            checks["lost"] or checks["duplicated"] or checks["streams_with_id_errors"]
        )
        if not target.alive():
            point["correct"] = False
            point["reason"] = "the server exited during the run"
        return point
    finally:
        if producer is not None:
            producer.stop()
        if pool is not None:
            pool.close()
        target.stop()


def _drain(timeline: Timeline, producer: ProducerHandle, sizes: OverloadSizes) -> dict[str, Any]:
    """Stop the producer; sample until every stream has settled (caught up with each key's
    last record, or refused and waiting), bounded by `drain_timeout`."""
    logger.info(
        "  drain: the producer stops; up to %g s for the streams to catch up", sizes.drain_timeout
    )
    producer.stop()
    # The overload ran until now (ending its window took time): its last sample, so the
    # drain's counts start when the producer stopped.
    timeline.sample("overload")
    timeline.pool.set_targets(producer.last_seq())
    before = _snapshot(timeline)
    started = time.monotonic()
    samples = timeline.run_phase("drain", sizes.drain_timeout, settled_stops=True)
    seconds = time.monotonic() - started
    summary = phase_summary(samples, before, _snapshot(timeline))
    status = timeline.status
    settled = status["settled"] >= timeline.streams
    summary.update(
        {
            "settled": settled,
            "settled_in_s": round(seconds, 2) if settled else None,
            "caught_up": status["caught_up"],
            "refused_waiting": status["refused_waiting"],
        }
    )
    return summary


def _before_first(samples: list[dict[str, Any]], since: float) -> float:
    """The time of the last sample at or before `since`: where the interval of the first
    sample after `since` starts."""
    return max((s["t"] for s in samples if s["t"] <= since), default=0.0)


def storm_point(run: RunContext, target: Target, sizes: OverloadSizes) -> dict[str, Any]:
    """A resume storm under a load every server sustains, sampled (module docstring)."""
    streams, rate = sizes.storm
    spec = fanout_spec(run, streams, rate)

    def step(load: LoadRun) -> dict[str, Any]:
        return storm(load, sizes.storm_timeout, STORM_SAMPLE_EVERY)

    point = run_load(target, spec, step)
    point["kind"] = "storm"
    point["listen_backlog"] = target.listen_backlog
    return storm_verdict(point)


def run(run: RunContext) -> dict[str, Any]:
    sizes = run.sizes.overload
    results: dict[str, Any] = {
        "description": DESCRIPTION,
        "streams": sizes.streams,
        "peak_rate": sizes.peak_rate,
        "rate": sizes.rate,
        "peak_window_s": sizes.peak_window,
        "window_s": sizes.window,
        "sustained_last_s": sizes.sustained_last,
        "drain_timeout_s": sizes.drain_timeout,
        "storm": list(sizes.storm),
        "kernel": system.listen_sysctls(),
        "targets": {},
    }
    for name, target in run.targets.items():
        if name in run.unavailable:
            results["targets"][name] = not_run(target.label, run.unavailable[name])
            continue
        if name in NOT_RUN:
            results["targets"][name] = not_run(target.label, NOT_RUN[name])
            continue
        result = target_result(target)
        results["targets"][name] = result
        guarded(result, partial(overload_point, run, target, sizes))
        guarded(result, partial(storm_point, run, target, sizes))
    return results
