"""What the fan-out's parts are given: options, a clock, and a topic's read-only view.

A subscriber sees its topic through `TopicView` (positions, partitions, the ring) and the
process through `StreamContext` (clock, sources and their lookups, catch-up slots,
options, the loop's `call_soon`); it never reaches through the hub. Everything here is
injected, so the core runs in unit tests over in-memory sources and a fake clock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ssegate.fanout.catchup import CatchUpSlots
from ssegate.fanout.replay import ReplayCache
from ssegate.fanout.ring import TopicRing
from ssegate.kafka.position import Position
from ssegate.sources.protocol import PartitionStart, Sources

if TYPE_CHECKING:
    import asyncio

    from ssegate.config.schema import Config


class Clock(Protocol):
    """Time as the fan-out needs it."""

    def monotonic(self) -> float:
        """Seconds on the loop's clock: heartbeats and write times."""

    def wall_ms(self) -> int:
        """Wall-clock milliseconds, the unit of Kafka's record timestamps."""


class LoopClock:
    """The event loop's clock and the system's wall clock."""

    __slots__ = ("_time",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._time = loop.time

    def monotonic(self) -> float:
        return self._time()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class FanoutOptions:
    """The fan-out's settings, read once from the configuration."""

    ring_records: int = 100_000
    ring_bytes: int = 64 * 1024 * 1024
    high_water: int = 1024 * 1024  # unsent bytes a live stream may hold before it falls behind
    heartbeat: float = 15.0
    max_catchup: int = 8  # catch-up sources open at once; more streams wait their turn
    compact_id_margin_ms: int = 1000
    # Seconds before a source that failed is opened again (retriable failures), and after
    # a failure that will not go away by itself (configuration, authorization).
    retry_failed: float = 5.0
    retry_fatal: float = 60.0
    replay_chunk: int = 1000  # records per loop turn while replaying: bounds loop latency
    # Record value bytes per replay chunk: what a replaying stream may add to its socket's
    # buffer past its flow-control mark.
    replay_chunk_bytes: int = 64 * 1024
    # Flow-control marks (pause above, go on below; unsent bytes) while a stream replays the
    # ring, and while it reads a catch-up source. The buffer only has to cover the time to
    # refill it: a loop turn for the ring, a Kafka fetch for a catch-up (smaller marks cost
    # 8 % of catch-up throughput). When every client is behind, the replay marks and chunk
    # are what each stream holds: 1.5 GiB for 10,000 streams in `overload` against 2.4 GiB
    # with the catch-up marks, for the same deliveries.
    replay_marks: tuple[int, int] = (64 * 1024, 16 * 1024)
    catchup_marks: tuple[int, int] = (256 * 1024, 64 * 1024)
    # A stream closed for slowness is told to reconnect after a random time in this range
    # (seconds), so streams closed together do not all come back together.
    slow_retry_min: float = 1.0
    slow_retry_max: float = 5.0

    @classmethod
    def from_config(cls, config: Config) -> FanoutOptions:
        kafka = config.kafka
        return cls(
            ring_records=kafka.ring.max_records,
            ring_bytes=int(kafka.ring.max_bytes),
            high_water=int(config.limits.write_buffer_high_water),
            heartbeat=float(config.sse.heartbeat),
            max_catchup=kafka.max_catchup_readers,
            compact_id_margin_ms=int(float(kafka.compact_id_margin) * 1000),
            retry_failed=float(kafka.metadata_refresh),
        )


class TopicView(Protocol):
    """What a subscriber may read of its topic (implemented by the topic's hub)."""

    @property
    def topic(self) -> str: ...

    @property
    def assigned(self) -> bool:
        """Whether the live source has said which partitions it reads."""

    @property
    def partitions(self) -> Mapping[int, PartitionStart]: ...

    @property
    def ring(self) -> TopicRing: ...

    @property
    def replays(self) -> ReplayCache: ...

    @property
    def progress(self) -> Position:
        """The live source's position: what a live subscriber has seen."""

    def position(self, partition: int) -> int:
        """The next offset the live source hands over for `partition`."""

    def end_offset(self, partition: int) -> int:
        """The partition's end as last known: where a `latest` stream begins."""


@dataclass(frozen=True, slots=True)
class StreamContext:
    """What every subscriber of a process shares."""

    clock: Clock
    sources: Sources
    catchups: CatchUpSlots
    options: FanoutOptions
    # Runs work on a later loop iteration (`TurnPump`: slices that leave room for I/O).
    schedule: Callable[[Callable[[], None]], object]
    jitter: Callable[[], float] = random.random  # in [0, 1): spreads reconnects
