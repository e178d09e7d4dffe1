"""`start: compacted`: the latest value per key as of the connect (deleted keys left out),
each id counting only what was written before it, one checkpoint past what was skipped,
then the live stream (tombstones as `event:delete`)."""

from __future__ import annotations

import asyncio
import base64

from ssegate.fanout.start import ResumeOutcome, StartAt
from ssegate.fanout.subscriber import State
from ssegate.kafka.eventid import encode_progress
from ssegate.routing import StartPolicy
from ssegate.routing.filters import ResolvedFilter, canonicalize
from ssegate.sources.memory import MemoryTopic
from ssegate.sources.record import Record
from ssegate.sse.stream import CloseReason
from tests.unit.fanout.expect import HEARTBEAT, blocks, event, owed, state, stream
from tests.unit.fanout.harness import Core, checkpoint_frame

COMPACTED = StartAt(StartPolicy.COMPACTED)


def put(topic: MemoryTopic, partition: int, key: bytes, value: bytes | None) -> Record:
    return topic.append(partition, value, key=key)


async def test_latest_value_per_key_then_live() -> None:
    core = Core.build(asyncio.get_running_loop(), replay_chunk=2)
    topic = core.topic("t")
    put(topic, 0, b"gone", None)  # a tombstone for a key never seen: nothing to remove
    put(topic, 0, b"k1", b"k1 v1")
    put(topic, 0, b"k2", b"k2 v1")
    k1 = put(topic, 0, b"k1", b"k1 v2")
    k3 = put(topic, 0, b"k3", b"k3 v1")
    put(topic, 0, b"k2", None)
    sink = core.open("t", start=COMPACTED)
    await core.settle()
    assert sink.take() == (event(k1, {0: 4}) + event(k3, {0: 5}) + checkpoint_frame({0: 6})), (
        "k2 was deleted; the ids count only what was written before them"
    )
    assert core.subscribers[-1].outcome is ResumeOutcome.FRESH

    live = [put(topic, 0, b"k4", b"k4 v1"), put(topic, 0, b"k1", None)]
    await core.settle()
    assert sink.take() == stream(live, {0: 6})
    assert sink.take() == b""
    tombstone = b"id:" + encode_progress({0: 8}).encode() + b"\nevent:delete\ndata:azE=\n\n"
    assert stream(live[1:], {0: 7}) == tombstone, "Zilla's form: the base64url key"


async def test_snapshot_over_partitions_ids_count_written_records_only() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t", partitions=2)
    put(topic, 0, b"a", b"a1")
    put(topic, 1, b"c", b"c1")
    b = put(topic, 0, b"b", b"b1")
    d = put(topic, 1, b"d", b"d1")
    a = put(topic, 0, b"a", b"a2")
    put(topic, 1, b"c", None)
    sink = core.open("t", start=COMPACTED)
    await core.settle()
    assert sink.take() == (
        event(b, {0: 2, 1: 0})
        + event(d, {0: 2, 1: 2})
        + event(a, {0: 3, 1: 2})
        + checkpoint_frame({0: 3, 1: 3})
    )


async def test_nothing_skipped_means_no_checkpoint() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    records = [put(topic, 0, b"k%d" % i, b"v%d" % i) for i in range(3)]
    sink = core.open("t", start=COMPACTED)
    await core.settle()
    assert sink.take() == stream(records, {0: 0})


async def test_snapshot_gathered_through_a_catchup_source() -> None:
    """The ring holds only the newest records: the snapshot is gathered from the log by a
    catch-up source, then the ring, then the stream is live."""
    core = Core.build(asyncio.get_running_loop(), ring_records=3, batch_size=2)
    topic = core.topic("t")
    for i in range(9):
        put(topic, 0, b"k%d" % (i % 3), b"v%d" % i)
    put(topic, 0, b"k1", None)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    sink = core.open("t", start=COMPACTED)
    await core.sources.turn()
    await core.sources.turn()
    assert state(core.subscribers[-1]) is State.CATCHUP
    await core.settle()
    assert sink.take() == (
        event(topic.log[6], {0: 7}) + event(topic.log[8], {0: 9}) + checkpoint_frame({0: 10})
    )
    assert state(core.subscribers[-1]) is State.LIVE
    record = put(topic, 0, b"k1", b"back")
    await core.settle()
    assert sink.take() == stream([record], {0: 10})


async def test_snapshot_waits_for_the_reader_to_reach_the_ends_it_was_asked_for() -> None:
    core = Core.build(asyncio.get_running_loop(), batch_size=2, replay_chunk=10)
    topic = core.topic("t")
    for i in range(6):
        put(topic, 0, b"k%d" % (i % 2), b"v%d" % i)
    sink = core.open("t", start=COMPACTED)
    subscriber = core.subscribers[-1]
    await core.sources.turn()
    live = core.sources.live("t")
    await core.sources.turn()
    assert state(subscriber) is State.WAITING, "the ring is empty, the target is {0: 6}"
    for _ in range(2):
        assert live.deliver()  # offsets 0, 1 then 2, 3
        await core.sources.turn()
        assert state(subscriber) is State.WAITING
        assert sink.take() == b""
    assert live.deliver()  # 4, 5: the target
    await core.sources.turn()
    assert state(subscriber) is State.LIVE
    assert sink.take() == event(topic.log[4], {0: 5}) + event(topic.log[5], {0: 6})
    late = put(topic, 0, b"k0", b"late")
    await core.settle()
    assert sink.take() == stream([late], {0: 6})


