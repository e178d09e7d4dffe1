"""Sources over logs held in memory: the fan-out's unit tests drive it through these.

Nothing here runs by itself: a test appends records to a `MemoryTopic` and decides when
each open source hands over its next batch (`deliver`), reports its extent, gains
partitions or fails, so every interleaving of batches, joins and resumes can be chosen.
`MemorySources.settle()` delivers everything pending and lets the loop run until nothing
moves. Behaviour follows the Kafka sources where the fan-out relies on it:

- a live source starts each partition up to `prefill / partitions` records before its end
  and reports the partitions (with the log's bounds) before any record;
- a catch-up source reports the positions retention deleted (`on_gap`), then reads from the
  oldest offset left; records deleted later, while a source is behind them, are skipped
  silently (Kafka's `auto.offset.reset: earliest`);
- a batch carries records in append order (offset order per partition) and, for each
  partition read to its end by it, an end-of-partition mark, as librdkafka's
  `enable.partition.eof` does;
- at most `max_in_flight` batches are unacknowledged; a held `ack` holds the source back;
- lookups answer on a later loop turn, never at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ssegate.sources.protocol import PartitionStart, SourceFailure, SourceListener
from ssegate.sources.record import Headers, Record

__all__ = ["MemorySource", "MemorySources", "MemoryTopic"]


class MemoryTopic:
    """A partitioned log; offsets count from 0 per partition, timestamps rise by 1 ms."""

    def __init__(self, name: str, partitions: int = 1, *, first_timestamp: int = 1_000_000):
        self.name = name
        self.partitions: list[list[Record]] = [[] for _ in range(partitions)]
        self._low = [0] * partitions
        self.log: list[Record] = []  # every record, in append order
        self.next_timestamp = first_timestamp

    def __repr__(self) -> str:
        return (
            f"<MemoryTopic {self.name} partitions={len(self.partitions)} records={len(self.log)}>"
        )

    def append(
        self,
        partition: int,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Headers | None = None,
        timestamp: int | None = None,
    ) -> Record:
        """Append a record (a tombstone when `value` is None) and return it."""
        records = self.partitions[partition]
        if timestamp is None:
            timestamp = self.next_timestamp
        self.next_timestamp = max(self.next_timestamp, timestamp) + 1
        record = Record(partition, len(records), key, value, headers, timestamp)
        records.append(record)
        self.log.append(record)
        return record

    def add_partitions(self, count: int) -> None:
        self.partitions.extend([] for _ in range(count))
        self._low.extend([0] * count)

    def delete_before(self, partition: int, offset: int) -> None:
        """Retention: offsets below `offset` of `partition` are gone."""
        self._low[partition] = max(self._low[partition], min(offset, self.end(partition)))

    def low(self, partition: int) -> int:
        return self._low[partition]

    def end(self, partition: int) -> int:
        return len(self.partitions[partition])

    def offset_for_time(self, partition: int, time_ms: int) -> int:
        for record in self.partitions[partition][self.low(partition) :]:
            if record.timestamp >= time_ms:
                return record.offset
        return self.end(partition)


@dataclass
class MemorySource:
    """One open source over a `MemoryTopic` (live or catch-up); see the module docstring."""

    sources: MemorySources
    name: str
    listener: SourceListener
    live: bool
    prefill: int = 0
    positions: dict[int, int] = field(default_factory=dict)
    batch_size: int = 100
    max_in_flight: int = 2
    started: bool = False
    opened: bool = False
    stopped: bool = False
    in_flight: int = 0
    _eof_at: dict[int, int] = field(default_factory=dict)  # partition -> end last reported
    # Records of `topic.log` before this index are delivered or never wanted (positions only
    # grow), so a batch need not look at them again; partitions added reset it.
    _cursor: int = 0

    def __repr__(self) -> str:
        kind = "live" if self.live else "catch-up"
        return f"<MemorySource {kind} {self.name} {self.positions} stopped={self.stopped}>"

    # -- Source ----------------------------------------------------------------------------

    def start(self) -> None:
        self.started = True
        self.sources.loop.call_soon(self._open)

    def stop(self) -> None:
        self.stopped = True

    # -- what a test drives ----------------------------------------------------------------

    @property
    def topic(self) -> MemoryTopic | None:
        return self.sources.topics.get(self.name)

    def _open(self) -> None:
        if self.stopped or self.opened:
            return
        topic = self.topic
        if self.live:
            if topic is None or not topic.partitions:
                self.listener.on_missing()
                return
            per_partition = self.prefill // len(topic.partitions)
            starts = {}
            for partition in range(len(topic.partitions)):
                low, high = topic.low(partition), topic.end(partition)
                starts[partition] = PartitionStart(max(low, high - per_partition), low, high)
            self.positions = {p: s.start for p, s in starts.items()}
            self.opened = True
            self.listener.on_partitions(starts)
            return
        assert topic is not None, "a catch-up source needs its topic"
        lost = {
            p: (position, topic.low(p))
            for p, position in self.positions.items()
            if position < topic.low(p)
        }
        self.positions = {p: max(position, topic.low(p)) for p, position in self.positions.items()}
        self.opened = True
        if lost:
            self.listener.on_gap(lost)

    def refresh(self) -> None:
        """What a metadata refresh finds: the topic now exists, or it gained partitions."""
        if self.stopped or not self.live:
            return
        if not self.opened:
            self._open()
            return
        topic = self.topic
        assert topic is not None
        added = {
            p: PartitionStart(topic.low(p), topic.low(p), topic.end(p))
            for p in range(len(topic.partitions))
            if p not in self.positions
        }
        if added:
            self._cursor = 0
            self.positions.update({p: s.start for p, s in added.items()})
            self.listener.on_partitions(added)

    def rewind(self, partition: int, offset: int) -> None:
        """What a broker failover may do: hand over `partition` again from `offset`."""
        self.positions[partition] = offset
        self._cursor = 0
        self._eof_at.pop(partition, None)

    def report_extent(self) -> None:
        topic = self.topic
        if self.stopped or topic is None or not self.opened:
            return
        self.listener.on_extent({p: topic.end(p) for p in self.positions})

    def pending(self) -> bool:
        """Whether `deliver` would hand over something now."""
        topic = self.topic
        if self.stopped or not self.opened or topic is None:
            return False
        if self.in_flight >= self.max_in_flight:
            return False
        return any(
            self._eof_at.get(p) != topic.end(p) or position < topic.end(p)
            for p, position in self.positions.items()
        )

    def deliver(self, limit: int | None = None) -> bool:
        """Hand over the next batch (up to `limit` or `batch_size` records); False if none."""
        if not self.pending():
            return False
        topic = self.topic
        assert topic is not None
        wanted = limit if limit is not None else self.batch_size
        positions = self.positions
        for partition, next_offset in positions.items():
            # Deleted while this source was behind: like Kafka's `auto.offset.reset:
            # earliest`, it reads on from the oldest offset left (and so reaches the end
            # even when retention deleted everything it had left).
            positions[partition] = max(next_offset, topic.low(partition))
        records: list[Record] = []
        log = topic.log
        index = self._cursor
        while index < len(log) and len(records) < wanted:
            record = log[index]
            index += 1
            position = positions.get(record.partition)
            if position is not None and record.offset >= position:
                records.append(record)
                positions[record.partition] = record.offset + 1
        self._cursor = index
        eofs: dict[int, int] = {}
        for partition, position in positions.items():
            end = topic.end(partition)
            if position >= end and self._eof_at.get(partition) != end:
                eofs[partition] = end
                self._eof_at[partition] = end
        if not records and not eofs:
            return False
        # A fresh copy per delivery: the fan-out stamps `seq` and caches on records.
        batch = [_copy(record) for record in records]
        self.in_flight += 1
        acked = False

        def ack() -> None:
            nonlocal acked
            if not acked:
                acked = True
                self.in_flight -= 1

        self.listener.on_batch(batch, eofs, ack)
        return True

    def fail(self, failure: SourceFailure) -> None:
        self.stopped = True
        self.listener.on_failure(failure)


def _copy(record: Record) -> Record:
    return Record(
        record.partition,
        record.offset,
        record.key,
        record.value,
        record.headers,
        record.timestamp,
    )


class MemorySources:
    """`Sources` over `MemoryTopic`s (implements `ssegate.sources.protocol.Sources`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, batch_size: int = 100) -> None:
        self.loop = loop
        self.batch_size = batch_size
        self.topics: dict[str, MemoryTopic] = {}
        self.opened: list[MemorySource] = []
        self.lookups = 0
        self.fail_lookups: str | None = None  # when set, every lookup fails with this text
        self.closed = False

    def topic(self, name: str, partitions: int = 1) -> MemoryTopic:
        """The topic called `name`, created with `partitions` if it does not exist."""
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = MemoryTopic(name, partitions)
        return topic

    # -- Sources ---------------------------------------------------------------------------

    def open_live(self, name: str, listener: SourceListener, *, prefill: int) -> MemorySource:
        source = MemorySource(
            self, name, listener, live=True, prefill=prefill, batch_size=self.batch_size
        )
        self.opened.append(source)
        return source

    def open_catchup(
        self, name: str, positions: Mapping[int, int], listener: SourceListener
    ) -> MemorySource:
        source = MemorySource(
            self, name, listener, live=False, positions=dict(positions), batch_size=self.batch_size
        )
        self.opened.append(source)
        return source

    def offsets_for_time(
        self, name: str, partitions: Iterable[int], time_ms: int
    ) -> asyncio.Future[dict[int, int]]:
        topic = self.topics[name]
        return self._answer({p: topic.offset_for_time(p, time_ms) for p in partitions})

    def end_offsets(self, name: str, partitions: Iterable[int]) -> asyncio.Future[dict[int, int]]:
        topic = self.topics[name]
        return self._answer({p: topic.end(p) for p in partitions})

    def _answer(self, offsets: dict[int, int]) -> asyncio.Future[dict[int, int]]:
        self.lookups += 1
        future: asyncio.Future[dict[int, int]] = self.loop.create_future()
        if self.fail_lookups is not None:
            self.loop.call_soon(future.set_exception, RuntimeError(self.fail_lookups))
        else:
            self.loop.call_soon(future.set_result, offsets)
        return future

    async def close(self, within: float) -> None:
        for source in self.opened:
            source.stop()
        self.closed = True

    # -- what a test drives ----------------------------------------------------------------

    def running(self) -> list[MemorySource]:
        return [s for s in self.opened if s.started and not s.stopped]

    def live(self, name: str) -> MemorySource:
        """The running live source of `name`."""
        found = [s for s in self.running() if s.live and s.name == name]
        assert len(found) == 1, f"{len(found)} live sources of {name!r}"
        return found[0]

    def catchups(self) -> list[MemorySource]:
        return [s for s in self.running() if not s.live]

    async def turn(self, turns: int = 3) -> None:
        """Let the loop run what is scheduled (lookups, replays, openings)."""
        for _ in range(turns):
            await asyncio.sleep(0)

    async def settle(self, *, max_rounds: int = 10_000) -> None:
        """Deliver every pending batch and run the loop until nothing moves."""
        quiet = 0
        for _ in range(max_rounds):
            delivered = False
            for source in self.running():
                delivered = source.deliver() or delivered
            await self.turn()
            if delivered or any(s.pending() for s in self.running()):
                quiet = 0
                continue
            quiet += 1
            if quiet >= 3:
                return
        raise AssertionError(f"sources still moving after {max_rounds} rounds")
