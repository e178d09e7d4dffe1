"""Flow control: a live stream whose unsent bytes pass the high-water mark falls behind
(it replays the ring as fast as it reads, with the live ids) while its group carries on;
one the ring no longer covers is ended; replay and catch-up wait for a paused socket."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import State
from ssegate.routing import StartPolicy
from ssegate.sse.stream import CloseReason
from tests.unit.fanout.expect import HEARTBEAT, state, stream
from tests.unit.fanout.harness import Core, RecordingSink, checkpoint_frame, key_filter

RETRY = b"retry:2000\n\n"  # slow_retry_min == slow_retry_max == 2 s: no jitter


def build(*, replay_chunk: int = 1000, heartbeat: float = 15.0, ring_records: int = 100) -> Core:
    return Core.build(
        asyncio.get_running_loop(),
        high_water=100,
        ring_records=ring_records,
        slow_retry_min=2.0,
        slow_retry_max=2.0,
        replay_chunk=replay_chunk,
        heartbeat=heartbeat,
    )


def stall(sink: RecordingSink) -> None:
    """The client stops reading: its unsent bytes pass the mark, its socket takes no more."""
    sink.backlog = 101
    sink.pause()


async def test_slow_member_falls_behind_and_gets_the_rest_at_its_own_pace() -> None:
    core = build()
    topic = core.topic("t", partitions=2)
    sinks = [core.open("t") for _ in range(3)]
    fast_one, slow, fast_two = sinks
    first = topic.append(0, b"one")
    await core.settle()
    assert [s.take() for s in sinks] == [stream([first], {0: 0, 1: 0})] * 3

    stall(slow)
    batch = [topic.append(1, b"two"), topic.append(0, b"three")]
    await core.settle()
    expected = stream(batch, {0: 1, 1: 0})
    assert fast_one.take() == fast_two.take() == slow.take() == expected, (
        "the batch that took it over the mark reached it too"
    )
    assert not slow.closed
    assert state(core.subscribers[1]) is State.REPLAYING
    assert core.metric('ssegate_streams_fell_behind_total{route="/r"} 1\n')

    missed = [topic.append(1, b"four"), topic.append(0, b"five"), topic.append(1, b"six")]
    await core.settle()
    owed = stream(missed, {0: 2, 1: 1})
    assert fast_one.take() == fast_two.take() == owed
    assert slow.take() == b"", "nothing more while its socket is full"

    slow.backlog = 0
    slow.resume()
    await core.settle()
    assert slow.take() == owed, "what it missed, with the ids the live streams got"
    assert state(core.subscribers[1]) is State.LIVE
    after = topic.append(0, b"seven")
    await core.settle()
    assert [s.take() for s in sinks] == [stream([after], {0: 3, 1: 3})] * 3
    assert core.metric('ssegate_streams_closed_total{route="/r",reason="slow_client"}') is False


async def test_a_lone_slow_member_replays_ids_of_its_own() -> None:
    """Its group ended with it, so no live stream wrote the records it missed: the replay
    encodes them, with the same ids."""
    core = build()
    topic = core.topic("t", partitions=2)
    slow = core.open("t")
    await core.settle()
    stall(slow)
    first = topic.append(0, b"one")
    await core.settle()
    assert slow.take() == stream([first], {0: 0, 1: 0})
    missed = [topic.append(1, b"two"), topic.append(0, b"three")]
    await core.settle()
    assert slow.take() == b""
    slow.backlog = 0
    slow.resume()
    await core.settle()
    assert slow.take() == stream(missed, {0: 1, 1: 0})
    assert state(core.subscribers[0]) is State.LIVE


async def test_backlog_at_the_high_water_mark_is_not_over_it() -> None:
    core = build()
    topic = core.topic("t")
    sink = core.open("t")
    await core.settle()
    sink.backlog = 100
    record = topic.append(0, b"v")
    await core.settle()
    assert sink.take() == stream([record], {0: 0})
    assert state(core.subscribers[0]) is State.LIVE


async def test_a_stream_that_fell_behind_the_ring_ends_with_where_to_resume() -> None:
    """It read nothing while the ring moved past it: ended at the next tick, with a
    checkpoint of what it was sent and a `retry:`; not given a catch-up reader."""
    core = build(ring_records=3)
    topic = core.topic("t")
    slow = core.open("t")
    other = core.open("t")
    await core.settle()
    stall(slow)
    first = topic.append(0, b"one")
    await core.settle()
    assert slow.take() == other.take() == stream([first], {0: 0})
    core.fanout.tick()
    assert not slow.closed, "the ring still holds what it has not seen"
    for i in range(3):
        topic.append(0, b"more%d" % i)
    await core.settle()
    core.fanout.tick()
    assert not slow.closed, "the ring holds the three records after its last one"
    topic.append(0, b"more3")  # the ring of three drops `more0`, which it has not seen
    await core.settle()
    assert slow.take() == b""
    core.fanout.tick()
    assert slow.take() == checkpoint_frame({0: 1}) + RETRY
    assert (slow.end_reason, slow.abort_reason) == (CloseReason.SLOW_CLIENT, None)
    assert core.metric('ssegate_streams_closed_total{route="/r",reason="slow_client"} 1\n')
    assert core.fanout.catchups.running == 0
    assert other.take() == stream(topic.log[1:], {0: 1})


async def test_a_stream_that_fell_behind_the_ring_ends_when_it_reads_again() -> None:
    core = build(ring_records=3, replay_chunk=1)
    topic = core.topic("t")
    slow = core.open("t")
    core.open("t")
    await core.settle()
    stall(slow)
    first = topic.append(0, b"one")
    await core.settle()
    assert slow.take() == stream([first], {0: 0})
    for i in range(4):
        topic.append(0, b"more%d" % i)
    await core.settle()
    slow.backlog = 0
    slow.resume()
    await core.settle()
    assert slow.take() == checkpoint_frame({0: 1}) + RETRY
    assert slow.end_reason is CloseReason.SLOW_CLIENT


async def test_slow_member_falls_behind_at_a_heartbeat_too() -> None:
    core = build(heartbeat=5.0)
    topic = core.topic("t")
    topic.append(0, b"v")
    slow = core.open("t")
    other = core.open("t")
    await core.settle()
    assert slow.take() == other.take() == stream(topic.log, {0: 0})
    slow.backlog = 500
    slow.pause()
    core.clock.advance(5.0)
    core.fanout.tick()
    assert other.take() == slow.take() == HEARTBEAT
    assert state(core.subscribers[0]) is State.REPLAYING
    missed = topic.append(0, b"w")
    await core.settle()
    slow.backlog = 0
    slow.resume()
    await core.settle()
    assert slow.take() == other.take() == stream([missed], {0: 1})


async def test_slow_filtered_member_resumes_past_records_its_filters_rejected() -> None:
    """It fell behind where the live source was, after records its filters rejected: its
    replay starts past them, and once live again a checkpoint moves its id there too."""
    core = build(heartbeat=5.0)
    topic = core.topic("t")
    slow = core.open("t", filters=key_filter(b"k"))
    other = core.open("t", filters=key_filter(b"k"))
    await core.settle()
    stall(slow)
    wanted = topic.append(0, b"wanted", key=b"k")
    for i in range(3):
        topic.append(0, b"rejected%d" % i, key=b"other")
    await core.settle()
    assert other.take() == slow.take() == stream([wanted], {0: 0})
    slow.backlog = 0
    slow.resume()
    await core.settle()
    assert slow.take() == b""
    assert state(core.subscribers[0]) is State.LIVE
    core.clock.advance(5.0)
    core.fanout.tick()
    assert slow.take() == other.take() == checkpoint_frame({0: 4})


async def test_paused_replay_writes_nothing_more_until_writable() -> None:
    core = build(replay_chunk=2)
    topic = core.topic("t")
    for i in range(7):
        topic.append(0, b"r%d" % i)
    core.open("t")
    await core.settle()

    resumed = core.open("t", start=StartAt(StartPolicy.EARLIEST, positions={0: 0}))
    resumed.pause()
    resumed.backlog = 10_000  # far over the mark: a replay is not closed for it, it waits
    await core.settle()
    assert resumed.take() == stream(topic.log[0:2], {0: 0}), "the chunk already queued"
    assert state(core.subscribers[-1]) is State.REPLAYING
    live = topic.append(0, b"live")
    await core.settle()
    assert resumed.take() == b""

    resumed.backlog = 0
    resumed.resume()
    await core.sources.turn(1)
    assert resumed.take() == stream(topic.log[2:4], {0: 2}), "one chunk per turn again"
    await core.settle()
    assert resumed.take() == stream(topic.log[4:], {0: 4})
    assert topic.log[-1] is live
    assert state(core.subscribers[-1]) is State.LIVE


async def test_client_that_leaves_mid_replay_gets_nothing_more() -> None:
    core = build(replay_chunk=1)
    topic = core.topic("t")
    for i in range(4):
        topic.append(0, b"r%d" % i)
    core.open("t")
    await core.settle()
    leaving = core.open("t", start=StartAt(StartPolicy.EARLIEST, positions={0: 0}))
    await core.sources.turn(1)
    assert leaving.take() == stream(topic.log[:1], {0: 0})
    leaving.client_closes()  # RecordingSink fails the test if written to after this
    topic.append(0, b"live")
    await core.settle()
    assert leaving.take() == b""
    assert state(core.subscribers[-1]) is State.CLOSED
    assert core.metric('ssegate_streams_closed_total{route="/r",reason="client_closed"} 1\n')
