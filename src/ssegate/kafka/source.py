"""Kafka as the fan-out's sources: a `TopicReader` thread per live topic, a `CatchUpReader`
per stream resuming from before the ring, and one `OffsetLookup` for time and end
questions (implements `ssegate.sources.Sources`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ssegate.kafka.lookup import OffsetLookup
from ssegate.kafka.reader import CatchUpReader, ConsumerThread, TopicReader, consumer_config
from ssegate.sources.protocol import SourceListener

if TYPE_CHECKING:
    from ssegate.config.schema import KafkaConfig, SseOptions

# librdkafka prefetches up to 64 MiB per partition by default; a catch-up reader serves
# one client, so it gets a small queue.
CATCHUP_QUEUE_KBYTES = 4096


class KafkaSources:
    """Opens readers on one Kafka cluster; joins their threads on `close`."""

    def __init__(
        self,
        bootstrap_servers: str,
        properties: Mapping[str, Any],
        loop: asyncio.AbstractEventLoop,
        *,
        metadata_refresh: float,
        max_delay: float,
    ) -> None:
        self._loop = loop
        self._metadata_refresh = metadata_refresh
        self._max_delay = max_delay
        self._reader_config = consumer_config(bootstrap_servers, properties)
        self._catchup_config = consumer_config(
            bootstrap_servers,
            properties,
            **{"queued.max.messages.kbytes": CATCHUP_QUEUE_KBYTES},
        )
        self._lookup = OffsetLookup(self._reader_config, loop)
        self._threads: list[ConsumerThread] = []

    @classmethod
    def from_config(
        cls, kafka: KafkaConfig, sse: SseOptions, loop: asyncio.AbstractEventLoop
    ) -> KafkaSources:
        return cls(
            kafka.bootstrap_servers,
            kafka.properties,
            loop,
            metadata_refresh=float(kafka.metadata_refresh),
            max_delay=float(sse.max_delay),
        )

    def __repr__(self) -> str:
        return f"<KafkaSources readers={len(self._threads)}>"

    def _track(self, thread: ConsumerThread) -> None:
        # Forget threads that finished, so a long-lived process does not keep them all.
        self._threads = [t for t in self._threads if not t.finished]
        self._threads.append(thread)

    def open_live(self, name: str, listener: SourceListener, *, prefill: int) -> TopicReader:
        reader = TopicReader(
            name,
            self._reader_config,
            listener,
            self._loop,
            prefill=prefill,
            metadata_refresh=self._metadata_refresh,
            max_delay=self._max_delay,
        )
        self._track(reader)
        return reader

    def open_catchup(
        self, name: str, positions: Mapping[int, int], listener: SourceListener
    ) -> CatchUpReader:
        reader = CatchUpReader(
            name, self._catchup_config, listener, self._loop, positions=positions
        )
        self._track(reader)
        return reader

    def offsets_for_time(
        self, name: str, partitions: Iterable[int], time_ms: int
    ) -> asyncio.Future[dict[int, int]]:
        return self._lookup.offsets_for_time(name, partitions, time_ms)

    def end_offsets(self, name: str, partitions: Iterable[int]) -> asyncio.Future[dict[int, int]]:
        return self._lookup.end_offsets(name, partitions)

    async def close(self, within: float) -> None:
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.stop()
        self._lookup.close()
        await asyncio.gather(
            *(asyncio.to_thread(thread.join, within) for thread in threads),
            return_exceptions=True,
        )
