"""`catch-up`: one stream replays a topic's whole history from Kafka.

The topic (3 partitions) is filled with `catchup_records` records before the server starts;
one stream with no id on a route starting at `earliest` then reads all of them. ssegate
keeps the newest 100,000 in its ring, so it serves the older ones through a catch-up
reader and hands over to the ring; the Python stack's consumer reads from the beginning.
nchan has no Kafka to replay from, so it is not part of this scenario.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from benchmarks.loadgen.pool import ClientPool, StreamSpec
from benchmarks.producers.kafka import produce_bulk
from benchmarks.records import key_names
from benchmarks.scenarios.common import RunContext, guarded, not_run, target_result, topic_name
from benchmarks.system import ProcessTree
from benchmarks.targets.base import Feed, Target
from ssegate.devkafka.topics import create_topic

DESCRIPTION = (
    "One stream with no id on a route starting at `earliest` replays every record of a "
    "topic filled beforehand: records/s from the connect to the last record."
)
PARTITIONS = 3


def replay(run: RunContext, target: Target, feed: Feed, last_seq: dict[str, int]) -> dict[str, Any]:
    records = sum(seq + 1 for seq in last_seq.values())
    target.start([feed])
    pool: ClientPool | None = None
    try:
        server = ProcessTree(target.pids())
        pool = ClientPool(1)
        pool.set_targets(last_seq)
        before = server.sample()
        pool.open(
            target.port,
            [StreamSpec(target.path(feed), check_ids=True)],
            terminator=target.terminator,
            id_kind=target.id_kind,
            exact_ids=True,
        )
        deadline = time.monotonic() + run.sizes.catchup_timeout
        status = pool.status()
        while status["caught_up"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
            status = pool.status()
        after = server.sample()
        started = status["connect_started"] or time.monotonic()
        done = status["last_caught_up_at"]
        elapsed = (done if done else time.monotonic()) - started
        events = status["events"]
        cpu = ProcessTree.cpu_between(before, after)
        point: dict[str, Any] = {
            "records": records,
            "received": events,
            "seconds": round(elapsed, 2),
            "records_per_s": round(events / elapsed, 1) if elapsed > 0 else None,
            "held": done is not None,
            "server": {
                "cpu_s": round(cpu, 2),
                "cpu_us_per_record": round(cpu / events * 1e6, 3) if events else None,
                "rss_mib": round(after.rss / 2**20, 1),
            },
            "client_cpu_s": round(status["cpu"], 2),
        }
        if done is None:
            point["reason"] = (
                f"received {events} of {records} records in {run.sizes.catchup_timeout:g} s"
            )
        point["checks"] = pool.final(last_seq)
        return point
    finally:
        if pool is not None:
            pool.close()
        target.stop()


def run(run: RunContext) -> dict[str, Any]:
    count = run.sizes.catchup_records
    results: dict[str, Any] = {"description": DESCRIPTION, "records": count, "targets": {}}
    kafka_targets = {
        name: target
        for name, target in run.targets.items()
        if target.kafka and name not in run.unavailable
    }
    last_seq: dict[str, int] = {}
    feed = Feed(topic_name("catchup"), start="earliest", partitions=PARTITIONS)
    if kafka_targets:
        create_topic(run.context.bootstrap, feed.topic, PARTITIONS)
        started = time.monotonic()
        last_seq = produce_bulk(run.context.bootstrap, feed.topic, key_names(PARTITIONS), count)
        results["fill_s"] = round(time.monotonic() - started, 1)
    for name, target in run.targets.items():
        if name in run.unavailable:
            results["targets"][name] = not_run(target.label, run.unavailable[name])
        elif not target.kafka:
            results["targets"][name] = not_run(
                target.label,
                "nchan has no Kafka to replay from; its history is its in-memory message "
                "buffer, which the resume-storm scenario exercises",
            )
        else:
            result = target_result(target)
            results["targets"][name] = result
            guarded(result, partial(replay, run, target, feed, last_seq))
    return results