async def test_records_read_with_the_target_in_one_batch_join_the_snapshot() -> None:
    core = Core.build(asyncio.get_running_loop(), batch_size=2, replay_chunk=10)
    topic = core.topic("t")
    for i in range(6):
        put(topic, 0, b"k%d" % (i % 2), b"v%d" % i)
    sink = core.open("t", start=COMPACTED)
    await core.sources.turn()
    live = core.sources.live("t")
    await core.sources.turn()
    late = put(topic, 0, b"k0", b"late")  # written after the ends were looked up
    assert live.deliver(limit=7)
    await core.settle()
    assert sink.take() == event(topic.log[5], {0: 6}) + event(late, {0: 7})


async def test_more_keys_than_the_ring_holds_are_written_early() -> None:
    """Past `ring_records` keys the oldest half goes out early: the client may see an
    older value before the newest (docs/guarantees.md), the state still converges."""
    core = Core.build(asyncio.get_running_loop(), ring_records=4, replay_chunk=100)
    topic = core.topic("t")
    for i in range(5):
        put(topic, 0, b"k%d" % i, b"v%d" % i)
    put(topic, 0, b"k0", b"k0 again")
    sink = core.open("t", start=COMPACTED)
    await core.settle()
    # k0 and k1 were written when k4 made five keys; k0's newer value comes with the rest.
    assert sink.take() == stream(topic.log, {0: 0})


async def test_compacted_route_resuming_with_an_id_reads_on_from_it() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    for i in range(4):
        put(topic, 0, b"k", b"v%d" % i)
    sink = core.open("t", start=StartAt(StartPolicy.COMPACTED, positions={0: 2}))
    await core.settle()
    assert sink.take() == stream(owed(topic, {0: 2}), {0: 2})
    assert core.subscribers[-1].outcome is ResumeOutcome.RING


async def test_a_tombstone_removes_a_kept_key_whatever_its_headers() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    keep = canonicalize([ResolvedFilter(headers=(("kind", b"x"),))])
    topic.append(0, b"a1", key=b"a", headers=[("kind", b"x")])
    b1 = topic.append(0, b"b1", key=b"b", headers=[("kind", b"x")])
    topic.append(0, None, key=b"a")  # no header: the filter alone would reject it
    topic.append(0, b"c1", key=b"c", headers=[("kind", b"y")])  # rejected
    sink = core.open("t", start=COMPACTED, filters=keep)
    await core.settle()
    assert sink.take() == event(b1, {0: 2}) + checkpoint_frame({0: 4})


async def test_no_checkpoint_while_gathering_a_snapshot() -> None:
    """Until the snapshot is written the client has none of those records: a heartbeat
    is a comment, and a shutdown ends the stream without an id."""
    core = Core.build(asyncio.get_running_loop(), heartbeat=5.0, ring_records=3, batch_size=2)
    topic = core.topic("t")
    for i in range(9):
        put(topic, 0, b"k%d" % (i % 2), b"v%d" % i)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    sink = core.open("t", start=COMPACTED)
    sink.pause()  # its catch-up source is held back after two batches
    await core.settle()
    assert state(core.subscribers[-1]) is State.CATCHUP
    assert sink.take() == b""
    core.clock.advance(5.0)
    core.fanout.tick()
    assert sink.take() == HEARTBEAT
    await core.close()
    assert sink.end_reason is CloseReason.SHUTDOWN
    assert sink.take() == b""


def client_state(data: bytes) -> dict[bytes, bytes]:
    """The key -> value map a client builds from a compacted stream's events."""
    values: dict[bytes, bytes] = {}
    for _, kind, payload in blocks(data):
        if payload is None:
            continue  # a checkpoint or a comment
        if kind == "delete":
            values.pop(base64.urlsafe_b64decode(payload), None)
        else:
            key, _, value = payload.partition(b"=")
            values[key] = value
    return values


async def test_keys_written_early_then_deleted_are_deleted_for_the_client() -> None:
    """Past `ring_records` keys the oldest are written early; a tombstone that comes
    after must still reach the client, or its state never converges."""
    core = Core.build(asyncio.get_running_loop(), ring_records=4, replay_chunk=100)
    topic = core.topic("t")
    for i in range(5):
        put(topic, 0, b"k%d" % i, b"k%d=v%d" % (i, i))  # k4 makes five: k0, k1 go early
    put(topic, 0, b"k0", None)  # deletes a key the client already has
    put(topic, 0, b"k1", b"k1=new")
    put(topic, 0, b"k1", None)  # deletes it again after a newer value
    sink = core.open("t", start=COMPACTED)
    await core.settle()
    assert client_state(sink.take()) == {b"k2": b"v2", b"k3": b"v3", b"k4": b"v4"}
    assert state(core.subscribers[-1]) is State.LIVE
