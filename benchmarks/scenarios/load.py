"""One load point, the same way for every target: start, open, produce, measure, check.

1. A fresh topic (Kafka targets) and a fresh server with one feed.
2. The client processes open every stream (bounded by `open_timeout`); the time from the
   first connect to the last `200` is the open time.
3. The producer starts at `rate`; after `warmup`, a window of `window` seconds measures:
   deliveries the clients counted, server CPU (user+sys of its process tree) and RSS, client
   and broker CPU, and the latency of every event on the sampling streams.
4. An optional `extra` step runs while the load continues (resume storm, profile).
5. The producer stops; every stream must then receive each key's last record (bounded by
   `drain_timeout`); the clients report lost, duplicated and undelivered events and id errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from benchmarks.kafka_probe import KafkaLatencyProbe
from benchmarks.loadgen.pool import ClientPool, StreamSpec
from benchmarks.producers.pacing import ProducerHandle
from benchmarks.records import key_names
from benchmarks.stats import percentiles_ms
from benchmarks.system import ProcessTree
from benchmarks.targets.base import Feed, Target
from ssegate.devkafka.topics import create_topic

MIB = 1024 * 1024
ID_CHECK_STREAMS = 20  # streams that decode every read's id
LATENCY_STREAMS = 500  # streams that record every event's latency


@dataclass
class LoadSpec:
    """A load point."""

    streams: int
    rate: float  # records per second into the feed (0: none)
    feed: Feed
    keys: list[str] = field(default_factory=lambda: key_names(1))
    pin_partitions: bool = True  # key i -> partition i % partitions (else by key hash)
    window: float = 15.0
    warmup: float = 3.0
    open_timeout: float = 120.0
    drain_timeout: float = 20.0
    processes: int = 2
    workers: int = 1
    # How the clients connect: None for the target's own (HTTP/1.1, over TLS when it speaks
    # TLS), or "h2-tls" with `per_connection` streams on each HTTP/2 connection.
    protocol: str | None = None
    per_connection: int = 1

    @property
    def filtered(self) -> bool:
        return self.feed.filtered


@dataclass
class LoadRun:
    """What an `extra` step may use while the load runs."""

    spec: LoadSpec
    target: Target
    pool: ClientPool
    producer: ProducerHandle | None
    server: ProcessTree
    point: dict[str, Any]  # the figures so far (the window's)


Extra = Callable[[LoadRun], dict[str, Any]]


def stream_specs(
    target: Target, spec: LoadSpec, latency_streams: int = LATENCY_STREAMS
) -> list[StreamSpec]:
    every = max(1, spec.streams // latency_streams)
    check_every = max(1, spec.streams // ID_CHECK_STREAMS)
    specs = []
    for index in range(spec.streams):
        key = spec.keys[index % len(spec.keys)] if spec.filtered else None
        specs.append(
            StreamSpec(
                path=target.path(spec.feed, key),
                keys=(key,) if key is not None else (),
                sample=index % every == 0,
                check_ids=index % check_every == 0,
                headers=target.stream_headers(index),
            )
        )
    return specs


def expected_deliveries(spec: LoadSpec, records: float) -> float:
    """Deliveries `records` records owe: all streams each, or the streams of their key."""
    if not spec.filtered:
        return float(records * spec.streams)
    subscribed_keys = min(len(spec.keys), spec.streams)
    return records * (subscribed_keys / len(spec.keys)) * (spec.streams / subscribed_keys)


def prepare_feed(target: Target, spec: LoadSpec) -> None:
    if target.kafka:
        create_topic(target.context.bootstrap, spec.feed.topic, spec.feed.partitions)


def run_load(target: Target, spec: LoadSpec, extra: Extra | None = None) -> dict[str, Any]:
    """Run one load point against `target` (module docstring); the point's figures."""
    prepare_feed(target, spec)
    target.start([spec.feed], spec.workers)
    point: dict[str, Any] = {
        "streams": spec.streams,
        "rate": spec.rate,
        "workers": spec.workers,
        "keys": len(spec.keys),
    }
    producer: ProducerHandle | None = None
    pool: ClientPool | None = None
    probe: KafkaLatencyProbe | None = None
    try:
        server = ProcessTree(target.pids())
        broker = ProcessTree([target.context.broker_pid] if target.context.broker_pid else [])
        base = server.sample()
        pool = ClientPool(spec.processes)
        notes = pool.open(
            target.port,
            stream_specs(target, spec),
            terminator=target.terminator,
            id_kind=target.id_kind,
            exact_ids=not spec.filtered,
            protocol=spec.protocol or ("h1-tls" if target.tls else "h1"),
            per_connection=spec.per_connection,
        )
        opened = pool.wait_open(spec.open_timeout)
        point["open"] = {
            "opened": opened.opened,
            "seconds": _round(opened.seconds),
            "refused": opened.refused,
            "errors": opened.errors,
            "fd_notes": notes,
        }
        if opened.opened < spec.streams:
            point["held"] = False
            point["reason"] = (
                f"opened {opened.opened} of {spec.streams} streams in {spec.open_timeout:g} s"
            )
            point["server"] = _rss(base.rss, server.sample().rss, spec.streams)
            return point
        if spec.rate > 0:
            partitions = None
            if spec.pin_partitions:
                partitions = [i % spec.feed.partitions for i in range(len(spec.keys))]
            if target.kafka:
                probe = KafkaLatencyProbe(
                    target.context.bootstrap,
                    spec.feed.topic,
                    spec.feed.partitions,
                    target.encoding,
                ).start()
            producer = target.producer(spec.feed, spec.keys, spec.rate, partitions).start()
        time.sleep(spec.warmup)
        point.update(_window(spec, pool, producer, server, broker, base.rss, probe))
        if probe is not None:
            point["kafka_latency_ms"] = probe.stop()
            probe = None
        if extra is not None:
            point.update(extra(LoadRun(spec, target, pool, producer, server, point)))
        point["checks"] = _finish(spec, pool, producer)
        if not target.alive():
            point["held"] = False
            point["reason"] = "the server exited during the run"
        return point
    finally:
        if probe is not None:
            probe.stop()
        if producer is not None:
            producer.stop()
        if pool is not None:
            pool.close()
        target.stop()


