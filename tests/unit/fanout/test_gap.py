"""Retention deleted records a resuming client had not seen: one `event:gap` (its id past
the gap), then the records from the oldest offset left."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import ResumeOutcome, StartAt
from ssegate.fanout.subscriber import State
from ssegate.routing import StartPolicy
from ssegate.sources.memory import MemoryTopic
from tests.unit.fanout.expect import gap_frame, owed, progress_after, state, stream
from tests.unit.fanout.harness import Core, RecordingSink

EARLIEST = StartPolicy.EARLIEST


def resume(positions: dict[int, int]) -> StartAt:
    return StartAt(EARLIEST, positions=positions)


async def test_gap_before_a_catchup_resume() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=4, batch_size=3)
    topic = core.topic("t", partitions=2)
    for i in range(24):
        topic.append(i % 2, b"r%d" % i)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    topic.delete_before(0, 7)  # partition 0 keeps offsets 7..11; partition 1 is whole

    start = {0: 3, 1: 2}
    resumed = core.open("t", start=resume(start))
    await core.settle()
    after_gap = {0: 7, 1: 2}
    assert resumed.take() == (
        gap_frame("t", after_gap, {0: (3, 7)}) + stream(owed(topic, after_gap), after_gap)
    )
    assert core.subscribers[-1].outcome is ResumeOutcome.CATCHUP
    assert state(core.subscribers[-1]) is State.LIVE

    record = topic.append(0, b"live")
    await core.settle()
    assert resumed.take() == stream([record], progress_after(topic, len(topic.log) - 1))


async def test_gap_on_several_partitions_is_one_event() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=3)
    topic = core.topic("t", partitions=3)
    for i in range(30):
        topic.append(i % 3, b"r%d" % i)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    topic.delete_before(0, 4)
    topic.delete_before(2, 9)

    start = {0: 1, 1: 1, 2: 1}
    resumed = core.open("t", start=resume(start))
    await core.settle()
    after_gap = {0: 4, 1: 1, 2: 9}
    assert resumed.take() == (
        gap_frame("t", after_gap, {0: (1, 4), 2: (1, 9)})
        + stream(owed(topic, after_gap), after_gap)
    )


async def test_gap_found_in_the_ring_when_the_reader_started_at_the_log_start() -> None:
    """The reader began after retention had run: the ring covers the log's start, and a
    client with an older id is told what it lost without a catch-up source."""
    core = Core.build(asyncio.get_running_loop(), replay_chunk=2)
    topic = core.topic("t")
    for i in range(8):
        topic.append(0, b"r%d" % i)
    topic.delete_before(0, 5)
    resumed = core.open("t", start=resume({0: 2}))
    await core.settle()
    assert resumed.take() == gap_frame("t", {0: 5}, {0: (2, 5)}) + stream(topic.log[5:], {0: 5})
    assert core.subscribers[-1].outcome is ResumeOutcome.RING
    assert core.sources.catchups() == []


async def test_no_gap_event_at_the_oldest_offset_left_or_without_an_id() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=2)
    topic = core.topic("t")
    for i in range(10):
        topic.append(0, b"r%d" % i)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    topic.delete_before(0, 4)

    exact = core.open("t", start=resume({0: 4}))
    fresh = core.open("t")  # earliest, no id: nothing to report, it starts where the log does
    await core.settle()
    assert exact.take() == stream(topic.log[4:], {0: 4})
    assert fresh.take() == stream(topic.log[4:], {0: 4})


async def test_gap_reported_once_when_the_stream_needs_a_second_catchup() -> None:
    """After its gap, the stream reaches the ring, falls out of it again while replaying
    and reads on through a second catch-up source: one gap event, nothing twice."""
    core = Core.build(asyncio.get_running_loop(), ring_records=4, replay_chunk=1, batch_size=2)
    topic = core.topic("t")
    for i in range(12):
        topic.append(0, b"r%d" % i)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    live = core.sources.live("t")
    topic.delete_before(0, 3)

    resumed = core.open("t", start=resume({0: 1}))
    subscriber = core.subscribers[-1]
    await core.sources.turn()
    [first] = core.sources.catchups()
    while state(subscriber) is State.CATCHUP:
        assert first.deliver()
        await core.sources.turn(1)
    assert state(subscriber) is State.REPLAYING
    while state(subscriber) is State.REPLAYING:
        for i in range(4):
            topic.append(0, b"n%d" % i)
        assert live.deliver()
        await core.sources.turn(1)
    assert state(subscriber) is State.CATCHUP
    assert first.stopped
    [second] = core.sources.catchups()
    assert second is not first
    await core.settle()
    assert state(subscriber) is State.LIVE
    assert resumed.take() == gap_frame("t", {0: 3}, {0: (1, 3)}) + stream(topic.log[3:], {0: 3})


async def catchup_that_read_three(records: int) -> tuple[Core, MemoryTopic, RecordingSink]:
    """A stream resuming at offset 1 of `records` (ring of two): its catch-up source has
    handed over one batch of three."""
    core = Core.build(asyncio.get_running_loop(), ring_records=2, batch_size=3)
    topic = core.topic("t")
    for i in range(records):
        topic.append(0, b"r%d" % i)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    resumed = core.open("t", start=resume({0: 1}))
    await core.sources.turn()
    [catchup] = core.sources.catchups()
    assert catchup.deliver()
    assert resumed.take() == stream(topic.log[1:4], {0: 1})
    return core, topic, resumed


async def test_retention_during_a_catchup_moves_it_to_the_oldest_offset_left() -> None:
    """Deleted while the catch-up source was reading: like Kafka's reset to the earliest
    offset, it reads on from the oldest left (only a source's opening reports a gap)."""
    core, topic, resumed = await catchup_that_read_three(20)
    topic.delete_before(0, 12)
    await core.settle()
    assert resumed.take() == stream(topic.log[12:], {0: 12})
    assert state(core.subscribers[-1]) is State.LIVE


async def test_retention_of_all_a_catchup_had_left_does_not_stall_it() -> None:
    core, topic, resumed = await catchup_that_read_three(10)
    topic.delete_before(0, 10)  # everything it had left to read
    await core.settle()
    assert resumed.take() == b""
    assert state(core.subscribers[-1]) is State.LIVE
    record = topic.append(0, b"live")
    await core.settle()
    assert resumed.take() == stream([record], {0: 10})
