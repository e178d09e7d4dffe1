"""`ssegate_resume_total{route, outcome}`: how each stream started, counted once."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.routing import StartPolicy
from tests.unit.fanout.expect import stream
from tests.unit.fanout.harness import Core

EARLIEST = StartPolicy.EARLIEST
PREFIX = 'ssegate_resume_total{route="/r",outcome="'


def resumes(core: Core) -> dict[str, float]:
    """The route's counters by outcome, read from the rendered exposition."""
    counts = {}
    for line in core.metrics.render().splitlines():
        if line.startswith(PREFIX):
            outcome, _, value = line[len(PREFIX) :].partition('"} ')
            counts[outcome] = float(value)
    return counts


async def test_each_way_of_starting_is_counted_once() -> None:
    core = Core.build(asyncio.get_running_loop(), ring_records=4, replay_chunk=1)
    topic = core.topic("t")
    for i in range(10):
        topic.append(0, b"r%d" % i)  # timestamps 1_000_000 + i

    fresh = core.open("t", start=StartAt(StartPolicy.LATEST))
    await core.settle()
    assert resumes(core) == {"fresh": 1}

    ring = core.open("t", start=StartAt(EARLIEST, positions={0: 8}))
    catchup = core.open("t", start=StartAt(EARLIEST, positions={0: 2}))
    since = core.open("t", start=StartAt(EARLIEST, since_ms=1_000_007))
    garbled = core.open("t", start=StartAt(StartPolicy.LATEST, invalid=True))
    await core.settle()
    assert ring.take() == stream(topic.log[8:], {0: 8})
    assert catchup.take() == stream(topic.log[2:], {0: 2})
    assert since.take() == stream(topic.log[7:], {0: 7})
    assert garbled.take() == b""
    assert fresh.take() == b""
    assert resumes(core) == {"fresh": 1, "ring": 1, "catchup": 1, "since": 1, "invalid": 1}
    assert core.metric(PREFIX + 'ring"} 1\n')

    record = topic.append(0, b"live")
    await core.settle()
    for sink in (fresh, ring, catchup, since, garbled):
        assert sink.take() == stream([record], {0: 10})
    assert resumes(core) == {"fresh": 1, "ring": 1, "catchup": 1, "since": 1, "invalid": 1}, (
        "joining the live stream counts nothing more"
    )


async def test_an_id_past_the_end_is_invalid_and_the_policy_applies() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    for i in range(3):
        topic.append(0, b"r%d" % i)
    sink = core.open("t", start=StartAt(EARLIEST, positions={0: 50}))
    await core.settle()
    assert sink.take() == b"", "ahead of the reader: it waits"
    assert resumes(core) == {}
    core.sources.live("t").report_extent()
    await core.settle()
    assert sink.take() == stream(topic.log, {0: 0})
    assert resumes(core) == {"invalid": 1}


async def test_outcomes_of_the_same_kind_add_up_per_route() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    topic.append(0, b"v")
    for _ in range(3):
        core.open("t", start=StartAt(EARLIEST, positions={0: 0}))
    core.open("t", route="/other")
    await core.settle()
    assert resumes(core) == {"ring": 3}
    assert core.metric('ssegate_resume_total{route="/other",outcome="fresh"} 1\n')
