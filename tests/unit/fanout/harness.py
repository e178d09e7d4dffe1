"""The fan-out core without Kafka or sockets: in-memory sources, a clock the test moves,
and sinks that record every byte a stream was sent.

    core = Core.build(loop)                      # a Fanout over MemorySources
    topic = core.topic("t", partitions=2)
    sink = core.open("t")                        # a stream with the route's default start
    topic.append(0, b"v")
    await core.settle()                          # deliver, replay, join: until quiet
    assert sink.data == frame(b"v", {0: 1, 1: 0})

Expected bytes are built with `frame`/`checkpoint_frame` from the id codec
(`ssegate.kafka.eventid`, which has its own vectors), so a test states exactly what a
client receives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from ssegate.fanout.context import FanoutOptions
from ssegate.fanout.group import GroupKey
from ssegate.fanout.service import Fanout
from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import Subscriber
from ssegate.kafka.eventid import IdForm, encode_progress
from ssegate.observe.metrics import GatewayMetrics
from ssegate.routing import StartPolicy
from ssegate.routing.filters import ResolvedFilter, ResolvedFilters, canonicalize
from ssegate.sources.memory import MemorySources, MemoryTopic
from ssegate.sse.stream import CloseReason, StreamListener
from ssegate.sse.wire import Decoder, Event


class FakeClock:
    """Loop seconds and wall milliseconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_700_000_000_000

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += int(seconds * 1000)


class Identity:
    """A framing that adds nothing: the sink records event bytes as a client parses them."""

    def frame(self, payload: bytes) -> bytes:
        return payload


IDENTITY = Identity()


class RecordingSink:
    """An open stream that keeps every byte; `backlog` and `paused` are the test's to set."""

    framing = IDENTITY

    def __init__(self) -> None:
        self.data = bytearray()
        self.listener: StreamListener | None = None
        self.closed = False
        self.end_reason: CloseReason | None = None
        self.abort_reason: CloseReason | None = None
        self.backlog = 0  # what buffered() reports
        self._paused = False
        self.flow_marks: tuple[int, int] | None = None  # the last set_flow_marks

    def __repr__(self) -> str:
        return f"<RecordingSink {len(self.data)} bytes closed={self.closed}>"

    # -- EventSink -------------------------------------------------------------------------

    def write(self, framed: bytes) -> None:
        assert not self.closed, "a closed stream was written to"
        self.data += framed

    def write_events(self, payload: bytes) -> None:
        assert not self.closed, "a closed stream was written to"
        self.data += payload

    def buffered(self) -> int:
        return self.backlog

    @property
    def paused(self) -> bool:
        return self._paused

    def set_flow_marks(self, high: int, low: int) -> None:
        self.flow_marks = (high, low)

    def end(self, reason: CloseReason, final: bytes = b"") -> None:
        assert not self.closed
        self.data += final
        self.closed = True
        self.end_reason = reason

    def abort(self, reason: CloseReason) -> None:
        assert not self.closed
        self.closed = True
        self.abort_reason = reason

    # -- what the test does as the client --------------------------------------------------

    def client_closes(self) -> None:
        self.closed = True
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.on_closed(CloseReason.CLIENT_CLOSED)

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        if self.listener is not None:
            self.listener.on_writable()

    def events(self) -> list[Event]:
        return Decoder().feed(bytes(self.data))

    def take(self) -> bytes:
        """The bytes received since the last `take`."""
        data = bytes(self.data)
        self.data.clear()
        return data


def frame(value: bytes, progress: Mapping[int, int]) -> bytes:
    """The event a record with `value` is delivered as, its id carrying `progress`."""
    text = encode_progress(progress)
    lines = b"".join(b"data:" + line + b"\n" for line in value.split(b"\n"))
    return b"id:" + text.encode() + b"\n" + lines + b"\n"


def checkpoint_frame(progress: Mapping[int, int]) -> bytes:
    """An id-only event: the client's resume point moves, no event fires."""
    return b"id:" + encode_progress(progress).encode() + b"\n\n"


def key_filter(*keys: bytes) -> ResolvedFilters:
    return canonicalize(ResolvedFilter(key=key) for key in keys)


@dataclass
class Core:
    """A Fanout over in-memory sources, with a fake clock."""

    loop: asyncio.AbstractEventLoop
    clock: FakeClock
    sources: MemorySources
    fanout: Fanout
    metrics: GatewayMetrics
    subscribers: list[Subscriber] = field(default_factory=list)

    @classmethod
    def build(
        cls, loop: asyncio.AbstractEventLoop, *, batch_size: int = 100, **options: object
    ) -> Core:
        clock = FakeClock()
        sources = MemorySources(loop, batch_size=batch_size)
        metrics = GatewayMetrics()
        fanout = Fanout(FanoutOptions(**options), metrics, sources, loop, clock=clock)  # type: ignore[arg-type]
        return cls(loop, clock, sources, fanout, metrics)

    def topic(self, name: str, partitions: int = 1) -> MemoryTopic:
        return self.sources.topic(name, partitions)

    def open(
        self,
        topic: str,
        *,
        start: StartAt | None = None,
        filters: ResolvedFilters = (),
        form: IdForm = IdForm.ETAG,
        route: str = "/r",
        sink: RecordingSink | None = None,
    ) -> RecordingSink:
        sink = sink or RecordingSink()
        subscriber = self.fanout.subscribe(
            sink,
            topic=topic,
            key=GroupKey(route, filters, form),
            stats=self.metrics.route(route),
            start=start or StartAt(StartPolicy.EARLIEST),
        )
        self.subscribers.append(subscriber)
        return sink

    async def settle(self, *, max_rounds: int = 1000) -> None:
        """Deliver, replay, join: until neither the sources nor the fan-out's queued work
        (replay chunks run one per stream per loop turn) have anything left."""
        for _ in range(max_rounds):
            await self.sources.settle()
            if not len(self.fanout.pump):
                return
        raise AssertionError(f"fan-out work still queued after {max_rounds} rounds")

    def metric(self, text: str) -> bool:
        return text in self.metrics.render()

    async def close(self) -> None:
        await self.fanout.close(within=1.0)