def _window(
    spec: LoadSpec,
    pool: ClientPool,
    producer: ProducerHandle | None,
    server: ProcessTree,
    broker: ProcessTree,
    base_rss: int,
    probe: KafkaLatencyProbe | None,
) -> dict[str, Any]:
    status_before = pool.status()
    server_before, server_t0 = server.sample(), time.monotonic()
    broker_before = broker.sample()
    machine_before = psutil.cpu_times()
    client_cpu = pool.window_start()
    sent_before, sent_t0 = (producer.sent if producer is not None else 0), time.monotonic()
    if probe is not None:
        probe.record(True)
    time.sleep(spec.window)
    if probe is not None:
        probe.record(False)
    window = pool.window_end(client_cpu)
    sent_after, sent_t1 = (producer.sent if producer is not None else 0), time.monotonic()
    machine_after = psutil.cpu_times()
    server_after, server_t1 = server.sample(), time.monotonic()
    broker_after = broker.sample()
    status_after = pool.status()
    # Every rate over its own interval: the clients' windows (each process's own), the
    # producer's count between two reads, the server's CPU between two samples.
    produced_per_s = (sent_after - sent_before) / max(sent_t1 - sent_t0, 1e-9)
    server_seconds = max(server_t1 - server_t0, 1e-9)
    server_cores = ProcessTree.cpu_between(server_before, server_after) / server_seconds
    client_cores = window.client_cpu / window.seconds
    rate = window.rate
    expected = expected_deliveries(spec, produced_per_s)
    result: dict[str, Any] = {
        "window_s": round(window.seconds, 2),
        "produced_per_s": round(produced_per_s, 1),
        "deliveries_per_s": round(rate, 1),
        "expected_per_s": round(expected, 1),
        "server": {
            "cpu_cores": round(server_cores, 3),
            "cpu_us_per_delivery": round(server_cores / rate * 1e6, 3) if rate else None,
            "cpu_s_per_million": round(server_cores / rate * 1e6, 3) if rate else None,
            "processes": server_after.processes,
            **_rss(base_rss, server_after.rss, spec.streams),
        },
        "client": {
            "processes": spec.processes,
            "cpu_cores": round(client_cores, 3),
            "cpu_us_per_delivery": round(client_cores / rate * 1e6, 3) if rate else None,
        },
        "machine_busy_cores": round(_busy(machine_before, machine_after) / server_seconds, 2),
        "broker_cpu_cores": round(
            ProcessTree.cpu_between(broker_before, broker_after) / server_seconds, 3
        ),
        "latency_ms": percentiles_ms(window.latencies_ns),
        "reconnects_in_window": status_after["reconnects"] - status_before["reconnects"],
        "open_at_window_end": status_after["open"],
    }
    problems = []
    if status_after["open"] < spec.streams:
        problems.append(f"{status_after['open']} of {spec.streams} streams open at the end")
    if expected and rate < 0.9 * expected:
        problems.append(f"delivered {rate / expected:.0%} of the events owed")
    if spec.rate and produced_per_s < 0.9 * spec.rate:
        problems.append(f"the producer reached {produced_per_s:,.0f} of {spec.rate:,.0f} records/s")
    result["held"] = not problems
    if problems:
        result["reason"] = "; ".join(problems) + " in the window"
    return result


def _finish(spec: LoadSpec, pool: ClientPool, producer: ProducerHandle | None) -> dict[str, Any]:
    """Stop the producer, wait for every stream to get each key's last record, check."""
    last_seq: dict[str, int] = {}
    drained_s = None
    if producer is not None:
        producer.stop()
        last_seq = producer.last_seq()
        pool.set_targets(last_seq)
        started = time.monotonic()
        deadline = started + spec.drain_timeout
        while time.monotonic() < deadline:
            if pool.status()["caught_up"] >= spec.streams:
                drained_s = round(time.monotonic() - started, 2)
                break
            time.sleep(0.25)
    checks = pool.final(last_seq)
    checks["drained_in_s"] = drained_s
    checks["producer_errors"] = producer.errors if producer is not None else 0
    checks["produced"] = producer.sent if producer is not None else 0
    status = pool.status()
    checks["reconnects"] = status["reconnects"]
    checks["lost_connections"] = status["lost_connections"]
    return checks


def _busy(before: Any, after: Any) -> float:
    """CPU seconds the whole machine was busy between two `psutil.cpu_times()`."""
    idle = (after.idle - before.idle) + (after.iowait - before.iowait)
    total = sum(after) - sum(before)
    return float(total - idle)


def _rss(base: int, now: int, streams: int) -> dict[str, Any]:
    return {
        "rss_mib": round(now / MIB, 1),
        "rss_base_mib": round(base / MIB, 1),
        "rss_per_stream_kib": round((now - base) / streams / 1024, 2) if streams else None,
    }


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None
