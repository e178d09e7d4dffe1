"""Flow control: a live stream whose unsent bytes pass the high-water mark is closed while
its group carries on; replay and catch-up wait for a paused socket instead."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import State
from ssegate.routing import StartPolicy
from ssegate.sse.stream import CloseReason
from tests.unit.fanout.expect import HEARTBEAT, state, stream
from tests.unit.fanout.harness import Core, checkpoint_frame, key_filter

RETRY = b"retry:2000\n\n"  # slow_retry_min == slow_retry_max == 2 s: no jitter


def build(*, replay_chunk: int = 1000, heartbeat: float = 15.0) -> Core:
    return Core.build(
        asyncio.get_running_loop(),
        high_water=100,
        slow_retry_min=2.0,
        slow_retry_max=2.0,
        replay_chunk=replay_chunk,
        heartbeat=heartbeat,
    )


async def test_slow_member_is_ended_while_its_group_gets_the_same_batch() -> None:
    core = build()
    topic = core.topic("t", partitions=2)
    sinks = [core.open("t") for _ in range(3)]
    fast_one, slow, fast_two = sinks
    first = topic.append(0, b"one")
    await core.settle()
    assert [s.take() for s in sinks] == [stream([first], {0: 0, 1: 0})] * 3

    slow.backlog = 101
    batch = [topic.append(1, b"two"), topic.append(0, b"three")]
    await core.settle()
    expected = stream(batch, {0: 1, 1: 0})
    assert fast_one.take() == expected
    assert fast_two.take() == expected
    assert slow.take() == expected + checkpoint_frame({0: 2, 1: 1}) + RETRY, (
        "the batch it was sent, then a clean end: where to resume, when to come back"
    )
    assert (slow.closed, slow.end_reason, slow.abort_reason) == (
        True,
        CloseReason.SLOW_CLIENT,
        None,
    )
    assert core.metric('ssegate_streams_closed_total{route="/r",reason="slow_client"} 1\n')

    after = topic.append(1, b"four")
    await core.settle()
    assert fast_one.take() == fast_two.take() == stream([after], {0: 2, 1: 1})
    assert slow.take() == b""
    assert core.fanout.open_streams == 2


async def test_backlog_at_the_high_water_mark_is_not_over_it() -> None:
    core = build()
    topic = core.topic("t")
    sink = core.open("t")
    await core.settle()
    sink.backlog = 100
    record = topic.append(0, b"v")
    await core.settle()
    assert sink.take() == stream([record], {0: 0})
    assert not sink.closed


async def test_slow_member_is_ended_by_a_heartbeat_too() -> None:
    core = build(heartbeat=5.0)
    topic = core.topic("t")
    topic.append(0, b"v")
    slow = core.open("t")
    other = core.open("t")
    await core.settle()
    assert slow.take() == other.take() == stream(topic.log, {0: 0})
    slow.backlog = 500
    core.clock.advance(5.0)
    core.fanout.tick()
    assert other.take() == HEARTBEAT
    assert slow.take() == HEARTBEAT + checkpoint_frame({0: 1}) + RETRY
    assert slow.end_reason is CloseReason.SLOW_CLIENT
    assert not other.closed


async def test_slow_filtered_member_ends_with_a_checkpoint_past_rejected_records() -> None:
    """The stream is ended with a checkpoint of the live progress: records its filters
    rejected after its last event are not read again when it reconnects."""
    core = build()
    topic = core.topic("t")
    slow = core.open("t", filters=key_filter(b"k"))
    other = core.open("t", filters=key_filter(b"k"))
    await core.settle()
    slow.backlog = 101
    wanted = topic.append(0, b"wanted", key=b"k")
    for i in range(3):
        topic.append(0, b"rejected%d" % i, key=b"other")
    await core.settle()
    assert other.take() == stream([wanted], {0: 0})
    got = slow.take()
    assert got == stream([wanted], {0: 0}) + checkpoint_frame({0: 4}) + RETRY
    assert slow.end_reason is CloseReason.SLOW_CLIENT


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
