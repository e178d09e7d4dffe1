"""Value filters in the fan-out: a record's JSON value decides, live and replayed, and the
ring keeps only the bytes (a decoded document is never left on a record)."""

from __future__ import annotations

import asyncio

from ssegate.fanout.start import StartAt
from ssegate.routing import ResolvedFilter, StartPolicy
from ssegate.sources.record import UNDECODED
from tests.unit.fanout.harness import Core

ACME = (ResolvedFilter(values=((("symbol",), "ACME"),)),)


async def test_value_filters_live_and_replayed_leave_no_documents_in_the_ring() -> None:
    core = Core.build(asyncio.get_running_loop())
    topic = core.topic("t")
    topic.append(0, b'{"symbol":"ACME","n":1}')
    topic.append(0, b'{"symbol":"OTHER","n":2}')
    replayed = core.open("t", filters=ACME, start=StartAt(StartPolicy.EARLIEST))
    await core.settle()
    live = core.open("t", filters=ACME, start=StartAt(StartPolicy.LATEST), route="/live")
    await core.settle()
    topic.append(0, b'{"symbol":"ACME","n":3}')
    topic.append(0, b"not json")
    await core.settle()
    assert [e.data for e in replayed.events()] == [
        '{"symbol":"ACME","n":1}',
        '{"symbol":"ACME","n":3}',
    ]
    assert [e.data for e in live.events()] == ['{"symbol":"ACME","n":3}']
    hub = core.fanout.hubs["t"]
    assert all(record.decoded is UNDECODED for record in hub.ring.replay({0: 0}, 100))
