"""The fan-out of a process: topic hubs, catch-up reader slots, heartbeats, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ssegate.config.schema import Config
from ssegate.fanout.group import GroupKey
from ssegate.fanout.hub import TopicHub
from ssegate.fanout.subscriber import StartAt, State, Subscriber
from ssegate.kafka.lookup import OffsetLookup
from ssegate.kafka.reader import ConsumerThread, consumer_config
from ssegate.observe.metrics import GatewayMetrics, RouteStats
from ssegate.sse.stream import EventSink

logger = logging.getLogger("ssegate.fanout")

# A hub of a topic no route names literally is closed this long after its last stream.
IDLE_HUB_SECONDS = 60.0
# librdkafka prefetches up to 64 MiB per partition by default; a catch-up reader serves
# one client, so it gets a small queue.
CATCHUP_QUEUE_KBYTES = 4096


class Fanout:
    """Every topic hub of this process, and what they share."""

    def __init__(self, config: Config, metrics: GatewayMetrics, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.metrics = metrics
        kafka = config.kafka
        self.ring_config = kafka.ring
        self.metadata_refresh = float(kafka.metadata_refresh)
        self.reader_config: dict[str, Any] = consumer_config(
            kafka.bootstrap_servers, kafka.properties
        )
        self.catchup_config: dict[str, Any] = consumer_config(
            kafka.bootstrap_servers,
            kafka.properties,
            **{"queued.max.messages.kbytes": CATCHUP_QUEUE_KBYTES},
        )
        self.max_catchup = kafka.max_catchup_readers
        self.compact_id_margin_ms = int(float(kafka.compact_id_margin) * 1000)
        self.lookup = OffsetLookup(self.reader_config, loop)
        self.high_water = int(config.limits.write_buffer_high_water)
        self.heartbeat_interval = float(config.sse.heartbeat)
        self.max_delay = float(config.sse.max_delay)
        self.hubs: dict[str, TopicHub] = {}
        self._static_topics: set[str] = set()
        self._catchup_running: dict[Subscriber, None] = {}
        self._catchup_queue: dict[Subscriber, None] = {}
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}
        self._ticker: asyncio.Task[None] | None = None
        metrics.registry.on_collect(self._collect)

    def __repr__(self) -> str:
        return f"<Fanout hubs={len(self.hubs)} catchup={len(self._catchup_running)}>"

    def start(self, static_topics: set[str]) -> None:
        """Start the readers of topics routes name literally, so their rings fill now."""
        self._static_topics = set(static_topics)
        for topic in sorted(static_topics):
            self.hub(topic)
        self._ticker = self.loop.create_task(self._heartbeats())

    def hub(self, topic: str) -> TopicHub:
        hub = self.hubs.get(topic)
        if hub is None:
            hub = TopicHub(self, topic, dynamic=topic not in self._static_topics)
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
        stats: RouteStats,
        topic: str,
        group_key: GroupKey,
        start: StartAt,
        on_close: Callable[[], None] | None = None,
    ) -> Subscriber:
        hub = self.hub(topic)
        subscriber = Subscriber(
            hub,
            sink,
            group_key=group_key,
            stats=stats,
            start=start,
            now=self.loop.time(),
            on_close=on_close,
        )
        sink.listener = subscriber
        stats.open.inc()
        stats.opened.inc()
        hub.subscribe(subscriber)
        return subscriber

    @staticmethod
    def now_ms() -> int:
        """Wall-clock milliseconds, the unit of Kafka's record timestamps."""
        return time.time_ns() // 1_000_000

    @property
    def open_streams(self) -> int:
        return sum(len(hub.subscribers) for hub in self.hubs.values())

    # -- catch-up slots --------------------------------------------------------------------

    def request_catchup(self, subscriber: Subscriber) -> None:
        if len(self._catchup_running) < self.max_catchup:
            self._catchup_running[subscriber] = None
            subscriber.start_catchup(self.catchup_config)
        else:
            subscriber.state = State.CATCHUP_WAITING
            self._catchup_queue[subscriber] = None

    def release_catchup(self, subscriber: Subscriber) -> None:
        self._catchup_running.pop(subscriber, None)
        while self._catchup_queue and len(self._catchup_running) < self.max_catchup:
            waiting = next(iter(self._catchup_queue))
            del self._catchup_queue[waiting]
            if waiting.state is State.CATCHUP_WAITING:
                self._catchup_running[waiting] = None
                waiting.start_catchup(self.catchup_config)

    def forget_waiting(self, subscriber: Subscriber) -> None:
        self._catchup_queue.pop(subscriber, None)

    # -- hub lifecycle ---------------------------------------------------------------------

    def hub_idle(self, hub: TopicHub) -> None:
        if hub.dynamic and hub.topic not in self._idle_timers:
            self._idle_timers[hub.topic] = self.loop.call_later(
                IDLE_HUB_SECONDS, self._close_idle, hub
            )

    def _close_idle(self, hub: TopicHub) -> None:
        self._idle_timers.pop(hub.topic, None)
        if not hub.subscribers and self.hubs.get(hub.topic) is hub:
            del self.hubs[hub.topic]
            hub.reader.stop()
            self.metrics.topic_missing.remove(hub.topic)

    def hub_failed(self, hub: TopicHub) -> None:
        """A reader died: end its streams (clients resume by id) and start afresh."""
        if self.hubs.get(hub.topic) is hub:
            del self.hubs[hub.topic]
        for subscriber in list(hub.subscribers):
            subscriber.close("error", final=subscriber.final_checkpoint())
        if hub.topic in self._static_topics:
            self.loop.call_later(self.metadata_refresh, self._restart_static, hub.topic)

    def _restart_static(self, topic: str) -> None:
        if topic not in self.hubs and self._ticker is not None:
            self.hub(topic)

    # -- heartbeats and metrics ------------------------------------------------------------

    async def _heartbeats(self) -> None:
        interval = self.heartbeat_interval
        tick = min(1.0, interval / 4)
        while True:
            await asyncio.sleep(tick)
            now = self.loop.time()
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
        metrics.catchup_readers.labels().set(len(self._catchup_running))
        metrics.catchup_waiting.labels().set(len(self._catchup_queue))

    # -- shutdown --------------------------------------------------------------------------

    def end_all(self, reason: str) -> None:
        """End every stream cleanly, each with a checkpoint of where to resume."""
        for hub in list(self.hubs.values()):
            for subscriber in list(hub.subscribers):
                subscriber.close(reason, final=subscriber.final_checkpoint())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for timer in self._idle_timers.values():
            timer.cancel()
        self._idle_timers.clear()
        readers: list[ConsumerThread] = [hub.reader for hub in self.hubs.values()]
        readers += [s.catchup for s in self._catchup_running if s.catchup is not None]
        for reader in readers:
            reader.stop()
        self.hubs.clear()
        self.lookup.close()
        await asyncio.gather(
            *(asyncio.to_thread(reader.join, 10.0) for reader in readers),
            return_exceptions=True,
        )
