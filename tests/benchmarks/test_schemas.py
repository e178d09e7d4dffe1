"""The `schemas` scenario's parts that need no broker: the Avro records, the target's
configuration, the model's cost per load, and the report section."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml
from benchmarks.records import (
    AVRO_SCHEMA,
    AVRO_SCHEMA_TEXT,
    DATA_PATTERN,
    avro_timestamp,
    make_avro_record,
    make_record,
    record_encoder,
)
from benchmarks.report_schemas import schemas_section
from benchmarks.scenarios.schemas import JSON_NAME, model_costs
from benchmarks.targets.base import Context, Feed
from benchmarks.targets.ssegate import Ssegate, ssegate_command

from ssegate.schemas import avro
from ssegate.schemas.mapping import DEFAULT_MAPPING
from ssegate.schemas.schema import Schema

CASES = [("k0000", 0, 0), ("k0999", 123_456_789, 1_796_217_723_178_717_411), ("k1", 2**40, 7)]


@pytest.mark.parametrize(("key", "seq", "now_ns"), CASES)
def test_avro_record_is_fastavros_encoding_of_the_json_record(
    key: str, seq: int, now_ns: int
) -> None:
    written = io.BytesIO()
    record = make_record(key, seq, now_ns)
    fastavro.schemaless_writer(written, fastavro.parse_schema(AVRO_SCHEMA), json.loads(record))
    assert make_avro_record(key, seq, now_ns) == written.getvalue()
    assert avro_timestamp(make_avro_record(key, seq, now_ns)) == now_ns


@pytest.mark.parametrize(("key", "seq", "now_ns"), CASES)
def test_ssegates_avro_model_writes_the_json_record_the_clients_read(
    key: str, seq: int, now_ns: int
) -> None:
    decoder = avro.compile_decoder(Schema("avro", AVRO_SCHEMA_TEXT), DEFAULT_MAPPING)
    converted = decoder.to_json(make_avro_record(key, seq, now_ns), 0, None)
    assert converted == make_record(key, seq, now_ns)
    found = DATA_PATTERN.findall(b"id:x\ndata:" + converted + b"\n\n")
    assert found == [(key.encode(), str(seq).encode(), str(now_ns).encode())]


def test_record_encoder_names() -> None:
    assert record_encoder("json") is make_record
    assert record_encoder("avro") is make_avro_record
    with pytest.raises(ValueError, match="unknown record encoding"):
        record_encoder("protobuf")
    assert avro_timestamp(b"\x0a") is None  # cut short: not a record


def test_avro_target_configuration_is_one_ssegate_accepts(tmp_path: Path) -> None:
    target = Ssegate(Context("127.0.0.1:9092", tmp_path), avro=True)
    target.port = 7999
    feeds = [Feed("bench-a", partitions=3), Feed("bench-b", filtered=True)]
    config = target.config(feeds)
    assert (target.name, target.encoding) == ("ssegate_avro", "avro")
    assert set(config["catalogs"]["bench"]["subjects"]) == {"bench-a-value", "bench-b-value"}
    assert all(
        route["value"] == {"model": "avro", "catalog": "bench"} for route in config["routes"]
    )
    assert "catalogs" not in Ssegate(Context("127.0.0.1:9092", tmp_path)).config(feeds)
    path = tmp_path / "ssegate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    done = subprocess.run(
        [*ssegate_command(), "check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _point(kind: str, round_: int, us: float, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "round": round_,
        "streams": 100,
        "rate": 1000.0,
        "deliveries_per_record": 10.0,
        "held": True,
        "server": {"cpu_us_per_record": us},
        **extra,
    }


def _scenario() -> dict[str, Any]:
    avro_points = [_point("keyed", r, us) for r, us in enumerate((110.0, 130.0, 150.0))]
    json_points = [_point("keyed", r, us) for r, us in enumerate((100.0, 125.0, 120.0))]
    avro_points.append(
        {"kind": "catch-up", "records": 1000, "held": True, "server": {"cpu_us_per_record": 14.0}}
    )
    json_points.append(
        {"kind": "catch-up", "records": 1000, "held": False, "server": {"cpu_us_per_record": 6.0}}
    )
    return {
        "description": "d",
        "rate": 1000.0,
        "keys": 10,
        "window_s": 12.0,
        "rounds": 3,
        "catchup_records": 1000,
        "goal_us_per_record": 10.0,
        "in_process": {
            "records": 10,
            "rounds": 9,
            "avro_bytes": 222,
            "json_bytes": 256,
            "best_us_per_record": 3.5,
            "median_us_per_record": 3.7,
        },
        "targets": {
            "ssegate_avro": {"label": "a", "status": "ok", "reason": "", "points": avro_points},
            JSON_NAME: {"label": "j", "status": "ok", "reason": "", "points": json_points},
        },
    }


def test_model_cost_is_the_median_of_each_rounds_difference() -> None:
    keyed, catchup = model_costs(_scenario())
    assert keyed["kind"] == "keyed"
    assert keyed["rounds"] == 3
    assert keyed["model_cost_us_per_record"] == 10.0  # differences 10, 5, 30
    assert keyed["model_cost_range"] == [5.0, 30.0]
    assert (keyed["avro_us_per_record"], keyed["json_us_per_record"]) == (130.0, 120.0)
    assert keyed["goal_met"]
    assert keyed["all_held"]
    assert catchup["model_cost_us_per_record"] == 8.0
    assert not catchup["all_held"]


def test_report_section_shows_the_costs_and_the_goal() -> None:
    scenario = _scenario()
    scenario["model_cost"] = model_costs(scenario)
    text = "\n".join(schemas_section(scenario))
    assert "## schemas" in text
    assert "goal ≤ 10 µs" in text
    assert "**10.0** (5.0 to 30.0)" in text
    assert "**3.50 µs per record**" in text
    assert "met (a run did not hold its load)" in text  # the catch-up's JSON run
    assert "met (the rounds differ by more than the goal)" in text  # keyed: 5 to 30
    assert "| 35.0 |" in text  # converted per stream: 10 deliveries per record, 3.5 us each
