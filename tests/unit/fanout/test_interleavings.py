"""Random interleavings of appends, live and catch-up batches, streams opening fresh or
resuming from any id they were sent, pauses, loop turns and heartbeats.

The invariant is the delivery promise (docs/guarantees.md): for every client, what it got
before the id it resumed from, followed by what it got since, is per partition exactly the
records its filters accept, in offset order, none missing, none twice; and every id it got
(on an event or alone) is a resume point: per partition, it has received exactly the
accepted records below it. An event's id is the progress just after its record. At the end
every open stream is live and has everything; shutdown gives each one last valid id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import State
from ssegate.kafka.eventid import decode_progress
from ssegate.routing import StartPolicy
from ssegate.routing.filters import ResolvedFilter, ResolvedFilters, canonicalize
from ssegate.sources.memory import MemoryTopic
from ssegate.sources.record import Record
from ssegate.sse.stream import CloseReason
from tests.unit.fanout.expect import blocks
from tests.unit.fanout.harness import Core, RecordingSink, key_filter

KEYS = (b"a", b"b", b"c", None)
HEADER = ("h", b"1")

# Each filter with its meaning, written out independently of the fan-out's matching.
FILTERS: tuple[tuple[ResolvedFilters, Callable[[Record], bool]], ...] = (
    ((), lambda r: True),
    (key_filter(b"a"), lambda r: r.key == b"a"),  # indexed by key
    (key_filter(b"a", b"b"), lambda r: r.key in (b"a", b"b")),
    (  # scanned: no key to index by
        canonicalize([ResolvedFilter(headers=(HEADER,))]),
        lambda r: HEADER in (r.headers or ()),
    ),
)

Got = dict[int, list[int]]  # partition -> offsets received, in order
HIGH_WATER = 100


@dataclass
class Client:
    sink: RecordingSink
    accepts: Callable[[Record], bool]
    filter_index: int
    start: dict[int, int] | None  # the id it resumed from; None: it opened fresh
    before: Got  # what it had received before that id
    closed: bool = field(default=False)


def check(client: Client, topic: MemoryTopic) -> tuple[list[tuple[dict[int, int], Got]], Got]:
    """Assert the invariant over everything the client got; each id it got, with what it
    had received up to it; and what it has received in all."""
    partitions = range(len(topic.partitions))
    got = {p: list(offsets) for p, offsets in client.before.items()}
    ids = []
    for ident, kind, data in blocks(bytes(client.sink.data)):
        if ident is None:
            assert (kind, data) == (None, None), "a comment, or an event without an id"
            continue
        assert kind is None, f"no gaps or deletes here, got event:{kind}"
        progress = decode_progress(ident)
        assert set(progress) == set(partitions), f"{progress} names every partition"
        if data is not None:
            partition, offset = map(int, data.split(b":"))
            assert progress[partition] == offset + 1, "the id is the progress after its record"
            got[partition].append(offset)
        for p in partitions:
            owed = [r.offset for r in topic.partitions[p][: progress[p]] if client.accepts(r)]
            assert got[p] == owed, f"partition {p} below {progress}: got {got[p]}, owed {owed}"
        ids.append((progress, {p: list(offsets) for p, offsets in got.items()}))
    return ids, got


class Append(NamedTuple):
    partition: int
    records: int
    shape: int  # bits 0-1: the key (KEYS), bit 2: the header


class Live(NamedTuple):
    limit: int


class CatchUp(NamedTuple):
    which: int
    limit: int


class Open(NamedTuple):
    which: int  # 0: fresh; else resume from an id of client `which` (modulo)
    id_index: int  # which of its ids (modulo)
    filter_index: int  # for a fresh stream (a resumed one keeps its client's filters)
    close_old: bool  # the old client leaves first


class Pause(NamedTuple):
    which: int
    over: bool  # its unsent bytes are past the high-water mark too: a live stream falls behind


class Unpause(NamedTuple):
    which: int


class Turn(NamedTuple):
    turns: int


class Beat(NamedTuple):
    pass


class Settle(NamedTuple):
    pass


Op = Append | Live | CatchUp | Open | Pause | Unpause | Turn | Beat | Settle
APPEND = st.builds(Append, st.integers(0, 2), st.integers(1, 3), st.integers(0, 7))
OPEN = st.builds(Open, st.integers(0, 7), st.integers(0, 63), st.integers(0, 3), st.booleans())
OPS: st.SearchStrategy[Op] = st.one_of(
    APPEND,
    APPEND,
    st.builds(Live, st.integers(1, 4)),
    st.builds(Live, st.integers(1, 4)),
    st.builds(CatchUp, st.integers(0, 3), st.integers(1, 4)),
    st.builds(CatchUp, st.integers(0, 3), st.integers(1, 4)),
    OPEN,
    OPEN,
    OPEN,
    st.builds(Pause, st.integers(0, 7), st.booleans()),
    st.builds(Unpause, st.integers(0, 7)),
    st.builds(Turn, st.integers(1, 3)),
    st.just(Beat()),
    st.just(Settle()),
)
OP_LISTS = st.lists(OPS, min_size=15, max_size=60)
FIRST = st.builds(Open, st.just(0), st.just(0), st.integers(0, 3), st.just(False))
CONFIG = st.fixed_dictionaries(
    {
        "partitions": st.integers(1, 3),
        "ring_records": st.integers(2, 12),
        "replay_chunk": st.integers(1, 3),
        "batch_size": st.integers(1, 4),
        "max_catchup": st.integers(1, 2),
    }
)


async def run(config: dict[str, int], ops: list[Op]) -> None:
    partitions = config.pop("partitions")
    batch_size = config.pop("batch_size")
    core = Core.build(
        asyncio.get_running_loop(),
        batch_size=batch_size,
        heartbeat=5.0,
        high_water=HIGH_WATER,
        **config,
    )
    topic = core.topic("t", partitions)
    clients: list[Client] = []
    nothing: Got = {p: [] for p in range(partitions)}

    def open_client(filter_index: int, start: dict[int, int] | None, before: Got) -> None:
        filters, accepts = FILTERS[filter_index]
        begin = StartAt(StartPolicy.EARLIEST, positions=start)
        sink = core.open("t", start=begin, filters=filters)
        clients.append(Client(sink, accepts, filter_index, start, before))

    def client(which: int) -> Client | None:
        chosen = clients[which % len(clients)] if clients else None
        return None if chosen is None or chosen.closed or chosen.sink.closed else chosen

    for op in ops:
        match op:
            case Append(partition, records, shape):
                p = partition % partitions
                for _ in range(records):
                    headers = [HEADER] if shape & 4 else None
                    value = b"%d:%d" % (p, topic.end(p))
                    topic.append(p, value, key=KEYS[shape % 4], headers=headers)
            case Live(limit):
                hub = core.fanout.hubs.get("t")
                if hub is not None and hub.assigned:
                    core.sources.live("t").deliver(limit=limit)
            case CatchUp(which, limit):
                catchups = core.sources.catchups()
                if catchups:
                    catchups[which % len(catchups)].deliver(limit=limit)
            case Open(0, _, filter_index, _):
                open_client(filter_index, None, nothing)
            case Open(which, id_index, _, close_old):
                old = clients[which % len(clients)]
                ids, _ = check(old, topic)
                points = [(old.start, old.before)] if old.start is not None else []
                points += ids
                if not points:  # it got no id yet: a reconnect starts afresh
                    open_client(old.filter_index, None, nothing)
                    continue
                start, before = points[id_index % len(points)]
                if close_old and not old.closed:
                    old.sink.client_closes()
                    old.closed = True
                open_client(old.filter_index, dict(start), before)
            case Pause(which, over):
                if (paused := client(which)) is not None:
                    paused.sink.pause()
                    paused.sink.backlog = HIGH_WATER + 1 if over else 0
            case Unpause(which):
                if (paused := client(which)) is not None:
                    paused.sink.backlog = 0
                    paused.sink.resume()
            case Turn(turns):
                await core.sources.turn(turns)
            case Beat():
                core.clock.advance(5.0)
                core.fanout.tick()
            case Settle():
                await core.settle()

    for each in clients:
        if not each.closed and not each.sink.closed and each.sink.paused:
            each.sink.backlog = 0
            each.sink.resume()
    await core.settle()
    for each, subscriber in zip(clients, core.subscribers, strict=True):
        _, got = check(each, topic)
        if each.sink.closed and not each.closed:  # it fell behind the ring: ended by the server
            assert each.sink.end_reason is CloseReason.SLOW_CLIENT
            each.closed = True
        if each.closed:
            continue
        assert subscriber.state is State.LIVE
        everything = {p: [r.offset for r in topic.partitions[p] if each.accepts(r)] for p in got}
        assert got == everything, "nothing missing at the end"

    await core.close()
    for each in clients:
        check(each, topic)  # the final checkpoint is a valid resume point too
        if not each.closed:
            assert each.sink.end_reason is CloseReason.SHUTDOWN


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(config=CONFIG, appends=st.lists(APPEND, max_size=6), first=FIRST, ops=OP_LISTS)
def test_every_client_gets_the_log_once_in_order_whatever_the_interleaving(
    config: dict[str, int], appends: list[Op], first: Op, ops: list[Op]
) -> None:
    asyncio.run(run(dict(config), [*appends, first, *ops]))
