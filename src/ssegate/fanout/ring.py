"""The in-memory history of one topic, from which reconnecting clients resume.

Theory of operation:

1. Records are appended in the order the topic reader hands them over; each gets the next
   `seq`. The ring keeps them in one FIFO (eviction order) and per partition (lookup by
   offset).
2. It is bounded by a record count and a byte total for the whole topic; the oldest record
   goes first, whatever its partition.
3. `covered_from[p]` is the promise: every record of partition `p` with an offset at or above
   it, up to the reader's position, is in the ring. It starts where the reader started
   reading `p` and moves past each evicted record. While the reader's start was the log
   start and nothing was evicted, nothing older exists in Kafka either: the ring covers any
   position, and `gap()` says how many offsets below it retention had already deleted.
4. `replay(positions)` yields the records a subscriber at `positions` has not seen, in `seq`
   order, which is the order live subscribers saw them; the caller checks `covers` first.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

from ssegate.sources.record import Record


@dataclass(frozen=True, slots=True)
class RingStatistics:
    records: int
    bytes: int
    peak_bytes: int
    evicted: int


class TopicRing:
    """A bounded history of one topic's records, in reader order and by partition."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        if max_records < 1 or max_bytes < 1:
            raise ValueError("a ring holds at least one record and one byte")
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._fifo: deque[Record] = deque()
        self._partitions: dict[int, deque[Record]] = {}
        self.covered_from: dict[int, int] = {}
        self._from_log_start: dict[int, bool] = {}
        self._next_seq = 1
        self._bytes = 0
        self._peak_bytes = 0
        self._evicted = 0

    def __repr__(self) -> str:
        return f"<TopicRing records={len(self._fifo)} bytes={self._bytes}>"

    def __len__(self) -> int:
        return len(self._fifo)

    def start_partition(self, partition: int, offset: int, *, log_start: bool) -> None:
        """The reader begins `partition` at `offset`; `log_start`: nothing older exists."""
        self._partitions.setdefault(partition, deque())
        self.covered_from[partition] = offset
        self._from_log_start[partition] = log_start

    @property
    def appended(self) -> int:
        """How many records were ever appended: changes with every append (cache validity)."""
        return self._next_seq - 1

    def covers(self, partition: int, offset: int) -> bool:
        """Whether every record of `partition` from `offset` on is here (see rule 3)."""
        start = self.covered_from.get(partition)
        if start is None:
            return False
        return offset >= start or self._from_log_start[partition]

    def gap(self, partition: int, offset: int) -> int:
        """Offsets from `offset` on that Kafka had deleted before the reader started."""
        start = self.covered_from.get(partition)
        if start is None or offset >= start or not self._from_log_start[partition]:
            return 0
        return start - offset

    def append(self, record: Record) -> None:
        record.seq = self._next_seq
        self._next_seq += 1
        self._fifo.append(record)
        self._partitions[record.partition].append(record)
        self._bytes += record.size
        if self._bytes > self._peak_bytes:
            self._peak_bytes = self._bytes
        while len(self._fifo) > self.max_records or (
            self._bytes > self.max_bytes and len(self._fifo) > 1
        ):
            self._evict()

    def _evict(self) -> None:
        old = self._fifo.popleft()
        self._partitions[old.partition].popleft()  # FIFO order holds per partition too
        self._bytes -= old.size
        self._evicted += 1
        self.covered_from[old.partition] = old.offset + 1
        self._from_log_start[old.partition] = False

    def replay(self, positions: Mapping[int, int], limit: int | None = None) -> Iterator[Record]:
        """Records at or after `positions[p]` on each partition, in reader order; the first
        `limit` of them are right (each partition gives at most that many).

        Partitions absent from `positions` are replayed from their first record here.
        """
        streams = []
        for partition, records in self._partitions.items():
            if not records:
                continue
            start = positions.get(partition, 0)
            index = bisect_left(records, start, key=_offset) if start > records[0].offset else 0
            if index < len(records):
                streams.append(_tail(records, index, limit))
        return heapq.merge(*streams, key=_seq)

    def statistics(self) -> RingStatistics:
        return RingStatistics(len(self._fifo), self._bytes, self._peak_bytes, self._evicted)


def _offset(record: Record) -> int:
    return record.offset


def _seq(record: Record) -> int:
    return record.seq


def _tail(records: deque[Record], index: int, limit: int | None) -> Iterator[Record]:
    # A snapshot: the ring may grow or evict while the caller iterates.
    return iter(list(islice(records, index, None if limit is None else index + limit)))
