"""Id-only checkpoints: when only records a stream's filters reject moved its position,
its heartbeat moves the client's resume point (docs/guarantees.md, "Filtered records");
on shutdown every stream ends with one."""

from __future__ import annotations

import asyncio

import pytest

from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import State
from ssegate.kafka.eventid import encode_progress
from ssegate.routing import StartPolicy
from ssegate.sse.stream import CloseReason
from ssegate.sse.wire import Decoder
from tests.unit.fanout.expect import HEARTBEAT, reconnected, state, stream
from tests.unit.fanout.harness import Core, checkpoint_frame, key_filter

EARLIEST = StartPolicy.EARLIEST
BEAT = 5.0


def heartbeat(core: Core) -> None:
    core.clock.advance(BEAT)
    core.fanout.tick()


async def test_live_filtered_stream_gets_a_checkpoint_when_only_rejected_records_arrived() -> None:
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT)
    topic = core.topic("t", partitions=2)
    wanted = topic.append(0, b"a", key=b"k")
    sink = core.open("t", filters=key_filter(b"k"))
    await core.settle()
    assert sink.take() == stream([wanted], {0: 0, 1: 0})

    topic.append(1, b"x", key=b"other")
    topic.append(0, b"y", key=None)
    topic.append(1, b"z", key=b"other")
    await core.settle()
    assert sink.take() == b"", "rejected records are not written"
    heartbeat(core)
    assert sink.take() == checkpoint_frame({0: 2, 1: 2})
    heartbeat(core)
    assert sink.take() == HEARTBEAT, "nothing moved since the checkpoint"

    record = topic.append(1, b"b", key=b"k")
    await core.settle()
    assert sink.take() == stream([record], {0: 2, 1: 2})
    heartbeat(core)
    assert sink.take() == HEARTBEAT, "the record's id already carried the progress"


async def test_unfiltered_neighbour_in_another_group_is_not_disturbed() -> None:
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT)
    topic = core.topic("t")
    topic.append(0, b"seen", key=b"k")
    filtered = core.open("t", filters=key_filter(b"k"))
    everything = core.open("t")
    await core.settle()
    assert filtered.take() == everything.take() == stream(topic.log, {0: 0})
    rejected = topic.append(0, b"r", key=b"other")
    await core.settle()
    assert filtered.take() == b""
    assert everything.take() == stream([rejected], {0: 1})
    heartbeat(core)
    assert filtered.take() == checkpoint_frame({0: 2})
    assert everything.take() == HEARTBEAT


@pytest.mark.parametrize("path", ["ring", "catchup"])
async def test_checkpoint_after_a_resume_that_found_only_rejected_records(path: str) -> None:
    """The stream reads its way (from the ring, or a catch-up source) through records its
    filters reject, then joins the live stream: its first heartbeat must move the client
    past them, else every reconnect reads them again."""
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT, ring_records=4, batch_size=3)
    topic = core.topic("t")
    topic.append(0, b"wanted", key=b"k")
    for i in range(3 if path == "ring" else 9):
        topic.append(0, b"r%d" % i, key=b"other")
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()

    sink = core.open("t", start=StartAt(EARLIEST, positions={0: 1}), filters=key_filter(b"k"))
    await core.settle()
    assert state(core.subscribers[-1]) is State.LIVE
    heartbeat(core)
    client = reconnected({0: 1})
    assert client.feed(sink.take()) == [], "no event fires"
    assert client.last_event_id == encode_progress({0: len(topic.log)}), "the resume point moved"


