"""Topics with too many partitions for exact ids get compact ids (a time bound and the
event's own partition and offset); resuming from one misses nothing and repeats only what
was stamped after the bound (docs/guarantees.md, "Ids for any partition count")."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import ResumeOutcome, StartAt
from ssegate.kafka.eventid import CompactProgress, parse_event_id
from ssegate.routing import StartPolicy
from ssegate.sources.memory import MemoryTopic
from tests.unit.fanout.expect import blocks
from tests.unit.fanout.harness import Core

PARTITIONS = 80  # an exact id of 80 partitions is longer than COMPACT_ABOVE


def fill(topic: MemoryTopic, rounds: int) -> None:
    for i in range(rounds * PARTITIONS):
        topic.append(i % PARTITIONS, b"%d:%d" % (i % PARTITIONS, i // PARTITIONS))


def compact(ident: str | None) -> CompactProgress:
    assert ident is not None
    parsed = parse_event_id(ident)
    assert parsed.compact is not None, f"{ident!r} is exact"
    return parsed.compact


async def live_ids(core: Core, topic: MemoryTopic) -> list[CompactProgress]:
    sink = core.open("t")
    await core.settle()
    got = blocks(sink.take())
    assert [data for _, _, data in got] == [r.value for r in topic.log]
    return [compact(ident) for ident, _, _ in got]


async def test_compact_ids_carry_the_time_bound_and_the_events_own_position() -> None:
    batch = 100
    core = Core.build(asyncio.get_running_loop(), batch_size=batch)
    topic = core.topic("t", PARTITIONS)
    fill(topic, 3)
    ids = await live_ids(core, topic)

    # kafka.position rule 2, batch by batch: a partition's time is its last record's
    # stamp, or the wall clock once a batch found it read to its end; unknown is 0. The
    # bound is the minimum over the partitions.
    times: dict[int, int] = {}
    bounds = []
    for first in range(0, len(topic.log), batch):
        for record in topic.log[first : first + batch]:
            times[record.partition] = record.timestamp
            bounds.append(min(times.get(p, 0) for p in range(PARTITIONS)))
        read = topic.log[: first + batch]
        for p in range(PARTITIONS):
            if sum(1 for r in read if r.partition == p) == topic.end(p):
                times[p] = core.clock.wall
    assert bounds[0] == 0, "unknown until every partition passed a record"
    assert bounds[-1] > bounds[100] > 0
    for progress, bound, record in zip(ids, bounds, topic.log, strict=True):
        assert progress.partition_count == PARTITIONS
        assert progress.anchor == (record.partition, record.offset + 1)
        assert progress.time_ms == bound


async def test_resume_from_a_compact_id_misses_nothing() -> None:
    core = Core.build(asyncio.get_running_loop(), compact_id_margin_ms=0)
    topic = core.topic("t", PARTITIONS)
    fill(topic, 2)
    ids = await live_ids(core, topic)
    k = 150  # partition 70's second record
    progress = ids[k]
    bound = topic.log[k - PARTITIONS + 1].timestamp
    assert (progress.time_ms, progress.anchor) == (bound, (70, 2))

    resumed = core.open("t", start=StartAt(StartPolicy.EARLIEST, compact=progress))
    await core.settle()
    # Each partition from its first record stamped at or after the bound; 70 exactly.
    start = {p: 1 if p < 71 else 0 for p in range(PARTITIONS)} | {70: 2}
    owed = [r for r in topic.log if r.offset >= start[r.partition]]
    got = blocks(resumed.take())
    assert [data for _, _, data in got] == [r.value for r in owed]
    assert [compact(i).anchor for i, _, _ in got] == [(r.partition, r.offset + 1) for r in owed]
    seen_before = {(r.partition, r.offset) for r in topic.log[: k + 1]}
    assert seen_before | {(r.partition, r.offset) for r in owed} == {
        (r.partition, r.offset) for r in topic.log
    }, "nothing missed"
    assert core.subscribers[-1].outcome is ResumeOutcome.RING


async def test_the_margin_moves_the_resume_point_back() -> None:
    core = Core.build(asyncio.get_running_loop())  # 1 s: more than the log's whole span
    topic = core.topic("t", PARTITIONS)
    fill(topic, 2)
    ids = await live_ids(core, topic)
    resumed = core.open("t", start=StartAt(StartPolicy.EARLIEST, compact=ids[150]))
    await core.settle()
    owed = [r for r in topic.log if r.partition != 70 or r.offset >= 2]
    assert [data for _, _, data in blocks(resumed.take())] == [r.value for r in owed]
