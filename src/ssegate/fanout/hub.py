"""One topic in one process: its shared reader, its ring, its subscription groups.

The hub is the reader's listener: each batch is appended to the ring, the live progress
moves record by record, and each record is offered only to the groups that can want it
(groups whose filters all name keys are indexed by key; the rest are scanned). Every group
that took something gets one write per member. Then subscribers waiting for the reader to
reach them are looked at again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from itertools import chain
from typing import TYPE_CHECKING

from ssegate.fanout.encode import checkpoint, encode_record
from ssegate.fanout.group import SubscriptionGroup
from ssegate.kafka.eventid import IdForm
from ssegate.kafka.position import Position
from ssegate.kafka.reader import Ack, PartitionStart, TopicReader
from ssegate.kafka.ring import TopicRing
from ssegate.routing.filters import ResolvedFilters, matches
from ssegate.sse.wire import COMMENT

if TYPE_CHECKING:
    from ssegate.fanout.service import Fanout
    from ssegate.fanout.subscriber import Subscriber
    from ssegate.kafka.records import KafkaRecord

logger = logging.getLogger("ssegate.fanout")


def _accept_all(record: KafkaRecord) -> bool:
    return True


class TopicHub:
    """The shared reader of a topic and everything subscribed to it."""

    def __init__(self, service: Fanout, topic: str, *, dynamic: bool) -> None:
        self.service = service
        self.topic = topic
        self.dynamic = dynamic
        ring = service.ring_config
        self.ring = TopicRing(ring.max_records, ring.max_bytes)
        self.progress = Position()  # the reader's position: the live progress
        self.partitions: dict[int, PartitionStart] = {}
        self._ends: dict[int, int] = {}
        self.assigned = False
        self.missing = False
        self.failure: str | None = None
        self.groups: dict[tuple[object, ...], SubscriptionGroup] = {}
        self._by_key: dict[bytes, list[SubscriptionGroup]] = {}
        self._scan: list[SubscriptionGroup] = []
        self.subscribers: dict[Subscriber, None] = {}
        self.waiting: dict[Subscriber, None] = {}
        metrics = service.metrics
        self._records_read = metrics.records_read.labels(topic)
        self._missing_gauge = metrics.topic_missing.labels(topic)
        self.reader = TopicReader(
            topic,
            service.reader_config,
            self,
            service.loop,
            prefill=ring.max_records,
            metadata_refresh=service.metadata_refresh,
            max_delay=service.max_delay,
        )

    def __repr__(self) -> str:
        return (
            f"<TopicHub {self.topic} partitions={len(self.partitions)} "
            f"groups={len(self.groups)} subscribers={len(self.subscribers)}>"
        )

    def start(self) -> None:
        self.reader.start()

    # -- positions -------------------------------------------------------------------------

    def position(self, partition: int) -> int:
        """The next offset the reader hands over for `partition`."""
        position = self.progress.get(partition)
        return position if position is not None else self.partitions[partition].start

    def end_offset(self, partition: int) -> int:
        """The partition's end as last known: where a `latest` stream begins."""
        return max(self.position(partition), self._ends.get(partition, 0))

    def lag(self) -> int:
        return sum(max(self._ends.get(p, 0) - self.position(p), 0) for p in self.partitions)

    @staticmethod
    def accepts_for(filters: ResolvedFilters) -> Callable[[KafkaRecord], bool]:
        if not filters:
            return _accept_all

        def accepts(record: KafkaRecord) -> bool:
            return matches(filters, record.key, record.headers)

        return accepts

    # -- membership ------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers[subscriber] = None
        subscriber.advance()

    def join(self, subscriber: Subscriber) -> None:
        """Make a subscriber whose position equals the reader's a live group member."""
        key = subscriber.group_key
        group = self.groups.get(key)
        if group is None:
            stats = subscriber.stats
            group = SubscriptionGroup(
                key,
                events_delivered=stats.events,
                bytes_delivered=stats.bytes,
                progress=self.progress.encoded(),
                now=self.service.loop.time(),
            )
            self.groups[key] = group
            if group.index_keys is None:
                self._scan.append(group)
            else:
                for record_key in group.index_keys:
                    self._by_key.setdefault(record_key, []).append(group)
        self.waiting.pop(subscriber, None)
        group.members[subscriber] = None
        subscriber.went_live(group)

    def leave(self, subscriber: Subscriber) -> None:
        self.subscribers.pop(subscriber, None)
        self.waiting.pop(subscriber, None)
        group = subscriber.group
        if group is not None:
            group.members.pop(subscriber, None)
            if not group.members:
                self._drop_group(group)
        if not self.subscribers:
            self.service.hub_idle(self)

    def _drop_group(self, group: SubscriptionGroup) -> None:
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
        if self.waiting:
            for subscriber in list(self.waiting):
                self.waiting.pop(subscriber, None)
                subscriber.advance()

    # -- ReaderListener --------------------------------------------------------------------

    def on_partitions(self, partitions: Mapping[int, PartitionStart]) -> None:
        now_ms = self.service.now_ms()
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

    def on_batch(self, records: list[KafkaRecord], eofs: dict[int, int], ack: Ack) -> None:
        try:
            self._dispatch(records, eofs)
        finally:
            ack()
        self._wake_waiting()

    def _dispatch(self, records: list[KafkaRecord], eofs: dict[int, int]) -> None:
        ring = self.ring
        progress = self.progress
        by_key = self._by_key
        scan = self._scan
        touched: list[SubscriptionGroup] = []
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
                    frame = frames[group.form] = encode_record(record, text, group.form)
                if not group.frames:
                    touched.append(group)
                group.add(frame, exact)
        if eofs:
            now_ms = self.service.now_ms()
            for partition, end in eofs.items():
                progress.reached_end(partition, end, now_ms)
        self._records_read.value += len(records)
        if touched:
            now = self.service.loop.time()
            high_water = self.service.high_water
            over: list[Subscriber] = []
            for group in touched:
                over.extend(group.flush(now, high_water))
            for subscriber in over:
                subscriber.close("slow_client")

    def on_topic_missing(self) -> None:
        self.missing = True
        self._missing_gauge.set(1)

    def on_high_watermarks(self, high: Mapping[int, int]) -> None:
        self._ends.update(high)
        # A partition read to its end has seen everything stamped before the fetch that
        # reported that end; fetches of idle partitions come every fetch.wait.max.ms (0.5 s),
        # so a second back is safe (kafka.position rule 2).
        seen_before = self.service.now_ms() - 1000
        for partition, end in high.items():
            if partition in self.partitions and self.position(partition) >= end:
                self.progress.reached_end(partition, end, seen_before)
        for subscriber in list(self.waiting):
            subscriber.reject_position(high)

    def on_gap(self, lost: Mapping[int, tuple[int, int]]) -> None:
        pass  # the shared reader starts within the log; only catch-up readers meet gaps

    def on_failure(self, message: str) -> None:
        self.failure = message
        logger.error("the reader of topic %r failed (%s); ending its streams", self.topic, message)
        self.service.hub_failed(self)

    # -- heartbeats ------------------------------------------------------------------------

    def heartbeat(self, now: float, interval: float) -> None:
        """Keep idle streams open; move their resume point past filtered-out records."""
        high_water = self.service.high_water
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
            subscriber.close("slow_client")
        for subscriber in list(self.subscribers):
            if subscriber.group is None and now - subscriber.last_write >= interval:
                subscriber.heartbeat(now)