@pytest.mark.parametrize("path", ["ring", "catchup"])
async def test_checkpoint_past_rejected_records_after_the_last_replayed_event(path: str) -> None:
    """A resume delivers a wanted record, then reads through rejected ones after it: the
    chunk's end is past the client's last id, so the first heartbeat is a checkpoint."""
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT, ring_records=4, batch_size=8)
    topic = core.topic("t")
    for i in range(0 if path == "ring" else 6):
        topic.append(0, b"old%d" % i, key=b"other")
    wanted = topic.append(0, b"wanted", key=b"k")
    for i in range(2):
        topic.append(0, b"r%d" % i, key=b"other")
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()

    sink = core.open("t", start=StartAt(EARLIEST, positions={0: 0}), filters=key_filter(b"k"))
    await core.settle()
    assert state(core.subscribers[-1]) is State.LIVE
    client = reconnected({0: 0})
    assert [event.data for event in client.feed(sink.take())] == ["wanted"]
    assert client.last_event_id == encode_progress({0: wanted.offset + 1})
    heartbeat(core)
    assert client.feed(sink.take()) == []
    assert client.last_event_id == encode_progress({0: len(topic.log)}), "the resume point moved"


async def test_catching_up_stream_gets_checkpoints_of_its_own_position() -> None:
    """Not live yet (its client's socket is full, so its catch-up is held back): the
    heartbeat carries where its own reading got to."""
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT, ring_records=2, batch_size=2)
    topic = core.topic("t")
    for i in range(10):
        topic.append(0, b"r%d" % i, key=b"other")
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()

    sink = core.open("t", start=StartAt(EARLIEST, positions={0: 1}), filters=key_filter(b"k"))
    sink.pause()
    await core.settle()
    assert state(core.subscribers[-1]) is State.CATCHUP
    assert sink.take() == b""
    heartbeat(core)
    assert sink.take() == checkpoint_frame({0: 5}), "two batches of two read past its id"
    heartbeat(core)
    assert sink.take() == HEARTBEAT


async def test_shutdown_ends_every_stream_with_a_checkpoint_of_its_position() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=2, batch_size=2)
    topic = core.topic("t", partitions=2)
    for i in range(10):
        topic.append(i % 2, b"r%d" % i, key=b"k" if i == 0 else b"other")
    live = core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    filtered = core.open("t", filters=key_filter(b"k"), start=StartAt(StartPolicy.LATEST))
    catching_up = core.open("t", start=StartAt(EARLIEST, positions={0: 0, 1: 0}))
    catching_up.pause()
    await core.settle()
    assert catching_up.take() == stream(topic.log[0:4], {0: 0, 1: 0})
    assert state(core.subscribers[-1]) is State.CATCHUP

    rejected = topic.append(1, b"late", key=b"other")
    await core.settle()
    assert live.take() == stream([rejected], {0: 5, 1: 5})
    await core.close()
    assert live.end_reason is CloseReason.SHUTDOWN
    assert live.take() == checkpoint_frame({0: 5, 1: 6})
    assert filtered.end_reason is CloseReason.SHUTDOWN
    assert filtered.take() == checkpoint_frame({0: 5, 1: 6})
    assert catching_up.end_reason is CloseReason.SHUTDOWN
    assert catching_up.take() == checkpoint_frame({0: 2, 1: 2})


async def test_checkpoint_for_a_fresh_stream_that_found_only_rejected_records() -> None:
    """No id yet: a reconnect would read the whole log again, so its first heartbeat gives
    it one past the records its filters rejected."""
    core = Core.build(asyncio.get_running_loop(), heartbeat=BEAT)
    topic = core.topic("t", partitions=2)
    for i in range(4):
        topic.append(i % 2, b"r%d" % i, key=b"other")
    core.open("t", route="/other")  # the reader has them in its ring
    await core.settle()
    sink = core.open("t", filters=key_filter(b"k"))
    await core.settle()
    assert state(core.subscribers[-1]) is State.LIVE
    assert core.fanout.hubs["t"].replays.misses > 0, "it replayed them from the ring"
    heartbeat(core)
    client = Decoder()
    assert client.feed(sink.take()) == [], "no event fires"
    assert client.last_event_id == encode_progress({0: 2, 1: 2}), "the resume point moved"
