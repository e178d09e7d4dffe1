"""The benchmark harness works end to end: `make bench-quick`, asserted on its results file.

This checks the harness, never the figures: every scenario ran for ssegate and both peers
(installing them on a fresh machine: benchmarks/.venv-peers, apt-get nginx + nchan) and
produced a result with the expected fields, and ssegate lost and repeated nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka import KafkaCluster

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {
    "idle",
    "fanout",
    "filtered",
    "resume-storm",
    "catch-up",
    "workers",
    "overload",
    "tls-http2",
    "schemas",
}
# `tls-http2` names its targets by what they speak.
TLS_TARGETS = ("ssegate", "ssegate_tls", "nchan_tls", "ssegate_h2", "ssegate_handshakes")
# `schemas` runs two ssegate targets: an Avro topic with a model, the same topic as JSON.
SCHEMAS_TARGETS = ("ssegate_avro", "ssegate_json")
SCHEMAS_KINDS = {"keyed", "fanout", "catch-up"}
LOAD_FIELDS = {"deliveries_per_s", "produced_per_s", "server", "latency_ms", "client", "checks"}
CHECK_FIELDS = {"lost", "duplicated", "undelivered", "streams_with_id_errors"}
PHASE_FIELDS = {"deliveries_per_s", "median_deliveries_per_s", "refused", "reconnects", "listen"}
# Where a target is absent or not run by design (the scenario says why in its result).
BY_DESIGN = {
    ("catch-up", "nchan"): "not run",
    ("workers", "python_stack"): "absent",
    ("overload", "nchan"): "not run",
    ("overload", "python_stack"): "not run",
    ("tls-http2", "python_stack"): "absent",
    ("tls-http2", "nchan"): "absent",
    ("schemas", "ssegate"): "absent",
    ("schemas", "python_stack"): "absent",
    ("schemas", "nchan"): "absent",
}


def run_quick(kafka: KafkaCluster, out: Path) -> dict[str, Any]:
    env = dict(os.environ, KAFKA_BOOTSTRAP=kafka.bootstrap)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def check_overload_point(where: str, target: str, point: dict[str, Any]) -> None:
    """`overload`'s overload point: it has no `held` (nothing is owed beyond capacity), only
    the phases, the per-second samples and the checks; its figures are not asserted."""
    assert {"open", "phases", "drain", "samples", "checks", "reconnect_delays"} <= set(point), (
        where,
        sorted(point),
    )
    phases = point["phases"]
    for phase in ("peak", "overload"):
        assert PHASE_FIELDS | {"server", "latency_ms"} <= set(phases[phase]), (where, phase)
        assert {"before", "after", "delta"} <= set(phases[phase]["listen"]), (where, phase)
    assert {"sustained_deliveries_per_s", "ratio_to_peak", "streams_kept"} <= set(
        phases["overload"]
    ), where
    assert PHASE_FIELDS | {"settled", "settled_in_s", "caught_up"} <= set(point["drain"]), where
    assert point["samples"], where
    assert {"t", "phase", "deliveries_per_s", "open", "refused", "reconnects", "listen"} <= set(
        point["samples"][0]
    ), where
    assert {"peak", "overload", "drain"} <= {s["phase"] for s in point["samples"]}, where
    checks = point["checks"]
    assert {"lost", "duplicated", "streams_with_id_errors"} <= set(checks), where
    if target == "ssegate":
        assert checks["lost"] == 0, (where, checks)
        assert checks["duplicated"] == 0, (where, checks)
        assert checks["streams_with_id_errors"] == 0, (where, checks)
        assert point["correct"], (where, point.get("reason"))


def check_handshakes(where: str, point: dict[str, Any]) -> None:
    assert {"handshakes", "resumed", "failed", "seconds", "per_second"} <= set(point), where
    assert {"server_cpu_ms_per_handshake", "resume"} <= set(point), where
    assert point["held"], (where, point)
    if point["resume"]:
        assert point["resumed"] > 0, (where, point)  # TLS 1.3 tickets were offered and taken
    else:
        assert point["resumed"] == 0, (where, point)


def check_point(scenario: str, target: str, point: dict[str, Any]) -> None:
    where = f"{scenario}/{target}"
    if point.get("kind") == "handshakes":
        check_handshakes(where, point)
        return
    if point.get("kind") == "overload":
        check_overload_point(where, target, point)
        return
    assert "held" in point, where
    if scenario == "catch-up" or point.get("kind") == "catch-up":
        assert {"records", "received", "records_per_s", "server", "checks"} <= set(point), where
    elif "open" in point and point["open"]["opened"] < point["streams"]:
        assert point["held"] is False, where  # a peer that fell over
        assert point["reason"], where
        return
    else:
        assert set(point) >= LOAD_FIELDS, (where, sorted(point))
        assert {"cpu_cores", "rss_mib", "rss_per_stream_kib"} <= set(point["server"]), where
        assert {"p50", "p99", "max", "samples"} <= set(point["latency_ms"]), where
    if scenario == "resume-storm" or point.get("kind") == "storm":
        assert {"reopen_s", "caught_up_s", "caught_up"} <= set(point["storm"]), where
    if point.get("kind") == "storm":
        assert {"before", "after", "delta"} <= set(point["storm"]["listen"]), where
        assert {"refused", "connect_errors"} <= set(point["storm"]), where
    assert set(point["checks"]) >= CHECK_FIELDS, where
    if target == "ssegate":
        checks = point["checks"]
        assert checks["lost"] == 0, (where, checks)
        assert checks["duplicated"] == 0, (where, checks)
        assert checks["undelivered"] == 0, (where, checks)
        assert checks["streams_with_id_errors"] == 0, (where, checks)
        assert point["held"], (where, point.get("reason"))


@pytest.mark.kafka
@pytest.mark.timeout(1800)
def test_bench_quick_runs_every_scenario_for_every_target(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    results = run_quick(kafka, tmp_path / "quick.json")
    assert results["profile"] == "quick"
    assert {"cores", "memory_gib", "kernel", "python"} <= set(results["machine"])
    assert results["unavailable"] == {}, results["unavailable"]
    assert set(results["scenarios"]) == SCENARIOS
    for target in TLS_TARGETS:
        outcome = results["scenarios"]["tls-http2"]["targets"][target]
        assert outcome["status"] == "ok", (target, outcome.get("reason"))
        assert outcome["points"], target
        for point in outcome["points"]:
            # ssegate's checks are strict whatever it speaks; nchan's are recorded only.
            check_point("tls-http2", "nchan" if target == "nchan_tls" else "ssegate", point)
    guarded_storm = results["scenarios"]["resume-storm"]["targets"]["ssegate_guard"]
    assert guarded_storm["status"] == "ok", guarded_storm.get("reason")
    for point in guarded_storm["points"]:
        check_point("resume-storm", "ssegate", point)  # every reconnect carried a token
    schemas = results["scenarios"]["schemas"]
    for target in SCHEMAS_TARGETS:
        outcome = schemas["targets"][target]
        assert outcome["status"] == "ok", (target, outcome.get("reason"))
        assert {point["kind"] for point in outcome["points"]} == SCHEMAS_KINDS, target
        for point in outcome["points"]:
            check_point("schemas", "ssegate", point)  # the same strict checks as ssegate's
    assert {row["kind"] for row in schemas["model_cost"]} == SCHEMAS_KINDS
    assert {"best_us_per_record", "median_us_per_record"} <= set(schemas["in_process"])
    h2_point = results["scenarios"]["tls-http2"]["targets"]["ssegate_h2"]["points"][0]
    assert (h2_point["protocol"], h2_point["connections"]) == ("h2-tls", h2_point["streams"] // 10)
    for scenario, result in results["scenarios"].items():
        for target in ("ssegate", "python_stack", "nchan"):
            design = BY_DESIGN.get((scenario, target))
            if design == "absent":
                assert target not in result["targets"], (scenario, target)
                continue
            outcome = result["targets"][target]
            if design == "not run":
                assert outcome["status"] == "not run", (scenario, target)
                assert outcome["reason"], (scenario, target)
                continue
            assert outcome["status"] == "ok", (scenario, target, outcome.get("reason"))
            assert outcome["points"], (scenario, target)
            for point in outcome["points"]:
                check_point(scenario, target, point)
