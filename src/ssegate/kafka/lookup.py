"""Answers that need a round trip to Kafka: offsets for a time, a partition's bounds.

One consumer on one worker thread serves every stream of the process (`?since=` and
compact ids resolve through it); the loop awaits the answer and never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

logger = logging.getLogger("ssegate.kafka.lookup")

TIMEOUT = 10.0


class OffsetLookup:
    def __init__(self, config: Mapping[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self._config = dict(config)
        self._loop = loop
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ssegate-lookup")
        self._consumer: Consumer | None = None

    def offsets_for_time(
        self, topic: str, partitions: Iterable[int], time_ms: int
    ) -> asyncio.Future[dict[int, int]]:
        """Per partition, the first offset stamped at or after `time_ms` (else the end)."""
        return self._loop.run_in_executor(
            self._executor, self._offsets_for_time, topic, list(partitions), time_ms
        )

    def _offsets_for_time(self, topic: str, partitions: list[int], time_ms: int) -> dict[int, int]:
        consumer = self._get_consumer()
        query = [TopicPartition(topic, p, time_ms) for p in partitions]
        answer: dict[int, int] = {}
        for found in consumer.offsets_for_times(query, timeout=TIMEOUT):
            if found.error is not None:
                raise KafkaException(found.error)
            offset = found.offset
            if offset < 0:  # nothing stamped that late yet: the partition's end
                _, offset = consumer.get_watermark_offsets(
                    TopicPartition(topic, found.partition), timeout=TIMEOUT, cached=False
                )
            answer[found.partition] = offset
        return answer

    def end_offsets(self, topic: str, partitions: Iterable[int]) -> asyncio.Future[dict[int, int]]:
        """Per partition, the offset the next record will get (a fresh high watermark)."""
        return self._loop.run_in_executor(
            self._executor, self._end_offsets, topic, list(partitions)
        )

    def _end_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        consumer = self._get_consumer()
        ends = {}
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=TIMEOUT, cached=False
            )
            ends[partition] = high
        return ends

    def _get_consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self._config)
        return self._consumer

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                self._executor.submit(consumer.close)
        self._executor.shutdown(wait=False)
