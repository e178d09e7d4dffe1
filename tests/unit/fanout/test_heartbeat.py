"""Heartbeats: a comment (`:` and a blank line) once a stream has had nothing for
`heartbeat` seconds, by the injected clock; never earlier."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import State
from ssegate.routing import StartPolicy
from tests.unit.fanout.expect import HEARTBEAT, state, stream
from tests.unit.fanout.harness import Core, RecordingSink, checkpoint_frame, key_filter

BEAT = 8.0


def at(core: Core, seconds: float) -> None:
    """Move the clock by `seconds` and let the fan-out write what is due."""
    core.clock.advance(seconds)
    core.fanout.tick()


def takes(*sinks: RecordingSink) -> list[bytes]:
    return [sink.take() for sink in sinks]


async def test_heartbeat_when_due_and_not_before() -> None:
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT)
    core.topic("t")
    sink = core.open("t")
    await core.settle()
    core.fanout.tick()
    assert sink.take() == b""
    at(core, 7.75)
    assert sink.take() == b""
    at(core, 0.25)
    assert sink.take() == HEARTBEAT
    core.fanout.tick()
    assert sink.take() == b"", "one per interval"
    at(core, 7.75)
    assert sink.take() == b""
    at(core, 0.25)
    assert sink.take() == HEARTBEAT


async def test_a_delivered_batch_puts_the_next_heartbeat_off() -> None:
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT)
    topic = core.topic("t")
    sink = core.open("t")
    await core.settle()
    at(core, 5.0)
    record = topic.append(0, b"v")
    await core.settle()
    assert sink.take() == stream([record], {0: 0})
    at(core, 7.75)
    assert sink.take() == b"", "12.75 s since the stream opened, 7.75 s since its last event"
    at(core, 0.25)
    assert sink.take() == HEARTBEAT


async def test_groups_keep_their_own_schedule() -> None:
    """Each subscription group is due by its own last write; members share it."""
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT)
    topic = core.topic("t")
    busy = core.open("t", route="/busy")
    busy_too = core.open("t", route="/busy")
    idle = core.open("t", route="/idle", filters=key_filter(b"nothing"))
    await core.settle()
    at(core, 4.0)
    record = topic.append(0, b"v", key=b"k")
    await core.settle()
    assert takes(busy, busy_too, idle) == [stream([record], {0: 0})] * 2 + [b""]
    at(core, 4.0)
    assert takes(busy, busy_too, idle) == [b"", b"", checkpoint_frame({0: 1})]
    at(core, 4.0)
    assert takes(busy, busy_too, idle) == [HEARTBEAT, HEARTBEAT, b""]
    at(core, 4.0)
    assert takes(busy, busy_too, idle) == [b"", b"", HEARTBEAT]


async def test_a_stream_waiting_for_a_missing_topic_gets_heartbeats_then_records() -> None:
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT)
    sink = core.open("later")
    await core.settle()
    assert core.fanout.hubs["later"].missing
    at(core, 7.75)
    assert sink.take() == b""
    at(core, 0.25)
    assert sink.take() == HEARTBEAT
    assert state(core.subscribers[-1]) is State.WAITING

    topic = core.topic("later")
    record = topic.append(0, b"first")
    core.sources.live("later").refresh()
    await core.settle()
    assert sink.take() == stream([record], {0: 0})


async def test_a_paused_replay_is_due_by_its_own_last_chunk() -> None:
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT, replay_chunk=2)
    topic = core.topic("t")
    for i in range(6):
        topic.append(0, b"r%d" % i)
    core.open("t")
    await core.settle()
    at(core, 3.0)
    resumed = core.open("t", start=StartAt(StartPolicy.EARLIEST, positions={0: 0}))
    resumed.pause()
    await core.settle()
    assert resumed.take() == stream(topic.log[:2], {0: 0})
    assert state(core.subscribers[-1]) is State.REPLAYING
    at(core, 7.75)
    assert resumed.take() == b""
    at(core, 0.25)
    assert resumed.take() == HEARTBEAT, "its id is that of its last event: a comment"
