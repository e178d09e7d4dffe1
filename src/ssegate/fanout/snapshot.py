"""`start: compacted`: the latest value of each key as of the connect, then live.

The stream reads from the log's start like any other, but instead of writing each record
it keeps the latest accepted record per key (a tombstone removes the key, whatever its
headers say) until its position reaches the ends the topic had when the stream opened.
Then it writes those records, oldest first, each with an id that counts only the records
written before it, and one id-only checkpoint that moves the client past the older values
it skipped. Memory is bounded: past `limit` keys the oldest half is written early; the
keys written early are remembered (keys only), so a later tombstone of one still reaches
the client as a delete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ssegate.fanout.encode import checkpoint, encode_record
from ssegate.kafka.eventid import IdForm
from ssegate.kafka.position import Position
from ssegate.sources.record import Record


class CompactedSnapshot:
    """The latest record per key, gathered until the stream reaches `target`."""

    __slots__ = ("_early", "_form", "_latest", "_limit", "_written", "target")

    def __init__(
        self, partitions: Iterable[int], target: Mapping[int, int], *, limit: int, form: IdForm
    ) -> None:
        self.target = dict(target)
        self._form = form
        self._limit = limit
        self._latest: dict[object, Record] = {}
        self._early: set[object] = set()  # keys whose value was written early
        # The ids of written records count only what was written before them.
        self._written = Position(dict.fromkeys(partitions, 0))

    def __repr__(self) -> str:
        return f"<CompactedSnapshot keys={len(self._latest)} target={self.target}>"

    def offer(self, record: Record, accepts: Callable[[Record], bool]) -> list[bytes]:
        """Keep `record` if it is its key's latest; the frames written early, if any."""
        latest = self._latest
        if record.value is None and record.key is not None:
            # Deleted: whatever its headers say, it is gone. A client that already got the
            # key (written early) is told so; otherwise the key just leaves the snapshot.
            latest.pop(record.key, None)
            if record.key in self._early:
                latest[record.key] = record
            return []
        if not accepts(record):
            return []
        # A record without a key is its own key: nothing supersedes it.
        key: object = record.key if record.key is not None else (record.partition, record)
        latest.pop(key, None)
        if record.value is not None:  # a tombstone removes the key from the snapshot
            latest[key] = record
        if len(latest) > self._limit:
            return self._write(len(latest) // 2)
        return []

    def reached(self, position: Position) -> bool:
        """Whether `position` has read everything that existed when the stream opened."""
        return all((position.get(p) or 0) >= end for p, end in self.target.items())

    def finish(self, position: Position) -> list[bytes]:
        """Every record kept, then a checkpoint to `position` if records were skipped."""
        frames = self._write(None)
        if self._written.encoded() != position.encoded():
            frames.append(checkpoint(position.id_progress(None), self._form))
        return frames

    def _write(self, limit: int | None) -> list[bytes]:
        latest = self._latest
        keys = list(latest)[:limit] if limit is not None else list(latest)
        written = self._written
        frames = []
        early = self._early
        for key in keys:
            record = latest.pop(key)
            if record.value is None:
                early.discard(key)
            elif limit is not None:
                early.add(key)
            written.passed(record)
            frames.append(encode_record(record, written.id_progress(record), self._form))
        return frames
