"""Resuming from before the ring: a catch-up source of the stream's own reads the old
records, then the stream joins the ring and the live stream at an exact offset."""

from __future__ import annotations

import asyncio

import pytest

from ssegate.fanout.start import ResumeOutcome, StartAt
from ssegate.fanout.subscriber import State
from ssegate.routing import StartPolicy
from ssegate.sources.memory import MemoryTopic
from tests.unit.fanout.expect import HEARTBEAT, owed, progress_after, state, stream
from tests.unit.fanout.harness import Core

EARLIEST = StartPolicy.EARLIEST


def resume(positions: dict[int, int]) -> StartAt:
    return StartAt(EARLIEST, positions=positions)


def fill(topic: MemoryTopic, count: int) -> None:
    for i in range(count):
        topic.append(i % len(topic.partitions), b"old%d" % i)


@pytest.mark.parametrize(
    "schedule",
    [
        "CCCCCCCCCCCC",  # catch-up alone, then the ring
        "LCLCLCLCLCLCLCLC",  # one live batch between catch-up batches
        "LLLCLLLCLLLCLLLCLLLCLLLC",  # the live stream outruns the catch-up (evictions)
        "CTLTCTLTCTLTCTLTCTLTCTLT",  # loop turns between everything
        "CCCCCLLLLLLCCCCCC",  # the catch-up reads ahead of the live source
    ],
)
async def test_catchup_then_live_while_live_batches_arrive(schedule: str) -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=4, batch_size=2, replay_chunk=2)
    topic = core.topic("t", partitions=2)
    fill(topic, 20)
    watcher = core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    assert watcher.take() == b""
    live = core.sources.live("t")

    start = {0: 2, 1: 3}
    resumed = core.open("t", start=resume(start))
    subscriber = core.subscribers[-1]
    await core.sources.turn()
    assert state(subscriber) is State.CATCHUP
    [catchup] = core.sources.catchups()

    watched_from = progress_after(topic)
    appended = 0
    for step in schedule:
        if step == "C":
            catchup.deliver()
        elif step == "L":
            topic.append(appended % 2, b"new%d" % appended)
            appended += 1
            assert live.deliver()
        else:
            await core.sources.turn(1)
    await core.settle()

    assert subscriber.outcome is ResumeOutcome.CATCHUP
    assert state(subscriber) is State.LIVE
    assert catchup.stopped
    assert resumed.take() == stream(owed(topic, start), start)
    assert watcher.take() == stream(owed(topic, watched_from), watched_from)

    tail = topic.append(1, b"tail")
    await core.settle()
    assert resumed.take() == stream([tail], progress_after(topic, len(topic.log) - 1))


async def test_ring_evicts_what_a_replay_had_left_so_it_catches_up() -> None:
    """REPLAYING -> CATCHUP -> WAITING -> REPLAYING -> LIVE, still exact."""
    core = Core.build(asyncio.get_running_loop(), ring_records=6, replay_chunk=2)
    topic = core.topic("t")
    fill(topic, 6)
    core.open("t")
    await core.settle()
    start = {0: 1}
    resumed = core.open("t", start=resume(start))
    subscriber = core.subscribers[-1]
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[1:3], start)
    assert state(subscriber) is State.REPLAYING
    replay_marks = core.fanout.options.replay_marks
    assert resumed.flow_marks == replay_marks, "the ring refills the buffer in a loop turn"

    for i in range(4):  # evicts offsets 0..3: offset 3, next to replay, is gone from memory
        topic.append(0, b"new%d" % i)
    assert core.sources.live("t").deliver()
    await core.sources.turn(1)
    assert state(subscriber) is State.CATCHUP
    assert resumed.flow_marks == core.fanout.options.catchup_marks, "a Kafka fetch takes longer"
    assert replay_marks[0] < core.fanout.options.catchup_marks[0]
    assert [c.positions for c in core.sources.catchups()] == [{0: 3}]
    await core.settle()
    assert state(subscriber) is State.LIVE
    assert subscriber.outcome is ResumeOutcome.RING, "the outcome is how it started"
    assert resumed.take() == stream(topic.log[3:], {0: 3})


async def test_streams_beyond_the_catchup_limit_wait_their_turn_with_heartbeats() -> None:
    core = Core.build(
        asyncio.get_running_loop(), ring_records=2, max_catchup=1, heartbeat=5.0, batch_size=2
    )
    topic = core.topic("t")
    fill(topic, 10)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()

    first = core.open("t", start=resume({0: 1}))
    second = core.open("t", start=resume({0: 4}))
    await core.sources.turn()
    assert [s.state for s in core.subscribers[-2:]] == [State.CATCHUP, State.CATCHUP_QUEUED]
    assert len(core.sources.catchups()) == 1
    core.clock.advance(5.0)
    core.fanout.tick()
    assert second.take() == HEARTBEAT, "queued: its id has not moved"
    assert first.take() == HEARTBEAT

    await core.settle()
    assert first.take() == stream(topic.log[1:], {0: 1})
    assert second.take() == stream(topic.log[4:], {0: 4})
    assert core.fanout.catchups.running == 0
    assert [s.state for s in core.subscribers[-2:]] == [State.LIVE, State.LIVE]


async def test_a_paused_client_holds_its_catchup_source_back() -> None:
    """While the client's socket is full the source gets no ack: at most its in-flight
    limit of batches is written; once writable it reads on."""
    core = Core.build(asyncio.get_running_loop(), ring_records=2, batch_size=2)
    topic = core.topic("t")
    fill(topic, 16)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()

    resumed = core.open("t", start=resume({0: 0}))
    resumed.pause()
    await core.settle()
    [catchup] = core.sources.catchups()
    assert resumed.take() == stream(topic.log[0:4], {0: 0}), "two batches of two"
    assert catchup.in_flight == catchup.max_in_flight

    resumed.resume()
    resumed.pause()
    await core.settle()
    assert resumed.take() == stream(topic.log[4:8], {0: 4}), "the full window again"
    assert catchup.in_flight == catchup.max_in_flight, "every batch written was acknowledged"

    resumed.resume()
    await core.settle()
    assert resumed.take() == stream(topic.log[8:], {0: 8})
    assert state(core.subscribers[-1]) is State.LIVE


async def test_catchup_reads_ahead_of_a_live_source_that_has_not_got_there() -> None:
    """One catch-up batch crosses the ring's start and the live reader's position: the
    stream waits for the live reader, then joins without writing anything twice."""
    core = Core.build(asyncio.get_running_loop(), ring_records=2, batch_size=20)
    topic = core.topic("t")
    fill(topic, 8)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    live = core.sources.live("t")
    for i in range(6):
        topic.append(0, b"new%d" % i)  # the live source hands these over later

    resumed = core.open("t", start=resume({0: 3}))
    await core.sources.turn()
    [catchup] = core.sources.catchups()
    assert catchup.deliver()
    await core.sources.turn()
    assert resumed.take() == stream(topic.log[3:], {0: 3})
    assert state(core.subscribers[-1]) is State.WAITING, "ahead of the live reader"

    assert live.deliver(limit=3)
    await core.sources.turn()
    assert state(core.subscribers[-1]) is State.WAITING
    await core.settle()
    assert resumed.take() == b""
    assert state(core.subscribers[-1]) is State.LIVE
    record = topic.append(0, b"later")
    await core.settle()
    assert resumed.take() == stream([record], {0: 14})
