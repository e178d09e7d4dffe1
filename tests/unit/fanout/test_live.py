"""The live stream: one payload per subscription group, ids carrying the live progress."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import State
from ssegate.kafka.eventid import IdForm, encode_progress
from ssegate.routing import StartPolicy
from tests.unit.fanout.expect import owed, progress_after, state, stream
from tests.unit.fanout.harness import Core, key_filter


async def test_groups_get_the_records_their_filters_and_id_form_ask_for() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t", partitions=2)
    plain = [core.open("t"), core.open("t")]
    keyed = core.open("t", form=IdForm.KEY)
    only_a = core.open("t", filters=key_filter(b"a"))
    await core.settle()

    records = [
        topic.append(0, b"one", key=b"a"),
        topic.append(1, b"two", key=b"b"),
        topic.append(0, b"three", key=b"a"),
    ]
    await core.settle()
    assert plain[0].take() == plain[1].take() == stream(records, {0: 0, 1: 0})
    assert only_a.take() == (
        stream(records[:1], {0: 0, 1: 0}) + stream(records[2:], {0: 1, 1: 1})
    ), "the id after a record counts the records filtered out before it"
    ids = [
        ('["YQ==","' + encode_progress({0: 1, 1: 0}) + '"]', "one"),
        ('["Yg==","' + encode_progress({0: 1, 1: 1}) + '"]', "two"),
        ('["YQ==","' + encode_progress({0: 2, 1: 1}) + '"]', "three"),
    ]
    assert keyed.take() == b"".join(
        b"id:%s\ndata:%s\n\n" % (i.encode(), v.encode()) for i, v in ids
    )


async def test_etag_header_rides_on_the_id() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    sink = core.open("t")
    await core.settle()
    topic.append(0, b"v", headers=[("etag", b"W/1 2")])
    await core.settle()
    assert sink.take() == b"id:" + encode_progress({0: 1}).encode() + b"/W/1%202\ndata:v\n\n"


async def test_latest_starts_after_what_the_topic_held() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t", partitions=2)
    for i in range(4):
        topic.append(i % 2, b"old%d" % i)
    sink = core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    assert sink.take() == b""
    new = [topic.append(1, b"new0"), topic.append(0, b"new1")]
    await core.settle()
    assert sink.take() == stream(new, {0: 2, 1: 2})


async def test_earliest_reads_the_whole_log_then_live() -> None:
    core = Core.build(asyncio.get_running_loop(), replay_chunk=3)
    topic = core.topic("t", partitions=3)
    for i in range(10):
        topic.append(i % 3, b"r%d" % i)
    sink = core.open("t")
    await core.settle()
    assert sink.take() == stream(topic.log, {0: 0, 1: 0, 2: 0})
    record = topic.append(2, b"live")
    await core.settle()
    assert sink.take() == stream([record], progress_after(topic, len(topic.log) - 1))


async def test_records_handed_over_again_are_not_written_twice() -> None:
    """A broker failover may make the reader hand over records it already had."""
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t", partitions=2)
    sink = core.open("t")
    await core.settle()
    for i in range(6):
        topic.append(i % 2, b"r%d" % i)
    await core.settle()
    assert sink.take() == stream(topic.log, {0: 0, 1: 0})

    live = core.sources.live("t")
    live.rewind(0, 1)
    more = topic.append(0, b"after")
    await core.settle()
    assert sink.take() == stream([more], {0: 3, 1: 3})
    late = core.open("t", start=StartAt(StartPolicy.EARLIEST, positions={0: 0, 1: 0}))
    await core.settle()
    assert late.take() == stream(owed(topic, {}), {0: 0, 1: 0}), "the ring has each once"


async def test_a_member_leaving_does_not_disturb_its_group() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    leaving, staying = core.open("t"), core.open("t")
    await core.settle()
    first = topic.append(0, b"one")
    await core.settle()
    assert leaving.take() == staying.take() == stream([first], {0: 0})
    leaving.client_closes()
    assert state(core.subscribers[0]) is State.CLOSED
    second = topic.append(0, b"two")
    await core.settle()
    assert staying.take() == stream([second], {0: 1})
    assert leaving.take() == b""
    assert core.fanout.open_streams == 1
