"""`tls-http2`: what TLS and HTTP/2 cost (issue 9).

1. TLS fan-out: N streams, every record to every stream, at each rate, for ssegate without
   TLS, ssegate over TLS (HTTP/1.1) and nchan over TLS (nginx `ssl`): server CPU per
   delivery. Each also holds N idle streams first, for the RSS per idle stream.
2. HTTP/2: N streams carried 10 to a connection (N/10 TLS connections, ALPN h2), at the
   first rate, against the same N streams over HTTP/1.1 and TLS (point 1).
3. Handshakes: a reconnect storm of N TLS connections to one ssegate worker, each a full
   handshake and a `/health` answer, then again offering a saved session (resumption):
   handshakes per second and server CPU per handshake.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from benchmarks.loadgen.handshakes import storm
from benchmarks.scenarios.common import RunContext, guarded, not_run, target_result, topic_name
from benchmarks.scenarios.fanout import fanout_spec
from benchmarks.scenarios.idle import idle_spec
from benchmarks.scenarios.load import LoadSpec, prepare_feed, run_load
from benchmarks.system import ProcessTree
from benchmarks.targets.base import Feed, Target
from benchmarks.targets.nchan import Nchan
from benchmarks.targets.ssegate import Ssegate

DESCRIPTION = (
    "TLS fan-out (ssegate plain, ssegate TLS, nchan TLS): CPU per delivery and RSS per idle "
    "stream; HTTP/2 with 10 streams per connection against HTTP/1.1; TLS handshakes per "
    "second in a reconnect storm, without and with session resumption."
)
H2_LABEL = "ssegate, TLS, HTTP/2"


def _idle_point(run: RunContext, target: Target, streams: int) -> dict[str, Any]:
    return {"kind": "idle", **run_load(target, idle_spec(run, streams))}


def _load_point(
    run: RunContext, target: Target, streams: int, rate: float, per_connection: int = 1
) -> dict[str, Any]:
    spec = fanout_spec(run, streams, rate)
    if per_connection > 1:
        spec = dataclasses.replace(spec, protocol="h2-tls", per_connection=per_connection)
    point = run_load(target, spec)
    point["kind"] = "fanout"
    point["protocol"] = spec.protocol or ("h1-tls" if target.tls else "h1")
    point["connections"] = -(-streams // per_connection)
    return point


def _storm_point(run: RunContext, target: Target, count: int, resume: bool) -> dict[str, Any]:
    feed = Feed(topic_name("tls-storm"))
    prepare_feed(target, LoadSpec(streams=0, rate=0.0, feed=feed))
    target.start([feed])
    try:
        server = ProcessTree(target.pids())
        before = server.sample()
        outcome = storm(target.port, count, resume=resume)
        after = server.sample()
    finally:
        target.stop()
    cpu = ProcessTree.cpu_between(before, after)
    done = outcome["handshakes"]
    return {
        "kind": "handshakes",
        "resume": resume,
        **outcome,
        "per_second": round(done / outcome["seconds"], 1) if outcome["seconds"] else None,
        "server_cpu_s": round(cpu, 3),
        "server_cpu_ms_per_handshake": round(cpu / done * 1000, 3) if done else None,
        "held": done == count and not outcome["failed"],
    }


def run(run: RunContext) -> dict[str, Any]:
    sizes = run.sizes.tls
    context = run.context
    results: dict[str, Any] = {"description": DESCRIPTION, "targets": {}}
    plain = run.targets.get("ssegate") or Ssegate(context)
    secure = Ssegate(context, tls=True)
    chosen: list[Target] = [plain, secure]
    if "nchan" in run.targets:
        nchan = Nchan(context, tls=True)
        if "nchan" in run.unavailable:
            results["targets"][nchan.name] = not_run(nchan.label, run.unavailable["nchan"])
        else:
            chosen.append(nchan)
    for target in chosen:
        result = results["targets"][target.name] = target_result(target)
        guarded(result, partial(_idle_point, run, target, sizes.streams))
        for rate in sizes.rates:
            guarded(result, partial(_load_point, run, target, sizes.streams, rate))
    h2 = target_result(secure)
    h2["label"] = f"{H2_LABEL} ({sizes.per_connection} streams per connection)"
    results["targets"]["ssegate_h2"] = h2
    guarded(
        h2, partial(_load_point, run, secure, sizes.streams, sizes.rates[0], sizes.per_connection)
    )
    handshakes = target_result(secure)
    results["targets"]["ssegate_handshakes"] = handshakes
    for resume in (False, True):
        guarded(handshakes, partial(_storm_point, run, secure, sizes.handshakes, resume))
    return results
