"""The seam between the fan-out and where records come from.

A source is one named, partitioned, offset-addressed log: a Kafka topic, an upstream SSE
stream (one partition), or an in-memory log in unit tests. The fan-out opens two kinds:

- a *live* source per name, shared by every stream of that name: it starts near the end
  (up to `prefill` records back, so the ring holds recent history at once), says which
  partitions it reads from where, then hands over batches as records arrive;
- a *catch-up* source per stream that resumes from before the ring: it reads from given
  positions until stopped.

Everything a source says arrives through `SourceListener`, on the event loop's thread, in
order. At most a bounded number of batches are unacknowledged at once: a listener that
keeps `ack` holds the source back (flow control), so a slow client costs Kafka, not memory.

`Lookup` answers the two questions that need a round trip (offsets for a time, the current
ends); its answers are futures on the loop, so nothing here blocks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ssegate.sources.record import Record

Ack = Callable[[], None]
"""Called by the listener when it is done with a batch (idempotent)."""


@dataclass(frozen=True, slots=True)
class PartitionStart:
    """Where a live source begins a partition, and the partition's bounds at that moment."""

    start: int
    low: int
    high: int

    @property
    def log_start(self) -> bool:
        """Whether nothing older exists: the source begins at the log's first offset."""
        return self.start <= self.low


@dataclass(frozen=True, slots=True)
class SourceFailure:
    """Why a source stopped. `retriable`: opening it again may well work (a broker that
    went away); otherwise it will fail the same way until someone changes something (an
    authorization or configuration error), so retrying is slow and loud."""

    message: str
    retriable: bool

    def __str__(self) -> str:
        kind = "retriable" if self.retriable else "not retriable"
        return f"{self.message} ({kind})"


class SourceListener(Protocol):
    """What a source tells the fan-out. Every method runs on the loop's thread."""

    def on_partitions(self, partitions: Mapping[int, PartitionStart]) -> None:
        """Partitions now read, each from `start` (live sources; also partitions added)."""

    def on_batch(self, records: list[Record], eofs: dict[int, int], ack: Ack) -> None:
        """Records in offset order per partition; `eofs`: partitions read to `end` now."""

    def on_missing(self) -> None:
        """The name does not exist (yet); the source keeps looking."""

    def on_extent(self, ends: Mapping[int, int]) -> None:
        """The partitions' current ends (next offset to be written), as last seen."""

    def on_gap(self, lost: Mapping[int, tuple[int, int]]) -> None:
        """Positions `(from, to)` that retention deleted: reading resumes at `to`."""

    def on_failure(self, failure: SourceFailure) -> None:
        """The source stopped for good; the fan-out may open it again later."""


class Source(Protocol):
    """One open source (see the module docstring)."""

    def start(self) -> None: ...

    def stop(self) -> None:
        """Stop reading soon. News already on its way to the loop may still arrive, so a
        listener ignores what a source it stopped tells it."""


class Lookup(Protocol):
    """Position questions that need a round trip; answers arrive as futures on the loop."""

    def offsets_for_time(
        self, name: str, partitions: Iterable[int], time_ms: int
    ) -> asyncio.Future[dict[int, int]]:
        """Per partition, the first offset stamped at or after `time_ms`, else the end."""

    def end_offsets(self, name: str, partitions: Iterable[int]) -> asyncio.Future[dict[int, int]]:
        """Per partition, the offset the next record will get."""


class Sources(Lookup, Protocol):
    """Opens sources by name; what the fan-out is given instead of a Kafka client."""

    def open_live(self, name: str, listener: SourceListener, *, prefill: int) -> Source: ...

    def open_catchup(
        self, name: str, positions: Mapping[int, int], listener: SourceListener
    ) -> Source: ...

    async def close(self, within: float) -> None:
        """Stop every source opened here and wait, up to `within` seconds, until they and
        the lookups have released what they hold (threads, connections)."""
