"""Kafka consumers on their own threads, handing batches of records to the event loop.

Theory of operation:

1. A `TopicReader` is the one consumer of a topic per process: every partition assigned,
   no consumer group (librdkafka insists on a `group.id`, which is never joined nor
   committed). It begins each partition up to `prefill` records before the end, so its
   ring holds recent history the moment it starts: clients resuming after a deploy are
   served from memory. It looks again every `metadata_refresh` seconds for a topic that did
   not exist yet and for partitions added since, which it reads from their first offset.
2. A `CatchUpReader` reads one subscriber's positions forward, for a client older than the
   ring, until the loop tells it to stop.
3. Each thread calls `consume(1, timeout)`, which returns as soon as one record is there,
   then drains what is already fetched with `consume(n, 0)`: an idle topic's record goes out
   at once, and one batch becomes one write per connection. A busy topic (the last batch left
   less than `max_delay` ago) gathers for up to `max_delay` after its first record, because
   the cost of a delivery is the write, not the event: ten events in one write cost about
   what one does (docs/decisions/0006-coalesced-writes.md).
4. A batch crosses to the loop with one `call_soon_threadsafe`. At most `max_in_flight`
   batches are between the thread and the loop; the listener acknowledges each one when it
   is done with it, so a slow loop or client holds records back in Kafka, not in memory.
5. Everything the loop learns arrives through the `ssegate.sources.SourceListener` methods,
   on the loop; a reader that stops for good says why with a `SourceFailure` that tells a
   broker that went away (retriable) from a refusal that will not change (authorization,
   configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from ssegate.kafka.records import record_from_message
from ssegate.sources.protocol import PartitionStart, SourceFailure, SourceListener
from ssegate.sources.record import Record

logger = logging.getLogger("ssegate.kafka.reader")
_librdkafka_logger = logging.getLogger("ssegate.kafka.librdkafka")

MAX_BATCH = 2000
MAX_IN_FLIGHT = 2
POLL_TIMEOUT = 0.2


# Errors that will not go away by opening the reader again: someone has to change the
# cluster's ACLs, the credentials or the configuration first.
_NOT_RETRIABLE = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
        KafkaError._INVALID_ARG,
        KafkaError._SSL,
    }
)


def failure_of(exc: BaseException) -> SourceFailure:
    """What a reader's exception means to the fan-out: the message, and whether to retry."""
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        error: KafkaError = exc.args[0]
        retriable = not error.fatal() and error.code() not in _NOT_RETRIABLE
        return SourceFailure(message, retriable)
    # A librdkafka configuration mistake raises these from Consumer(); nothing else does.
    return SourceFailure(message, not isinstance(exc, (ValueError, TypeError)))


