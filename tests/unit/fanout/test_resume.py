"""Resuming from an id the ring covers: the records after it from memory, then live, with
nothing missed or repeated at the seam, however live batches fall between replay chunks."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import State
from ssegate.kafka.eventid import IdForm, parse_event_id
from ssegate.routing import StartPolicy
from ssegate.sources.memory import MemoryTopic
from tests.unit.fanout.expect import HEARTBEAT, blocks, owed, progress_after, state, stream
from tests.unit.fanout.harness import Core, RecordingSink

EARLIEST = StartPolicy.EARLIEST


def resume(positions: dict[int, int]) -> StartAt:
    return StartAt(EARLIEST, positions=positions)


async def test_resume_inside_the_ring_gets_the_rest_then_live() -> None:
    core = Core.build(asyncio.get_running_loop(), replay_chunk=2)
    topic = core.topic("t", partitions=2)
    for partition, value in [(0, b"a0"), (1, b"b0"), (0, b"a1"), (0, b"a2"), (1, b"b1")]:
        topic.append(partition, value)
    first = core.open("t")
    await core.settle()
    assert first.take() == stream(topic.log, {0: 0, 1: 0})

    start = {0: 2, 1: 1}  # the id of a1: a0, b0, a1 seen
    resumed = core.open("t", start=resume(start))
    await core.settle()
    assert resumed.take() == stream(owed(topic, start), start)
    assert resumed.take() == b""

    live = [topic.append(1, b"b2"), topic.append(0, b"a3\nsecond line")]
    await core.settle()
    expected = stream(live, {0: 3, 1: 2})
    assert resumed.take() == expected
    assert first.take() == expected


async def test_live_batches_between_replay_chunks() -> None:
    """One chunk per loop turn; a live batch lands between every two of them."""
    core = Core.build(asyncio.get_running_loop(), replay_chunk=2, batch_size=1)
    topic = core.topic("t", partitions=2)
    for i in range(6):
        topic.append(i % 2, b"r%d" % i)
    watcher = core.open("t")
    await core.settle()
    watcher.take()
    live = core.sources.live("t")

    start = {0: 1, 1: 0}
    resumed = core.open("t", start=resume(start))
    subscriber = core.subscribers[-1]
    assert state(subscriber) is State.REPLAYING
    received = resumed.take()
    assert received == b"", "even the first chunk is queued work"

    turns = 0
    while state(subscriber) is State.REPLAYING:
        before = len(topic.log)
        record = topic.append(turns % 2, b"live%d" % turns)
        assert live.deliver()
        assert watcher.take() == stream([record], progress_after(topic, before))
        assert resumed.take() == b"", "a replaying stream is not a live member yet"
        await core.sources.turn(1)
        received += resumed.take()
        turns += 1
    assert turns >= 3, "the replay spanned several turns with live batches between them"
    assert state(subscriber) is State.LIVE
    assert received == stream(owed(topic, start), start)

    tail = [topic.append(1, b"after"), topic.append(0, b"after")]
    await core.settle()
    at = progress_after(topic, len(topic.log) - 2)
    assert resumed.take() == stream(tail, at)
    assert watcher.take() == stream(tail, at)


async def resumed_from_the_start(
    values: list[bytes], **options: object
) -> tuple[Core, MemoryTopic, RecordingSink]:
    """`values` in the ring, a live stream, and a stream resuming before the first."""
    core = Core.build(asyncio.get_running_loop(), **options)
    topic = core.topic("t")
    for value in values:
        topic.append(0, value)
    core.open("t")
    await core.settle()
    return core, topic, core.open("t", start=resume({0: 0}))


async def test_a_chunk_ends_at_the_record_that_brings_it_to_the_byte_bound() -> None:
    """Values of 4 bytes, 10 per chunk: three records (12 bytes) per chunk, one per turn."""
    values = [b"r%03d" % i for i in range(7)]
    core, topic, resumed = await resumed_from_the_start(values, replay_chunk_bytes=10)
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[0:3], {0: 0})
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[3:6], {0: 3})
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[6:], {0: 6})
    assert state(core.subscribers[-1]) is State.LIVE


async def test_live_batch_right_before_the_last_chunk() -> None:
    """The batch lands when one record is left to replay: the final chunk carries both."""
    values = [b"r%d" % i for i in range(5)]
    core, topic, resumed = await resumed_from_the_start(values, replay_chunk=2)
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[0:2], {0: 0})
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[2:4], {0: 2})
    topic.append(0, b"r5")
    assert core.sources.live("t").deliver()
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[4:6], {0: 4})
    assert state(core.subscribers[-1]) is State.LIVE
    topic.append(0, b"r6")
    await core.settle()
    assert resumed.take() == stream(topic.log[6:], {0: 6})


async def test_streams_resuming_at_the_same_id_share_chunks_and_see_later_records() -> None:
    """A replay chunk is shared by streams resuming at the same place; the last (short)
    chunk must not be reused once the ring grew."""
    core = Core.build(asyncio.get_running_loop(), replay_chunk=2)
    topic = core.topic("t", partitions=2)
    for i in range(7):
        topic.append(i % 2, b"r%d" % i)
    core.open("t")
    await core.settle()
    start = {0: 1, 1: 1}

    one = core.open("t", start=resume(start))
    await core.settle()
    assert one.take() == stream(owed(topic, start), start)

    more = [topic.append(0, b"x"), topic.append(1, b"y")]
    await core.settle()
    assert one.take() == stream(more, {0: 4, 1: 3})

    two = core.open("t", start=resume(start))
    three = core.open("t", start=resume(start))
    await core.settle()
    assert core.fanout.hubs["t"].replays.hits > 0, "the chunks were shared"
    assert two.take() == stream(owed(topic, start), start)
    assert three.take() == stream(owed(topic, start), start)


async def test_resume_at_the_live_position_joins_with_nothing_to_replay() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t", partitions=2)
    topic.append(0, b"a")
    topic.append(1, b"b")
    core.open("t")
    await core.settle()
    resumed = core.open("t", start=resume({0: 1, 1: 1}))
    await core.sources.turn(1)
    assert resumed.take() == b""
    assert state(core.subscribers[-1]) is State.LIVE
    record = topic.append(1, b"c")
    await core.settle()
    assert resumed.take() == stream([record], {0: 1, 1: 1})


async def test_id_ahead_of_this_instances_reader_waits_for_it() -> None:
    """An id from an instance whose reader was further along: this one waits until its own
    reader gets there, then continues exactly after the id."""
    core = Core.build(asyncio.get_running_loop(), batch_size=3, heartbeat=4.0)
    topic = core.topic("t")
    for i in range(10):
        topic.append(0, b"r%d" % i)
    resumed = core.open("t", start=resume({0: 7}))
    await core.sources.turn()
    live = core.sources.live("t")
    assert live.deliver()
    await core.sources.turn()
    assert resumed.take() == b""
    assert state(core.subscribers[-1]) is State.WAITING
    core.clock.advance(4.0)
    core.fanout.tick()
    assert resumed.take() == HEARTBEAT, "the client's id has not moved: a comment"

    await core.settle()
    assert resumed.take() == stream(topic.log[7:], {0: 7})
    record = topic.append(0, b"r10")
    await core.settle()
    assert resumed.take() == stream([record], {0: 10})


async def test_an_id_missing_a_partition_reads_that_partition_from_its_start() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t", partitions=2)
    for i in range(4):
        topic.append(i % 2, b"r%d" % i)
    core.open("t")
    await core.settle()
    resumed = core.open("t", start=resume({0: 1}))
    await core.settle()
    assert resumed.take() == stream(owed(topic, {0: 1, 1: 0}), {0: 1, 1: 0})


async def test_key_form_ids_carry_the_same_progress_in_replay_and_live() -> None:
    core = Core.build(asyncio.get_running_loop(), replay_chunk=1)
    topic = core.topic("t", partitions=2)
    topic.append(0, b"v0", key=b"k0")
    topic.append(1, b"v1", key=b"k1")
    topic.append(0, b"v2", key=None)
    core.open("t", form=IdForm.KEY)
    await core.settle()
    resumed = core.open("t", start=resume({0: 0, 1: 0}), form=IdForm.KEY)
    await core.settle()
    topic.append(1, b"v3", key=b"k3")
    await core.settle()
    got = [(parse_event_id(i or ""), data) for i, _, data in blocks(resumed.take())]
    assert [(p.key, p.progress, data) for p, data in got] == [
        (b"k0", {0: 1, 1: 0}, b"v0"),
        (b"k1", {0: 1, 1: 1}, b"v1"),
        (None, {0: 2, 1: 1}, b"v2"),
        (b"k3", {0: 2, 1: 2}, b"v3"),
    ]
