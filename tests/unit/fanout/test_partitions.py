"""Partitions added to a topic are read from their first offset, and ids carry them."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import ResumeOutcome, StartAt
from ssegate.fanout.subscriber import State
from ssegate.routing import StartPolicy
from tests.unit.fanout.expect import owed, state, stream
from tests.unit.fanout.harness import Core

EARLIEST = StartPolicy.EARLIEST


async def test_added_partition_is_delivered_from_its_first_offset() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    for i in range(3):
        topic.append(0, b"a%d" % i)
    sink = core.open("t")
    await core.settle()
    assert sink.take() == stream(topic.log, {0: 0})

    topic.add_partitions(2)
    grown = [topic.append(2, b"c0"), topic.append(1, b"b0"), topic.append(0, b"a3")]
    await core.settle()
    assert sink.take() == stream([grown[2]], {0: 3}), "not read before a refresh finds them"

    core.sources.live("t").refresh()
    more = topic.append(1, b"b1")
    await core.settle()
    assert sink.take() == stream([grown[0], grown[1], more], {0: 4, 1: 0, 2: 0})


async def test_old_ids_resume_on_the_new_partition_from_its_start() -> None:
    core = Core.build(asyncio.get_running_loop(), replay_chunk=2)
    topic = core.topic("t")
    for i in range(3):
        topic.append(0, b"a%d" % i)
    core.open("t")
    await core.settle()
    topic.add_partitions(1)
    core.sources.live("t").refresh()
    topic.append(1, b"b0")
    topic.append(0, b"a3")
    topic.append(1, b"b1")
    await core.settle()

    resumed = core.open("t", start=StartAt(EARLIEST, positions={0: 2}))  # before the growth
    await core.settle()
    start = {0: 2, 1: 0}
    assert resumed.take() == stream(owed(topic, start), start)
    assert core.subscribers[-1].outcome is ResumeOutcome.RING


async def test_partition_added_while_a_stream_replays() -> None:
    core = Core.build(asyncio.get_running_loop(), replay_chunk=1)
    topic = core.topic("t")
    for i in range(4):
        topic.append(0, b"a%d" % i)
    core.open("t")
    await core.settle()
    resumed = core.open("t", start=StartAt(EARLIEST, positions={0: 0}))
    subscriber = core.subscribers[-1]
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[:1], {0: 0})
    topic.add_partitions(1)
    topic.append(1, b"b0")
    core.sources.live("t").refresh()
    assert core.sources.live("t").deliver()
    assert state(subscriber) is State.REPLAYING
    await core.settle()
    assert resumed.take() == stream(topic.log[1:], {0: 1, 1: 0})


async def test_catchup_over_a_topic_that_grew_meanwhile() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=2, batch_size=2)
    topic = core.topic("t")
    for i in range(8):
        topic.append(0, b"a%d" % i)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    resumed = core.open("t", start=StartAt(EARLIEST, positions={0: 1}))
    await core.sources.turn()
    [catchup] = core.sources.catchups()
    assert catchup.deliver()
    topic.add_partitions(1)
    topic.append(1, b"b0")
    core.sources.live("t").refresh()
    await core.settle()
    # The catch-up reads the partitions it was opened with, and its ids name only those
    # (a partition an id leaves out is read from its start: the same resume point); from
    # the ring on, the ids carry the new partition.
    catchup_part = topic.log[1:7]  # batches of two until offset 7 >= the ring's start, 6
    expected = stream(catchup_part, {0: 1}) + stream(topic.log[7:], {0: 7, 1: 0})
    assert resumed.take() == expected
    assert state(core.subscribers[-1]) is State.LIVE


async def test_an_id_naming_a_partition_this_reader_does_not_have_starts_from_the_policy() -> None:
    """E.g. an id from an instance that already saw partitions this one has not: the id
    does not fit, it is counted as invalid and the route's policy applies."""
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    for i in range(3):
        topic.append(0, b"a%d" % i)
    sink = core.open("t", start=StartAt(StartPolicy.LATEST, positions={0: 1, 1: 5}))
    await core.settle()
    assert sink.take() == b""
    assert core.subscribers[-1].outcome is ResumeOutcome.INVALID
    record = topic.append(0, b"a3")
    await core.settle()
    assert sink.take() == stream([record], {0: 3})