def consumer_config(
    bootstrap_servers: str, properties: Mapping[str, Any], **overrides: Any
) -> dict[str, Any]:
    """librdkafka settings for a reader: the user's properties, then what ssegate needs."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        # librdkafka's 500 ms default let a record wait behind a fetch held for another
        # partition: filtered 10,000 x 5,000/s had p99 470 ms, 110 ms at 20 ms
        # (docs/performance.md).
        "fetch.wait.max.ms": 20,
    }
    config.update(properties)
    config.update(
        {
            # Required by librdkafka, never used: no subscribe(), no commits.
            "group.id": f"ssegate-{socket.gethostname()}-{os.getpid()}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,  # EOF tells how far a partition has been read
            "auto.offset.reset": "earliest",  # an offset gone to retention: the oldest left
            "logger": _librdkafka_logger,
        }
    )
    config.update(overrides)
    return config


class ConsumerThread:
    """A consumer on a daemon thread; subclasses decide what to assign."""

    kind = "reader"

    def __init__(
        self,
        topic: str,
        config: Mapping[str, Any],
        listener: SourceListener,
        loop: asyncio.AbstractEventLoop,
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_delay: float = 0.0,
    ) -> None:
        self.topic = topic
        self._config = dict(config)
        self._listener = listener
        self._loop = loop
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._last_batch = 0.0  # monotonic time the last batch was handed over
        self._in_flight = threading.Semaphore(max_in_flight)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"ssegate-{self.kind}-{topic}", daemon=True
        )
        self.consumer: Consumer | None = None

    def __repr__(self) -> str:
        state = "stopping" if self._stopping.is_set() else "running"
        return f"<{type(self).__name__} topic={self.topic} {state}>"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish; it closes its consumer itself."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def finished(self) -> bool:
        """Whether the thread has started and ended: nothing more will come from it."""
        return self._thread.ident is not None and not self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        consumer: Consumer | None = None
        try:
            consumer = Consumer(self._config)
            self.consumer = consumer
            if self._setup(consumer):
                self._consume_loop(consumer)
        except Exception as exc:  # the thread must report, never die silently
            logger.exception("%s for topic %r failed", self.kind, self.topic)
            self._post(self._listener.on_failure, failure_of(exc))
        finally:
            if consumer is not None:
                with contextlib.suppress(Exception):
                    consumer.close()

    def _setup(self, consumer: Consumer) -> bool:
        raise NotImplementedError

    def _periodic(self, consumer: Consumer) -> None:
        """Called between polls; subclasses refresh metadata here."""

    def _consume_loop(self, consumer: Consumer) -> None:
        while not self._stopping.is_set():
            self._periodic(consumer)
            messages = consumer.consume(1, POLL_TIMEOUT)
            if not messages:
                continue
            first = time.monotonic()
            if first - self._last_batch < self._max_delay:
                # Busy: gather until max_delay after this first record (rule 3). consume(n, t)
                # returns when it has n records or t has passed, whichever comes first.
                wanted = self._max_batch - len(messages)
                messages.extend(consumer.consume(wanted, self._max_delay))
            if self._max_batch > len(messages):
                messages.extend(consumer.consume(self._max_batch - len(messages), 0))
            records, eofs = self._convert(messages)
            self._last_batch = time.monotonic()
            if (records or eofs) and not self._post_batch(records, eofs):
                return

    def _convert(self, messages: list[Message]) -> tuple[list[Record], dict[int, int]]:
        records: list[Record] = []
        eofs: dict[int, int] = {}
        for message in messages:
            error = message.error()
            if error is None:
                records.append(record_from_message(message))
            elif error.code() == KafkaError._PARTITION_EOF:
                eofs[message.partition() or 0] = message.offset() or 0
            else:
                logger.warning("%s for topic %r: %s", self.kind, self.topic, error.str())
        return records, eofs

    def _post_batch(self, records: list[Record], eofs: dict[int, int]) -> bool:
        while not self._in_flight.acquire(timeout=0.5):
            if self._stopping.is_set():
                return False
        released = threading.Event()

        def ack() -> None:
            if not released.is_set():
                released.set()
                self._in_flight.release()

        return self._post(self._listener.on_batch, records, eofs, ack)

    def _post(self, callback: Callable[..., None], *args: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the process is shutting down
            self._stopping.set()
            return False
        return True

    def _watermarks(
        self, consumer: Consumer, partitions: list[int], *, cached: bool = False
    ) -> dict[int, tuple[int, int]]:
        result = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=10, cached=cached
            )
            result[partition] = (low, high)
        return result


class TopicReader(ConsumerThread):
    """The shared reader of one topic (rule 1)."""

    kind = "reader"

    def __init__(
        self,
        topic: str,
        config: Mapping[str, Any],
        listener: SourceListener,
        loop: asyncio.AbstractEventLoop,
        *,
        prefill: int,
        metadata_refresh: float,
        max_delay: float = 0.0,
    ) -> None:
        super().__init__(topic, config, listener, loop, max_delay=max_delay)
        self._prefill = prefill
        self._metadata_refresh = metadata_refresh
        self._next_refresh = 0.0
        self._partitions: set[int] = set()

    def _setup(self, consumer: Consumer) -> bool:
        said_missing = False
        while not self._stopping.is_set():
            try:
                partitions = self._list_partitions(consumer)
            except KafkaException as exc:
                logger.warning("reader %r: cannot read metadata: %s", self.topic, exc)
                partitions = None
            if partitions:
                self._assign(consumer, partitions, prefill=True)
                return True
            if partitions is not None and not said_missing:
                said_missing = True
                logger.info("topic %r does not exist yet; streams wait for it", self.topic)
                self._post(self._listener.on_missing)
            self._stopping.wait(self._metadata_refresh)
        return False

    def _list_partitions(self, consumer: Consumer) -> list[int] | None:
        """The topic's partitions; [] when it does not exist; None on a broker error."""
        metadata = consumer.list_topics(self.topic, timeout=10)
        topic = metadata.topics.get(self.topic)
        if topic is None:
            return []
        if topic.error is not None:
            if topic.error.code() in (
                KafkaError.UNKNOWN_TOPIC_OR_PART,
                KafkaError.LEADER_NOT_AVAILABLE,
            ):
                return []
            raise KafkaException(topic.error)
        return sorted(topic.partitions)

    def _assign(self, consumer: Consumer, partitions: list[int], *, prefill: bool) -> None:
        starts: dict[int, PartitionStart] = {}
        per_partition = max(self._prefill // max(len(partitions), 1), 0) if prefill else 0
        for partition, (low, high) in self._watermarks(consumer, partitions).items():
            start = max(low, high - per_partition) if prefill else low
            starts[partition] = PartitionStart(start, low, high)
        # The loop learns the starts before any record of these partitions can arrive.
        self._post(self._listener.on_partitions, starts)
        assignment = [
            TopicPartition(self.topic, p, s.start if prefill else OFFSET_BEGINNING)
            for p, s in starts.items()
        ]
        consumer.incremental_assign(assignment)
        self._partitions.update(partitions)
        self._next_refresh = time.monotonic() + self._metadata_refresh
        logger.info(
            "reader %r assigned partitions %s",
            self.topic,
            {p: (s.start, s.high) for p, s in starts.items()},
        )

    def _periodic(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self._metadata_refresh
        try:
            partitions = self._list_partitions(consumer)
            cached = self._watermarks(consumer, sorted(self._partitions), cached=True)
            # A partition not fetched yet reports OFFSET_INVALID (-1001): no news.
            high = {p: h for p, (_, h) in cached.items() if h >= 0}
        except KafkaException as exc:
            logger.warning("reader %r: metadata refresh failed: %s", self.topic, exc)
            return
        self._post(self._listener.on_extent, high)
        added = sorted(set(partitions or ()) - self._partitions)
        if added:
            logger.info("topic %r gained partitions %s", self.topic, added)
            self._assign(consumer, added, prefill=False)


class CatchUpReader(ConsumerThread):
    """Reads one subscriber's positions forward until stopped (rule 2)."""

    kind = "catch-up"

    def __init__(
        self,
        topic: str,
        config: Mapping[str, Any],
        listener: SourceListener,
        loop: asyncio.AbstractEventLoop,
        *,
        positions: Mapping[int, int],
    ) -> None:
        # Two batches in flight: the next is read and converted while this one is written.
        super().__init__(topic, config, listener, loop, max_in_flight=2)
        self._positions = dict(positions)

    def _setup(self, consumer: Consumer) -> bool:
        bounds = self._watermarks(consumer, sorted(self._positions))
        lost = {
            p: (position, bounds[p][0])
            for p, position in self._positions.items()
            if position < bounds[p][0]
        }
        if lost:
            self._post(self._listener.on_gap, lost)
        consumer.assign(
            [
                TopicPartition(self.topic, p, max(position, bounds[p][0]))
                for p, position in self._positions.items()
            ]
        )
        return True
