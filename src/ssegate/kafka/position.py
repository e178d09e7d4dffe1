"""Where a stream is in a topic, and how its ids say so at any partition count.

Theory of operation:

1. Exactly: the next offset per partition (`ProgressTracker`, Zilla's codec). That id is
   ~4-6 bytes per partition, so past roughly 30 partitions it no longer fits the 254 bytes
   a `Last-Event-ID` may have.
2. So a `Position` also keeps, per partition, a time before which it has seen every record:
   the timestamp of the last record it passed there, or, when it reached the partition's
   end, the wall clock then (whatever is produced later is stamped later). Unknown is 0.
3. When the exact text is longer than `COMPACT_ABOVE`, an id is compact (eventid rule 10):
   the minimum of those times, and the record's own partition and offset exactly.
4. Resuming from a compact id, each other partition starts at the first offset stamped at
   or after `time - margin` (offsets-for-times): at or before where the stream was, when
   a partition's timestamps never go back by more than the margin. Records between are
   delivered again; none is skipped. The margin (`kafka.compact_id_margin`) covers
   producers whose clocks disagree; a topic with `message.timestamp.type=LogAppendTime`
   needs none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ssegate.kafka.eventid import ProgressTracker, encode_compact

if TYPE_CHECKING:
    from ssegate.sources.record import Record

# Exact progress texts longer than this become compact: room is left for `/etag` and the
# KEY form's key within the 254 bytes.
COMPACT_ABOVE = 200


class Position:
    """A stream's progress per partition, with the time bounds rule 2 describes."""

    __slots__ = ("_bound", "_times", "_tracker")

    def __init__(
        self, offsets: Mapping[int, int] | None = None, times: Mapping[int, int] | None = None
    ) -> None:
        self._tracker = ProgressTracker(offsets)
        self._times: dict[int, int] = dict(times or {})
        self._bound: int | None = None

    def __repr__(self) -> str:
        return f"<Position {self._tracker.snapshot()}>"

    def __len__(self) -> int:
        return len(self._tracker)

    def get(self, partition: int) -> int | None:
        return self._tracker.get(partition)

    def snapshot(self) -> dict[int, int]:
        return self._tracker.snapshot()

    def encoded(self) -> str:
        """The exact progress text (changes whenever any offset does)."""
        return self._tracker.encoded()

    def set(self, partition: int, next_offset: int) -> None:
        self._tracker.set(partition, next_offset)

    def set_time(self, partition: int, time_ms: int) -> None:
        old = self._times.get(partition, 0)
        self._times[partition] = time_ms
        bound = self._bound
        if bound is not None and (time_ms < bound or old == bound):
            self._bound = None

    def passed(self, record: Record) -> None:
        """The stream has seen `record` (delivered or filtered out)."""
        self._tracker.set(record.partition, record.offset + 1)
        self.set_time(record.partition, max(record.timestamp, 0))

    def reached_end(self, partition: int, end: int, now_ms: int) -> None:
        """Everything before `end` on `partition` is seen; later records are stamped later."""
        current = self._tracker.get(partition)
        if current is None or end > current:
            self._tracker.set(partition, end)
        if now_ms > self._times.get(partition, 0):
            self.set_time(partition, now_ms)

    def time_bound(self) -> int:
        """Every record stamped before this, on every partition, has been seen (rule 2)."""
        bound = self._bound
        if bound is None:
            times = self._times
            partitions = self._tracker.snapshot()
            bound = min((times.get(p, 0) for p in partitions), default=0)
            self._bound = bound
        return bound

    def id_progress(self, anchor: Record | None = None) -> str:
        """The progress an id carries: exact, or compact beyond `COMPACT_ABOVE` (rule 3)."""
        exact = self._tracker.encoded()
        if len(exact) <= COMPACT_ABOVE:
            return exact
        where = None if anchor is None else (anchor.partition, anchor.offset + 1)
        return encode_compact(len(self._tracker), self.time_bound(), where)

    def copy(self) -> Position:
        position = Position(times=self._times)
        position._tracker = self._tracker.copy()
        return position
