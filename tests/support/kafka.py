"""Test helpers around a real Kafka broker: fresh topics, producing, reading back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from ssegate.devkafka.topics import create_topic


@dataclass(frozen=True, slots=True)
class Record:
    """One record to produce. `value=None` is a tombstone."""

    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where the broker put a produced record."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Consumed:
    """A record read back from Kafka."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = field(default=())


@dataclass
class KafkaCluster:
    """The broker the test session uses, with helpers bound to it."""

    bootstrap: str

    def new_topic(
        self,
        partitions: int = 3,
        config: Mapping[str, str] | None = None,
        prefix: str = "test",
    ) -> str:
        """Create a topic with a unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        create_topic(self.bootstrap, name, partitions, config)
        return name

    def producer(self) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0, "acks": "all"})

    def produce(self, topic: str, records: Iterable[Record]) -> list[Delivered]:
        """Produce `records` in order and return where each landed, in the same order."""
        producer = self.producer()
        results: dict[int, Delivered | KafkaError] = {}

        def on_delivery(index: int) -> Callable[[KafkaError | None, Message], None]:
            def record_result(err: KafkaError | None, msg: Message) -> None:
                results[index] = err or Delivered(topic, msg.partition(), msg.offset())

            return record_result

        count = 0
        for count, record in enumerate(records, start=1):
            kwargs: dict[str, Any] = {"on_delivery": on_delivery(count - 1)}
            if record.headers:
                kwargs["headers"] = list(record.headers)
            if record.partition is not None:
                kwargs["partition"] = record.partition
            producer.produce(topic, record.value, record.key, **kwargs)
            producer.poll(0)
        remaining = producer.flush(30)
        assert remaining == 0, f"{remaining} records were not delivered within 30 s"
        ordered = [results[i] for i in range(count)]
        errors = [r for r in ordered if isinstance(r, KafkaError)]
        assert not errors, f"delivery failed: {errors}"
        return [r for r in ordered if isinstance(r, Delivered)]

    def read_all(self, topic: str, expected: int, timeout: float = 30.0) -> list[Consumed]:
        """Read `expected` records from the start of every partition of `topic`."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            consumer.assign([TopicPartition(topic, p, 0) for p in sorted(metadata.partitions)])
            out: list[Consumed] = []
            deadline = time.monotonic() + timeout
            while len(out) < expected and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=500, timeout=0.5):
                    assert msg.error() is None, msg.error()
                    out.append(
                        Consumed(
                            partition=msg.partition(),
                            offset=msg.offset(),
                            key=msg.key(),
                            value=msg.value(),
                            headers=tuple(
                                (k, v if v is not None else b"") for k, v in msg.headers() or ()
                            ),
                        )
                    )
            return out
        finally:
            consumer.close()


def delete_records_before(bootstrap: str, topic: str, offsets: Mapping[int, int]) -> None:
    """Kafka's delete-records: what retention does, on demand."""
    from ssegate.devkafka.topics import admin_client

    admin = admin_client(bootstrap)
    futures = admin.delete_records([TopicPartition(topic, p, o) for p, o in offsets.items()])
    for future in futures.values():
        future.result(30)


def add_partitions(bootstrap: str, topic: str, total: int) -> None:
    from confluent_kafka.admin import NewPartitions

    from ssegate.devkafka.topics import admin_client

    admin = admin_client(bootstrap)  # held until the futures complete
    futures = admin.create_partitions([NewPartitions(topic, total)])
    for future in futures.values():
        future.result(30)
