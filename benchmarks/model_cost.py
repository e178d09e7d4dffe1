"""What ssegate's Avro model costs one record, alone: the benchmark records (records.py) as
Avro through the decoder an inline Avro model compiles (decode, validate, encode as JSON),
in this process, on one core. Process CPU time, best and median of `rounds` rounds of
`records` records. The JSON topic without a model does none of this work, so this is the
figure the `schemas` scenario's server-side difference estimates under load.

Run: `python -m benchmarks.model_cost` (the `schemas` scenario also runs it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from benchmarks.records import AVRO_SCHEMA_TEXT, key_names, make_avro_record, make_record


def measure(records: int = 10_000, rounds: int = 9) -> dict[str, Any]:
    from ssegate.schemas import avro
    from ssegate.schemas.mapping import DEFAULT_MAPPING
    from ssegate.schemas.schema import Schema

    decoder = avro.compile_decoder(Schema("avro", AVRO_SCHEMA_TEXT), DEFAULT_MAPPING)
    keys = key_names(3)
    now = time.time_ns()
    values = [make_avro_record(keys[i % 3], i // 3, now + i) for i in range(records)]
    expected = [make_record(keys[i % 3], i // 3, now + i) for i in range(records)]
    to_json = decoder.to_json
    if [to_json(value, 0, None) for value in values] != expected:
        raise RuntimeError("the Avro model's JSON differs from the JSON records")
    per_record = []
    for _ in range(rounds):
        started = time.process_time()
        for value in values:
            to_json(value, 0, None)
        per_record.append((time.process_time() - started) / records * 1e6)
    return {
        "records": records,
        "rounds": rounds,
        "avro_bytes": len(values[-1]),
        "json_bytes": len(expected[-1]),
        "best_us_per_record": round(min(per_record), 3),
        "median_us_per_record": round(statistics.median(per_record), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.records, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
