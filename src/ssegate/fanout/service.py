"""The fan-out of a process: topic hubs over injected sources, catch-up turns, heartbeats,
failed sources opened again, shutdown.

`Fanout` is all the rest of ssegate sees of the fan-out: `subscribe` a sink, ask what it
holds (`open_streams`, `reads`, `topic_states`, `retry_after`), end every stream, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ssegate.fanout.catchup import CatchUpSlots
from ssegate.fanout.context import Clock, FanoutOptions, LoopClock, StreamContext
from ssegate.fanout.group import GroupKey
from ssegate.fanout.hub import TopicHub, TopicState
from ssegate.fanout.pump import TurnPump
from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import Subscriber
from ssegate.observe.metrics import GatewayMetrics, RouteStats
from ssegate.sources.protocol import SourceFailure, Sources
from ssegate.sse.stream import CloseReason, EventSink

logger = logging.getLogger("ssegate.fanout")

# A hub of a topic no route names literally is closed this long after its last stream.
IDLE_HUB_SECONDS = 60.0


class Fanout:
    """Every topic hub of this process, and what they share."""

    def __init__(
        self,
        options: FanoutOptions,
        metrics: GatewayMetrics,
        sources: Sources,
        loop: asyncio.AbstractEventLoop,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.loop = loop
        self.metrics = metrics
        self.options = options
        self.sources = sources
        self.catchups = CatchUpSlots(options.max_catchup)
        self.pump = TurnPump.on(loop)
        self.context = StreamContext(
            clock=clock or LoopClock(loop),
            sources=sources,
            catchups=self.catchups,
            options=options,
            schedule=self.pump,
        )
        self.hubs: dict[str, TopicHub] = {}
        self._static_topics: set[str] = set()
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}
        # Topics whose source failed: when it is opened again, and why it failed.
        self._failed: dict[str, tuple[float, SourceFailure]] = {}
        self._reopen_timers: dict[str, asyncio.TimerHandle] = {}
        self._ticker: asyncio.Task[None] | None = None
        metrics.registry.on_collect(self._collect)

    def __repr__(self) -> str:
        return f"<Fanout hubs={len(self.hubs)} {self.catchups!r}>"

    def start(self, static_topics: set[str]) -> None:
        """Open the sources of topics routes name literally, so their rings fill now."""
        self._static_topics = set(static_topics)
        for topic in sorted(static_topics):
            self._hub(topic)
        self._ticker = self.loop.create_task(self._heartbeats())

    def _hub(self, topic: str) -> TopicHub:
        hub = self.hubs.get(topic)
        if hub is None:
            self._failed.pop(topic, None)
            timer = self._reopen_timers.pop(topic, None)
            if timer is not None:
                timer.cancel()
            hub = TopicHub(
                topic,
                self.context,
                self.metrics,
                dynamic=topic not in self._static_topics,
                on_idle=self._hub_idle,
                on_failed=self._hub_failed,
            )
            self.hubs[topic] = hub
            hub.start()
        timer = self._idle_timers.pop(topic, None)
        if timer is not None:
            timer.cancel()
        return hub

    def subscribe(
        self,
        sink: EventSink,
        *,
        topic: str,
        key: GroupKey,
        stats: RouteStats,
        start: StartAt,
        on_close: Callable[[CloseReason], None] | None = None,
    ) -> Subscriber:
        """Add an open stream to the fan-out of `topic`, starting at `start`."""
        return self._hub(topic).subscribe(
            sink, key=key, stats=stats, start=start, on_close=on_close
        )

    # -- what the gateway may ask ----------------------------------------------------------

    @property
    def open_streams(self) -> int:
        return sum(len(hub.subscribers) for hub in self.hubs.values())

    @property
    def topics_read(self) -> int:
        return len(self.hubs)

    def reads(self, topic: str) -> bool:
        """Whether a source of `topic` is open (a new stream of it opens no new one)."""
        return topic in self.hubs

    def retry_after(self, topic: str) -> float | None:
        """Seconds until the failed source of `topic` is opened again, when it failed in
        a way retrying soon will not mend; else None (a stream may open it now)."""
        failed = self._failed.get(topic)
        if failed is None or failed[1].retriable:
            return None
        wait = failed[0] - self.loop.time()
        # Once due, the next stream opens it again (a topic no route names literally has
        # no timer to reopen it).
        return wait if wait > 0 else None

    def topic_states(self, topics: set[str]) -> dict[str, TopicState]:
        states = {}
        for topic in topics:
            hub = self.hubs.get(topic)
            states[topic] = TopicState.FAILED if hub is None else hub.state
        return states

    # -- hub lifecycle ---------------------------------------------------------------------

    def _hub_idle(self, hub: TopicHub) -> None:
        if hub.dynamic and hub.topic not in self._idle_timers and self.hubs.get(hub.topic) is hub:
            self._idle_timers[hub.topic] = self.loop.call_later(
                IDLE_HUB_SECONDS, self._close_idle, hub
            )

    def _close_idle(self, hub: TopicHub) -> None:
        self._idle_timers.pop(hub.topic, None)
        if not hub.subscribers and self.hubs.get(hub.topic) is hub:
            self._retire(hub)
            self.metrics.topic_missing.remove(hub.topic)

    def _retire(self, hub: TopicHub) -> None:
        del self.hubs[hub.topic]
        hub.source.stop()

    def _hub_failed(self, hub: TopicHub, failure: SourceFailure) -> None:
        """A source died: end its streams (clients resume by id), open it again later."""
        if self.hubs.get(hub.topic) is not hub:
            return
        self._retire(hub)
        delay = self.options.retry_failed if failure.retriable else self.options.retry_fatal
        self._failed[hub.topic] = (self.loop.time() + delay, failure)
        self.metrics.source_failures.labels(hub.topic, str(failure.retriable).lower()).inc()
        hub.close_all(CloseReason.ERROR)
        if hub.topic in self._static_topics:
            self._reopen_timers[hub.topic] = self.loop.call_later(
                delay, self._reopen_static, hub.topic
            )

    def _reopen_static(self, topic: str) -> None:
        self._reopen_timers.pop(topic, None)
        if topic not in self.hubs and self._ticker is not None:
            self._hub(topic)

    # -- heartbeats and metrics ------------------------------------------------------------

    async def _heartbeats(self) -> None:
        tick = min(1.0, self.options.heartbeat / 4)
        while True:
            await asyncio.sleep(tick)
            self.tick()

    def tick(self) -> None:
        """Write the heartbeats that are due (the ticker calls this; tests call it too)."""
        now = self.context.clock.monotonic()
        interval = self.options.heartbeat
        for hub in list(self.hubs.values()):
            try:
                hub.heartbeat(now, interval)
            except Exception:  # one hub's trouble must not stop the others' heartbeats
                logger.exception("heartbeat of topic %r failed", hub.topic)

    def _collect(self) -> None:
        metrics = self.metrics
        for topic, hub in self.hubs.items():
            metrics.reader_lag.labels(topic).set(hub.lag())
            stats = hub.ring.statistics()
            metrics.ring_records.labels(topic).set(stats.records)
            metrics.ring_bytes.labels(topic).set(stats.bytes)
            metrics.replay_shared.labels(topic).set(hub.replays.hits)
        metrics.catchup_readers.labels().set(self.catchups.running)
        metrics.catchup_waiting.labels().set(self.catchups.queued)

    # -- shutdown --------------------------------------------------------------------------

    def end_all(self, reason: CloseReason) -> None:
        """End every stream cleanly, each with a checkpoint of where to resume."""
        for hub in list(self.hubs.values()):
            hub.close_all(reason)

    async def close(self, within: float = 10.0) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for timer in (*self._idle_timers.values(), *self._reopen_timers.values()):
            timer.cancel()
        self._idle_timers.clear()
        self._reopen_timers.clear()
        self.end_all(CloseReason.SHUTDOWN)  # also stops their catch-up sources
        for topic in list(self.hubs):
            self._retire(self.hubs[topic])
        await self.sources.close(within)
