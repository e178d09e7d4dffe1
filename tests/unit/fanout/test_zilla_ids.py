"""Resuming from Zilla's ids: a partition listed at -1 (Zilla delivered nothing from it)
is read from its beginning, or under `latest` from its end; nothing the client has is
sent again (issue 14 item 1)."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.kafka.eventid import parse_event_id
from ssegate.routing import StartPolicy
from tests.unit.fanout.expect import event, stream
from tests.unit.fanout.harness import Core, key_filter


def zilla_start(text: str, policy: StartPolicy) -> StartAt:
    parsed = parse_event_id(text)
    return StartAt(policy, parsed.progress, live=parsed.live)


async def test_a_minus_one_partition_is_read_from_its_beginning() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t", partitions=3)
    # As in Zilla's run: key A first on p2; p1 holds only other keys; p0 is empty.
    for _ in range(4):
        topic.append(1, b"other", key=b"B")
    topic.append(2, b"A1", key=b"A")
    # Zilla's id for A1: {p0: -1, p1: 3, p2: 1}.
    zilla_id = "AQYAAQIGBAI="
    later = [topic.append(0, b"A2", key=b"A"), topic.append(2, b"A3", key=b"A")]
    sink = core.open(
        "t", start=zilla_start(zilla_id, StartPolicy.EARLIEST), filters=key_filter(b"A")
    )
    await core.settle()
    # A2 (on the -1 partition) and A3, once each; not A1, which the client has. The ids
    # count from where the client stood, past B at p1@3 (read again, filtered out again).
    a2, a3 = later
    assert sink.take() == event(a2, {0: 1, 1: 4, 2: 1}) + event(a3, {0: 1, 1: 4, 2: 2})
    await core.close()


async def test_under_latest_a_minus_one_partition_starts_at_its_end() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t", partitions=2)
    topic.append(0, b"old")  # before the reconnect, on the partition Zilla listed at -1
    topic.append(1, b"seen")
    zilla_id = "AQQAAQIC"  # {p0: -1, p1: 1}
    assert parse_event_id(zilla_id).live == {0}
    sink = core.open("t", start=zilla_start(zilla_id, StartPolicy.LATEST))
    await core.settle()
    assert sink.take() == b""
    new = [topic.append(0, b"new"), topic.append(1, b"next")]
    await core.settle()
    assert sink.take() == stream(new, {0: 1, 1: 1})
    await core.close()
