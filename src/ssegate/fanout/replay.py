"""Writing records a stream has not seen yet, from the ring or a catch-up source.

A stream that is not live carries its own position: `take` passes records through it in
order, each moving the position (delivered or filtered out), and returns the frames to
write, each with the id of the position just after its record.

Many streams resume at the same place (a reconnect storm after a deploy or a network
blip: every client of a group got the same last event), and encoding a replay is the
expensive part, one id per record per stream. So a chunk encoded for one stream is kept in
the topic's `ReplayCache`, keyed by the group (filters, id form) and the position it
started from, and the next stream there writes the same bytes and takes the same end
position. A chunk ends after `replay_chunk` records or the record that brings its values to
`replay_chunk_bytes`, whichever comes first; one that ended sooner reached the ring's end
(`final`): it is valid only until the ring grows. A full chunk stays valid: appends come
after it, and an eviction of any of its records would have made the ring stop covering its
start, which sends the stream to a catch-up source (or ends it) before it looks here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from ssegate.fanout.encode import encode_on_trail, encode_record
from ssegate.fanout.snapshot import CompactedSnapshot
from ssegate.kafka.eventid import IdForm
from ssegate.kafka.position import COMPACT_ABOVE, Position
from ssegate.sources.record import UNDECODED, Record


class Taken(NamedTuple):
    """What `take` gives: the frames to write, and whether records were passed over after
    the last of them (the stream's position is then ahead of its last id: its next
    heartbeat must be a checkpoint)."""

    frames: list[bytes]
    passed_after: bool


def take(
    records: Iterable[Record],
    position: Position,
    accepts: Callable[[Record], bool],
    form: IdForm,
    snapshot: CompactedSnapshot | None = None,
    *,
    on_trail: bool = False,
) -> Taken:
    """Pass `records` (in order) through `position`: the frames to write now.

    `on_trail`: `position` is where the live source was after some record of the ring and
    `records` are all the ring's records after that one, in order (a stream that fell
    behind): the stream has then seen exactly what the live source had when it wrote each
    record, so the live `id:` lines are its ids too, and are written instead of encoded."""
    frames: list[bytes] = []
    passed_after = False
    for record in records:
        known = position.get(record.partition)
        if known is not None and record.offset < known:
            continue  # already passed (a seam guard; never expected)
        position.passed(record)
        if snapshot is not None:
            frames.extend(snapshot.offer(record, accepts))
        elif accepts(record):
            frame = encode_on_trail(record, form) if on_trail else None
            if frame is None:
                frame = encode_record(record, position.id_progress(record), form)
            frames.append(frame)
            passed_after = False
        else:
            passed_after = True
        if record.decoded is not UNDECODED:
            record.decoded = UNDECODED  # as the live dispatch does: the ring keeps bytes
    return Taken(frames, passed_after)


def chunk_records(
    records: Iterable[Record], limit: int, max_bytes: int
) -> tuple[list[Record], bool]:
    """The next chunk of a replay: up to `limit` records, ending with the one whose value
    brings the chunk to `max_bytes`; and whether that was all of `records`."""
    chunk: list[Record] = []
    size = 0
    for record in records:
        if len(chunk) >= limit or size >= max_bytes:
            return chunk, False
        chunk.append(record)
        size += len(record.value or b"")
    return chunk, True


def position_key(position: Position) -> Hashable:
    """What a replay's bytes depend on: the offsets, and the time bound once ids are
    compact (`ssegate.kafka.position` rule 3)."""
    encoded = position.encoded()
    if len(encoded) <= COMPACT_ABOVE:
        return encoded
    return (encoded, position.time_bound())


@dataclass(frozen=True, slots=True)
class ReplayChunk:
    """One chunk of a replay: its bytes, and where a stream stands after writing them."""

    payload: bytes
    events: int
    end: Position  # copied by each stream that takes the chunk
    passed_after: bool  # records passed over after its last event (`Taken`)
    final: bool  # the ring's end was reached: valid while `appended` is unchanged
    appended: int


class ReplayCache:
    """The most recently encoded replay chunks of one topic (see the module docstring)."""

    def __init__(self, capacity: int = 32) -> None:
        self._capacity = capacity
        self._chunks: OrderedDict[Hashable, ReplayChunk] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"<ReplayCache chunks={len(self._chunks)} hits={self.hits} misses={self.misses}>"

    def get(self, key: Hashable, appended: int) -> ReplayChunk | None:
        chunk = self._chunks.get(key)
        if chunk is not None and chunk.final and chunk.appended != appended:
            del self._chunks[key]
            chunk = None
        if chunk is None:
            self.misses += 1
            return None
        self._chunks.move_to_end(key)
        self.hits += 1
        return chunk

    def put(self, key: Hashable, chunk: ReplayChunk) -> None:
        self._chunks[key] = chunk
        self._chunks.move_to_end(key)
        while len(self._chunks) > self._capacity:
            self._chunks.popitem(last=False)

    def clear(self) -> None:
        self._chunks.clear()
