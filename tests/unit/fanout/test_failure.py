"""When a source fails: its streams end with a checkpoint of where they were and resume
exactly there through a source opened again; a failed lookup ends only its stream."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import State
from ssegate.routing import StartPolicy
from ssegate.sources.protocol import SourceFailure
from ssegate.sse.stream import CloseReason
from tests.unit.fanout.expect import owed, state, stream
from tests.unit.fanout.harness import Core, checkpoint_frame

EARLIEST = StartPolicy.EARLIEST


async def test_failed_source_ends_its_streams_with_checkpoints_and_they_resume() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=2, batch_size=2)
    topic = core.topic("t", partitions=2)
    for i in range(10):
        topic.append(i % 2, b"r%d" % i)
    live = core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    catching_up = core.open("t", start=StartAt(EARLIEST, positions={0: 0, 1: 0}))
    catching_up.pause()
    await core.settle()
    assert catching_up.take() == stream(topic.log[:4], {0: 0, 1: 0})
    [catchup] = core.sources.catchups()

    core.sources.live("t").fail(SourceFailure("the broker went away", retriable=True))
    assert (live.end_reason, catching_up.end_reason) == (CloseReason.ERROR, CloseReason.ERROR)
    assert live.take() == checkpoint_frame({0: 5, 1: 5})
    assert catching_up.take() == checkpoint_frame({0: 2, 1: 2})
    assert catchup.stopped
    assert core.fanout.retry_after("t") is None, "retriable: a stream may open it again now"
    assert core.metric('ssegate_source_failures_total{topic="t",retriable="true"} 1\n')
    assert core.fanout.open_streams == 0

    record = topic.append(1, b"during")
    again = core.open("t", start=StartAt(EARLIEST, positions={0: 5, 1: 5}))
    behind = core.open("t", start=StartAt(EARLIEST, positions={0: 2, 1: 2}))
    await core.settle()
    assert again.take() == stream([record], {0: 5, 1: 5})
    assert behind.take() == stream(owed(topic, {0: 2, 1: 2}), {0: 2, 1: 2})
    assert len([s for s in core.sources.opened if s.live]) == 2, "a new live source"


async def test_a_failure_that_will_not_mend_keeps_new_streams_away_for_a_while() -> None:
    core = Core.build(asyncio.get_running_loop(), retry_fatal=60.0)
    core.topic("t")
    core.open("t")
    await core.settle()
    core.sources.live("t").fail(SourceFailure("not authorized", retriable=False))
    wait = core.fanout.retry_after("t")
    assert wait is not None
    assert 59.0 < wait <= 60.0
    assert core.metric('ssegate_source_failures_total{topic="t",retriable="false"} 1\n')


async def test_failed_catchup_source_ends_only_its_stream() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=2, batch_size=2)
    topic = core.topic("t")
    for i in range(8):
        topic.append(0, b"r%d" % i)
    live = core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    resumed = core.open("t", start=StartAt(EARLIEST, positions={0: 1}))
    await core.sources.turn()
    [catchup] = core.sources.catchups()
    assert catchup.deliver()
    assert resumed.take() == stream(topic.log[1:3], {0: 1})
    catchup.fail(SourceFailure("fetch failed", retriable=True))
    assert resumed.end_reason is CloseReason.ERROR
    assert resumed.take() == b"", "its last event's id is where it resumes"
    assert core.fanout.catchups.running == 0
    record = topic.append(0, b"live")
    await core.settle()
    assert live.take() == stream([record], {0: 8})


async def test_failed_lookup_ends_its_stream() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    topic.append(0, b"v")
    other = core.open("t")
    await core.settle()
    core.sources.fail_lookups = "timed out"
    since = core.open("t", start=StartAt(EARLIEST, since_ms=0))
    compacted = core.open("t", start=StartAt(StartPolicy.COMPACTED))
    await core.settle()
    assert (since.end_reason, compacted.end_reason) == (CloseReason.ERROR, CloseReason.ERROR)
    assert since.take() == compacted.take() == b""
    assert [state(s) for s in core.subscribers[1:]] == [State.CLOSED, State.CLOSED]
    assert other.take() == stream(topic.log, {0: 0})
    assert not other.closed


async def test_queued_catchup_that_leaves_frees_its_place() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=2, max_catchup=1, batch_size=2)
    topic = core.topic("t")
    for i in range(8):
        topic.append(0, b"r%d" % i)
    core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    first = core.open("t", start=StartAt(EARLIEST, positions={0: 0}))
    leaving = core.open("t", start=StartAt(EARLIEST, positions={0: 1}))
    third = core.open("t", start=StartAt(EARLIEST, positions={0: 2}))
    await core.sources.turn()
    assert core.fanout.catchups.queued == 2
    leaving.client_closes()
    assert core.fanout.catchups.queued == 1
    await core.settle()
    assert first.take() == stream(topic.log, {0: 0})
    assert third.take() == stream(topic.log[2:], {0: 2})
    assert leaving.take() == b""
