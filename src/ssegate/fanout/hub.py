"""One topic in one process: its live source, its ring, its subscription groups.

The hub is the live source's listener: each batch is appended to the ring, the live
progress moves record by record, and each record is offered only to the groups that can
want it (groups whose filters all name keys are indexed by key; the rest are scanned).
Every group that took something gets one write per member. Then subscribers waiting for
the source to reach them are looked at again.

The hub also drives its subscribers' state machines (`advance`): it parks those that wait
for the source, and makes those that caught up live members of their group.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from itertools import chain

from ssegate.fanout.context import FanoutOptions, StreamContext
from ssegate.fanout.encode import checkpoint, encode_live
from ssegate.fanout.group import GroupKey, SubscriptionGroup
from ssegate.fanout.replay import ReplayCache
from ssegate.fanout.ring import TopicRing
from ssegate.fanout.start import StartAt
from ssegate.fanout.subscriber import Next, Subscriber
from ssegate.kafka.eventid import IdForm
from ssegate.kafka.position import Position
from ssegate.observe.metrics import GatewayMetrics, RouteStats
from ssegate.sources.protocol import Ack, PartitionStart, Source, SourceFailure
from ssegate.sources.record import UNDECODED, Record
from ssegate.sse.stream import CloseReason, EventSink
from ssegate.sse.wire import COMMENT

logger = logging.getLogger("ssegate.fanout")

# A partition read to its end has seen everything stamped before the fetch that reported
# that end. Fetches of idle partitions come every fetch.wait.max.ms (20 ms here), so a
# second back is safe (kafka.position rule 2).
EXTENT_MARGIN_MS = 1000


class TopicState(enum.Enum):
    """What `/ready` says of a topic."""

    STARTING = "starting"  # the source has not said which partitions it reads
    MISSING = "missing"  # the topic does not exist (streams wait for it)
    OK = "ok"
    FAILED = "no reader"  # the source failed; it is opened again after a delay


Group = SubscriptionGroup[Subscriber]


class TopicHub:
    """The live source of a topic and everything subscribed to it."""

    def __init__(
        self,
        topic: str,
        context: StreamContext,
        metrics: GatewayMetrics,
        *,
        dynamic: bool,
        on_idle: Callable[[TopicHub], None],
        on_failed: Callable[[TopicHub, SourceFailure], None],
    ) -> None:
        self.topic = topic
        self.dynamic = dynamic  # no route names it literally: closed when idle
        self._context = context
        options: FanoutOptions = context.options
        self._clock = context.clock
        self._high_water = options.high_water
        self.ring = TopicRing(options.ring_records, options.ring_bytes)
        self.replays = ReplayCache()
        self.progress = Position()  # the live source's position: the live progress
        self.partitions: dict[int, PartitionStart] = {}
        self._ends: dict[int, int] = {}
        self.assigned = False
        self.missing = False
        self.failure: SourceFailure | None = None
        self.groups: dict[GroupKey, Group] = {}
        self._by_key: dict[bytes, list[Group]] = {}
        self._scan: list[Group] = []
        self.subscribers: dict[Subscriber, None] = {}
        self._waiting: dict[Subscriber, None] = {}
        self._on_idle = on_idle
        self._on_failed = on_failed
        self._records_read = metrics.records_read.labels(topic)
        self._missing_gauge = metrics.topic_missing.labels(topic)
        self.source: Source = context.sources.open_live(topic, self, prefill=options.ring_records)

    def __repr__(self) -> str:
        return (
            f"<TopicHub {self.topic} partitions={len(self.partitions)} "
            f"groups={len(self.groups)} subscribers={len(self.subscribers)}>"
        )

    def start(self) -> None:
        self.source.start()

    @property
    def state(self) -> TopicState:
        if self.failure is not None:
            return TopicState.FAILED
        if self.missing:
            return TopicState.MISSING
        return TopicState.OK if self.assigned else TopicState.STARTING

    # -- positions (TopicView) -------------------------------------------------------------

    def position(self, partition: int) -> int:
        """The next offset the source hands over for `partition`."""
        position = self.progress.get(partition)
        return position if position is not None else self.partitions[partition].start

    def end_offset(self, partition: int) -> int:
        """The partition's end as last known: where a `latest` stream begins."""
        return max(self.position(partition), self._ends.get(partition, 0))

    def lag(self) -> int:
        return sum(max(self._ends.get(p, 0) - self.position(p), 0) for p in self.partitions)

    # -- membership ------------------------------------------------------------------------

    def subscribe(
        self,
        sink: EventSink,
        *,
        key: GroupKey,
        stats: RouteStats,
        start: StartAt,
        on_close: Callable[[CloseReason], None] | None = None,
    ) -> Subscriber:
        subscriber = Subscriber(
            self, self._context, self, sink, key=key, stats=stats, start=start, on_close=on_close
        )
        sink.listener = subscriber
        stats.open.inc()
        stats.opened.inc()
        self.subscribers[subscriber] = None
        self.advance(subscriber)
        return subscriber

    def advance(self, subscriber: Subscriber) -> None:
        """Run the subscriber's state machine one step and do what it asks (Membership)."""
        self._waiting.pop(subscriber, None)
        step = subscriber.advance()
        if step is Next.WAIT:
            self._waiting[subscriber] = None
        elif step is Next.JOIN:
            self._join(subscriber)

    def _join(self, subscriber: Subscriber) -> None:
        """Make a subscriber whose position equals the source's a live group member."""
        key = subscriber.key
        group = self.groups.get(key)
        if group is None:
            stats = subscriber.stats
            group = Group(
                key,
                events_delivered=stats.events,
                bytes_delivered=stats.bytes,
                progress=self.progress.encoded(),
                now=self._clock.monotonic(),
            )
            self.groups[key] = group
            if group.index_keys is None:
                self._scan.append(group)
            else:
                for record_key in group.index_keys:
                    self._by_key.setdefault(record_key, []).append(group)
        group.members[subscriber] = None
        subscriber.went_live(group, self.progress.id_progress(None))

    def leave(self, subscriber: Subscriber) -> None:
        """The subscriber closed (Membership)."""
        self.subscribers.pop(subscriber, None)
        self._waiting.pop(subscriber, None)
        group = subscriber.group
        if group is not None:
            group.members.pop(subscriber, None)
            if not group.members:
                self._drop_group(group)
        if not self.subscribers:
            self._on_idle(self)

    def _drop_group(self, group: Group) -> None:
        del self.groups[group.key]
        if group.index_keys is None:
            self._scan.remove(group)
        else:
            for record_key in group.index_keys:
                indexed = self._by_key[record_key]
                indexed.remove(group)
                if not indexed:
                    del self._by_key[record_key]

    def _wake_waiting(self) -> None:
        if self._waiting:
            for subscriber in list(self._waiting):
                if subscriber in self._waiting:
                    self.advance(subscriber)

    def close_all(self, reason: CloseReason) -> None:
        """End every stream cleanly, each with a checkpoint of where to resume."""
        for subscriber in list(self.subscribers):
            subscriber.close(reason, final=subscriber.final_checkpoint())

    # -- SourceListener --------------------------------------------------------------------

    def on_partitions(self, partitions: Mapping[int, PartitionStart]) -> None:
        now_ms = self._clock.wall_ms()
        for partition, start in partitions.items():
            self.partitions[partition] = start
            self.ring.start_partition(partition, start.start, log_start=start.log_start)
            self.progress.set(partition, start.start)
            if start.start >= start.high:  # at the end already: later records are stamped later
                self.progress.set_time(partition, now_ms)
            self._ends[partition] = max(self._ends.get(partition, 0), start.high)
        self.assigned = True
        self.missing = False
        self._missing_gauge.set(0)
        self._wake_waiting()

    def on_batch(self, records: list[Record], eofs: dict[int, int], ack: Ack) -> None:
        try:
            self._dispatch(records, eofs)
        finally:
            ack()
        self._wake_waiting()

    def _dispatch(self, records: list[Record], eofs: dict[int, int]) -> None:
        ring = self.ring
        progress = self.progress
        by_key = self._by_key
        scan = self._scan
        touched: list[Group] = []
        for record in records:
            partition = record.partition
            position = progress.get(partition)
            if position is not None and record.offset < position:
                continue  # a redelivery after a broker failover: already handed over
            progress.passed(record)
            ring.append(record)
            indexed = by_key.get(record.key) if record.key is not None else None
            if indexed is None and not scan:
                continue
            text: str | None = None
            exact = ""
            frames: dict[IdForm, bytes] = {}
            for group in chain(indexed or (), scan):
                if not group.accepts(record):
                    continue
                if text is None:
                    text = progress.id_progress(record)
                    exact = progress.encoded()
                frame = frames.get(group.form)
                if frame is None:
                    frame = frames[group.form] = encode_live(record, text, group.form)
                if not group.frames:
                    touched.append(group)
                group.add(frame, exact)
            if record.decoded is not UNDECODED:
                # Value filters decoded it for this dispatch; the ring keeps the bytes only
                # (a decoded document is several times their size, and uncounted).
                record.decoded = UNDECODED
        if eofs:
            now_ms = self._clock.wall_ms()
            for partition, end in eofs.items():
                progress.reached_end(partition, end, now_ms)
        self._records_read.value += len(records)
        if touched:
            now = self._clock.monotonic()
            high_water = self._high_water
            over: list[Subscriber] = []
            for group in touched:
                over.extend(group.flush(now, high_water))
            for subscriber in over:
                self._fall_behind(subscriber)

    def _fall_behind(self, subscriber: Subscriber) -> None:
        """A live member's unsent data passed the high-water mark: it leaves its group and
        replays from the ring, along the live trail, as fast as it reads."""
        group = subscriber.group
        assert group is not None
        group.members.pop(subscriber, None)
        if not group.members:
            self._drop_group(group)
        subscriber.fall_behind(self.progress.copy(), group.last_progress)

    def on_missing(self) -> None:
        self.missing = True
        self._missing_gauge.set(1)

    def on_extent(self, ends: Mapping[int, int]) -> None:
        self._ends.update(ends)
        seen_before = self._clock.wall_ms() - EXTENT_MARGIN_MS
        for partition, end in ends.items():
            if partition in self.partitions and self.position(partition) >= end:
                self.progress.reached_end(partition, end, seen_before)
        for subscriber in list(self._waiting):
            if subscriber.reject_position(ends):
                self.advance(subscriber)

    def on_gap(self, lost: Mapping[int, tuple[int, int]]) -> None:
        pass  # the live source starts within the log; only catch-up sources meet gaps

    def on_failure(self, failure: SourceFailure) -> None:
        if self.failure is not None:
            return
        self.failure = failure
        logger.error("the source of topic %r failed: %s; ending its streams", self.topic, failure)
        self._on_failed(self, failure)

    # -- heartbeats ------------------------------------------------------------------------

    def heartbeat(self, now: float, interval: float) -> None:
        """Keep idle streams open; move their resume point past filtered-out records; end
        the streams that fell behind the ring without reading (the others notice when they
        ask for their next chunk)."""
        high_water = self._high_water
        over: list[Subscriber] = []
        progress: str | None = None
        for group in self.groups.values():
            if now - group.last_write < interval:
                continue
            if progress is None:
                progress = self.progress.id_progress(None)
            if progress != group.last_progress:
                payload = checkpoint(progress, group.form)
                group.last_progress = progress
            else:
                payload = COMMENT
            over.extend(group.write_all(payload, now, high_water))
        for subscriber in over:
            self._fall_behind(subscriber)
        for subscriber in list(self.subscribers):
            if subscriber.group is not None:
                continue
            if subscriber.fell_off_ring():
                subscriber.close(CloseReason.SLOW_CLIENT)
            elif now - subscriber.last_write >= interval:
                subscriber.heartbeat(now)
