"""One client's subscription: where it starts, how it catches up, when it goes live.

Theory of operation (states in `State`):

1. RESOLVING: the start is a time (`?since=`, or a compact id): Kafka's offsets-for-times
   turns it into positions first.
2. PENDING: the topic's reader has not assigned its partitions yet (the topic may not
   exist), or the position is ahead of the reader on some partition (the reader is still
   filling its ring after a start). Re-examined after every batch.
3. CATCHUP_WAITING / CATCHUP: the position is older than the ring on some partition. A
   temporary reader (a bounded number run at once; the rest wait their turn with
   heartbeats) reads from the position until the ring covers every partition.
4. REPLAYING: everything from the position on is in the ring; it is written in chunks,
   pausing while the connection's buffer is full.
5. LIVE: the position equals the reader's; the subscriber is a member of its group and gets
   each batch with everyone else. Nothing is written twice or skipped at any seam, because
   every step starts exactly at the offsets the previous step ended with, and the ring's
   coverage and the reader's position only change on the loop, between steps.
6. CLOSED: gone; every resource released.

While not live, ids carry the subscriber's own position; once live, the reader's. A
partition the subscriber's id does not name is read from its start. A resumed position
that retention deleted is moved to the oldest offset left, after one `event:gap`.
With `start: compacted`, records are gathered per key until the join, then written, the
latest value of each key only, before the live stream.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Literal

from ssegate.fanout.encode import checkpoint, encode_record
from ssegate.kafka.eventid import CompactProgress, IdForm
from ssegate.kafka.position import Position
from ssegate.kafka.reader import Ack, CatchUpReader, PartitionStart
from ssegate.sse.wire import COMMENT

if TYPE_CHECKING:
    from ssegate.fanout.group import GroupKey, SubscriptionGroup
    from ssegate.fanout.hub import TopicHub
    from ssegate.kafka.records import KafkaRecord
    from ssegate.observe.metrics import RouteStats
    from ssegate.routing.filters import ResolvedFilters
    from ssegate.sse.stream import EventSink

logger = logging.getLogger("ssegate.fanout")

REPLAY_CHUNK = 1000  # records per loop turn while replaying: bounds loop latency


class State(enum.Enum):
    RESOLVING = "resolving"
    PENDING = "pending"
    CATCHUP_WAITING = "catchup-waiting"
    CATCHUP = "catchup"
    REPLAYING = "replaying"
    LIVE = "live"
    CLOSED = "closed"


Policy = Literal["earliest", "latest", "compacted"]


@dataclass(frozen=True, slots=True)
class StartAt:
    """Where a stream begins: a valid id's position, a time, or the route's policy."""

    policy: Policy
    positions: Mapping[int, int] | None = None  # from an exact id
    compact: CompactProgress | None = None  # from a compact id
    since_ms: int | None = None  # from ?since=
    invalid: bool = False  # the client sent an id that did not decode (counted)

    @property
    def resumed(self) -> bool:
        """Whether the client sent a position it had reached (gaps are reported)."""
        return self.positions is not None or self.compact is not None


class Subscriber:
    """One open stream's place in the fan-out (see the module docstring)."""

    __slots__ = (
        "_catchup_ack",
        "_gap_reported",
        "_on_close",
        "_replay_scheduled",
        "_snapshot",
        "_snapshot_from",
        "_snapshot_target",
        "catchup",
        "filters",
        "form",
        "group",
        "group_key",
        "hub",
        "last_progress",
        "last_write",
        "outcome",
        "position",
        "sink",
        "start",
        "state",
        "stats",
    )

    def __init__(
        self,
        hub: TopicHub,
        sink: EventSink,
        *,
        group_key: GroupKey,
        stats: RouteStats,
        start: StartAt,
        now: float,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.hub = hub
        self.sink = sink
        self.group_key = group_key
        self.filters: ResolvedFilters = group_key[1]
        self.form: IdForm = group_key[2]
        self.stats = stats
        self.start = start
        self.state = State.PENDING
        self.group: SubscriptionGroup | None = None
        self.position: Position | None = None  # own position while not live
        self.last_write = now
        self.last_progress = ""  # the progress text of the last id the client got, while not live
        self.catchup: CatchUpReader | None = None
        self._catchup_ack: Ack | None = None
        self._replay_scheduled = False
        self._gap_reported = False
        # start: compacted: key -> latest record, in the order of those latest records.
        self._snapshot: dict[object, KafkaRecord] | None = None
        self._snapshot_from: Position | None = None
        self._snapshot_target: dict[int, int] = {}  # the ends when the stream opened
        self.outcome: str | None = None  # how the stream started, once known (metrics)
        self._on_close = on_close
        if start.invalid:
            self._set_outcome("invalid")

    def __repr__(self) -> str:
        return f"<Subscriber {self.state.value} topic={self.hub.topic} route={self.stats.route}>"

    # -- the state machine -----------------------------------------------------------------

    def advance(self) -> None:
        """Move as far as the hub's current state allows (rules 1-5)."""
        self._replay_scheduled = False
        if self.state not in (State.PENDING, State.REPLAYING):
            return
        hub = self.hub
        if not hub.assigned:
            self._wait()
            return
        position = self.position
        if position is None:
            if (
                self.start.compact is not None
                or self.start.since_ms is not None
                or (self.start.policy == "compacted" and not self.start.resumed)
            ):
                self._resolve()
                return
            position = self.position = self._initial_position()
        for partition in hub.partitions:
            if position.get(partition) is None:
                position.set(partition, 0)  # a partition the id does not know: from its start
        ahead = False
        gaps: dict[int, tuple[int, int]] = {}
        for partition in hub.partitions:
            offset = position.get(partition) or 0
            if offset > hub.position(partition):
                ahead = True
            elif not hub.ring.covers(partition, offset):
                self._set_outcome("kafka")
                hub.service.request_catchup(self)
                return
            elif lost := hub.ring.gap(partition, offset):
                gaps[partition] = (offset, offset + lost)
        if ahead:
            self._wait()
            return
        if gaps:
            self.on_gap(gaps)
        self._set_outcome(self._fresh_outcome())
        self._replay()

    def _fresh_outcome(self) -> str:
        if self.start.resumed:
            return "ring"
        return "since" if self.start.since_ms is not None else "fresh"

    def _initial_position(self) -> Position:
        hub = self.hub
        positions = self.start.positions
        if positions is not None and not set(positions) <= set(hub.partitions):
            logger.info(
                "stream on %r: id names partitions %s the topic does not have; starting %s",
                hub.topic,
                sorted(set(positions) - set(hub.partitions)),
                self.start.policy,
            )
            self._invalid_id()
            positions = None
        if positions is not None:
            position = Position(positions)
            self.last_progress = position.id_progress(None)  # what the client already holds
            return position
        if self.start.policy == "latest":
            now_ms = hub.service.now_ms()
            return Position(
                {p: hub.end_offset(p) for p in hub.partitions},
                dict.fromkeys(hub.partitions, now_ms),
            )
        return Position(dict.fromkeys(hub.partitions, 0))

    def _resolve(self) -> None:
        """Rule 1: ask Kafka which offsets a time means, then carry on."""
        self.state = State.RESOLVING
        hub = self.hub
        if self.start.compact is None and self.start.since_ms is None:
            # start: compacted: the snapshot reaches at least the topic's end as of now.
            ends = hub.service.lookup.end_offsets(hub.topic, list(hub.partitions))
            ends.add_done_callback(self._snapshot_target_known)
            return
        compact = self.start.compact
        if compact is not None:
            time_ms = max(compact.time_ms - hub.service.compact_id_margin_ms, 0)
        else:
            assert self.start.since_ms is not None
            time_ms = self.start.since_ms
        lookup = hub.service.lookup.offsets_for_time(hub.topic, list(hub.partitions), time_ms)
        lookup.add_done_callback(lambda answer: self._resolved(answer, time_ms))

    def _lookup_answer(
        self, answer: asyncio.Future[dict[int, int]], question: str
    ) -> dict[int, int] | None:
        """A lookup's offsets, or None when the stream moved on or Kafka could not answer
        (then the stream ends; its client reconnects and asks again)."""
        if self.state is not State.RESOLVING:
            return None
        if answer.cancelled() or answer.exception() is not None:
            logger.warning("stream on %r: %s: %s", self.hub.topic, question, answer.exception())
            self.close("error")
            return None
        return answer.result()

    def _resolved(self, answer: asyncio.Future[dict[int, int]], time_ms: int) -> None:
        offsets = self._lookup_answer(answer, f"offsets for time {time_ms}")
        if offsets is None:
            return
        compact = self.start.compact
        if compact is not None and compact.anchor is not None:
            partition, offset = compact.anchor
            if partition in offsets:
                offsets[partition] = offset  # the id's own partition is exact
        self.position = Position(offsets, dict.fromkeys(offsets, time_ms))
        self.last_progress = self.position.id_progress(None) if compact is not None else ""
        self.state = State.PENDING
        self.advance()

    def _snapshot_target_known(self, answer: asyncio.Future[dict[int, int]]) -> None:
        ends = self._lookup_answer(answer, "end offsets")
        if ends is None:
            return
        self._snapshot_target = ends
        self._snapshot = {}
        self.position = Position(dict.fromkeys(self.hub.partitions, 0))
        self._snapshot_from = self.position.copy()
        self.state = State.PENDING
        self.advance()

    def _invalid_id(self) -> None:
        self.start = StartAt(self.start.policy)
        self._set_outcome("invalid")

    def _set_outcome(self, outcome: str) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.stats.resumed(outcome)

    def _wait(self) -> None:
        self.state = State.PENDING
        self.hub.waiting[self] = None

    def reject_position(self, high: Mapping[int, int]) -> None:
        """Called while waiting ahead: positions beyond a partition's end are not real."""
        position = self.position
        if position is None or not self.start.resumed or self.outcome is not None:
            return
        beyond = {p: position.get(p) for p in high if (position.get(p) or 0) > high[p]}
        if beyond:
            logger.info("stream on %r: id is past the end of %s", self.hub.topic, beyond)
            self._invalid_id()
            self.position = None
            self.last_progress = ""
            self.hub.waiting.pop(self, None)
            self.advance()

    # -- writing ---------------------------------------------------------------------------

    def _take(self, records: Iterable[KafkaRecord]) -> list[bytes]:
        """Pass records (in order, none already passed): the frames to write now."""
        position = self.position
        assert position is not None
        accepts = self.hub.accepts_for(self.filters)
        snapshot = self._snapshot
        frames: list[bytes] = []
        for record in records:
            known = position.get(record.partition)
            if known is not None and record.offset < known:
                continue  # already passed (a seam guard; never expected)
            position.passed(record)
            if snapshot is not None and record.value is None and record.key in snapshot:
                del snapshot[record.key]  # deleted: whatever its headers say, it is gone
                continue
            if not accepts(record):
                continue
            if snapshot is None:
                frames.append(encode_record(record, position.id_progress(record), self.form))
                continue
            key: object = record.key if record.key is not None else (record.partition, record)
            snapshot.pop(key, None)
            if record.value is not None:  # a tombstone removes the key from the snapshot
                snapshot[key] = record
            if len(snapshot) > self.hub.ring.max_records:  # bounded: emit the oldest early
                frames.extend(self._emit_snapshot(limit=len(snapshot) // 2))
        return frames

    def _emit_snapshot(self, limit: int | None = None) -> list[bytes]:
        snapshot, start = self._snapshot, self._snapshot_from
        if snapshot is None or start is None:
            return []
        keys = list(snapshot)[:limit] if limit is not None else list(snapshot)
        frames = []
        for key in keys:
            record = snapshot.pop(key)
            start.passed(record)
            frames.append(encode_record(record, start.id_progress(record), self.form))
        return frames

    def _write_own(self, frames: list[bytes]) -> None:
        if not frames:
            return
        payload = b"".join(frames)
        self.sink.write_events(payload)
        self.stats.events.value += len(frames)
        self.stats.bytes.value += len(payload)
        self.last_write = self.hub.service.loop.time()
        if self._snapshot is None and self.position is not None:
            self.last_progress = self.position.id_progress(None)

    def on_gap(self, lost: Mapping[int, tuple[int, int]]) -> None:
        """Positions retention deleted: move past them; tell a resuming client once."""
        position = self.position
        if position is None or self.state is State.CLOSED:
            return
        for partition, (_, to) in lost.items():
            if (position.get(partition) or 0) < to:
                position.set(partition, to)
        if not self.start.resumed or self._gap_reported:
            return
        self._gap_reported = True
        data = {
            "topic": self.hub.topic,
            "partitions": [
                {"partition": p, "from": frm, "to": to, "lost": to - frm}
                for p, (frm, to) in sorted(lost.items())
            ],
        }
        logger.info("stream on %r resumed after deleted records: %s", self.hub.topic, data)
        event = (
            b"id:"
            + position.id_progress(None).encode()
            + b"\nevent:gap\ndata:"
            + json.dumps(data, separators=(",", ":")).encode()
            + b"\n\n"
        )
        self.sink.write_events(event)
        self.last_progress = position.id_progress(None)
        self.last_write = self.hub.service.loop.time()

    # -- replay and join (rule 4) ----------------------------------------------------------

    def _replay(self) -> None:
        """Write up to one chunk from the ring; join the group when the ring is exhausted."""
        hub = self.hub
        position = self.position
        assert position is not None
        self.state = State.REPLAYING
        hub.waiting.pop(self, None)
        chunk = list(islice(hub.ring.replay(position.snapshot()), REPLAY_CHUNK + 1))
        self._write_own(self._take(chunk[:REPLAY_CHUNK]))
        if len(chunk) <= REPLAY_CHUNK:
            self._join()
        elif not self.sink.paused:
            self._schedule_replay()
        # else: on_writable continues

    def _join(self) -> None:
        """The ring is exhausted: this subscriber is where the reader is (rule 5)."""
        if self._snapshot is not None:
            position = self.position
            assert position is not None
            target = self._snapshot_target
            if any((position.get(p) or 0) < end for p, end in target.items()):
                self._wait()  # the reader has not yet read all that existed at the start
                return
            frames = self._emit_snapshot()
            if self._snapshot_from is not None and self.position is not None:
                reached = self._snapshot_from.encoded()
                if reached != self.position.encoded():
                    # Records the snapshot left out (older values): the id says they are seen.
                    frames.append(checkpoint(self.position.id_progress(None), self.form))
            self._snapshot = self._snapshot_from = None
            self._write_own(frames)
        self.hub.join(self)

    def _schedule_replay(self) -> None:
        if not self._replay_scheduled:
            self._replay_scheduled = True
            self.hub.service.loop.call_soon(self.advance)

    def went_live(self, group: SubscriptionGroup) -> None:
        self.group = group
        self.state = State.LIVE
        self.position = None

    # -- catch-up (rule 3) -----------------------------------------------------------------

    def start_catchup(self, reader_config: Mapping[str, object]) -> None:
        position = self.position
        assert position is not None
        hub = self.hub
        self.state = State.CATCHUP
        listener = _CatchUpListener(self)
        reader = CatchUpReader(
            hub.topic, reader_config, listener, hub.service.loop, positions=position.snapshot()
        )
        listener.reader = self.catchup = reader
        reader.start()

    def on_catchup_batch(
        self, reader: CatchUpReader, records: list[KafkaRecord], eofs: dict[int, int], ack: Ack
    ) -> None:
        position = self.position
        if self.state is not State.CATCHUP or reader is not self.catchup or position is None:
            ack()
            return
        frames = self._take(records)
        now_ms = self.hub.service.now_ms()
        for partition, end in eofs.items():
            position.reached_end(partition, end, now_ms)
        self._write_own(frames)
        ring = self.hub.ring
        if all(ring.covers(p, position.get(p) or 0) for p in self.hub.partitions):
            ack()
            self._finish_catchup()
            self.state = State.PENDING
            self.advance()
        elif self.sink.paused:
            self._catchup_ack = ack
        else:
            ack()

    def _finish_catchup(self) -> None:
        reader, self.catchup = self.catchup, None
        self._catchup_ack = None
        if reader is not None:
            reader.stop()
            self.hub.service.release_catchup(self)

    def catchup_failed(self, reader: CatchUpReader, message: str) -> None:
        if reader is self.catchup:
            logger.warning("catch-up for a stream on %r failed: %s", self.hub.topic, message)
            self.close("error")

    # -- heartbeats ------------------------------------------------------------------------

    def heartbeat(self, now: float) -> None:
        """A comment, or an id-only checkpoint when filtered records moved the position.

        Never a checkpoint while a compacted snapshot is being gathered: the client has not
        received those records yet.
        """
        position = self.position
        if position is not None and self._snapshot is None:
            progress = position.id_progress(None)
            if progress != self.last_progress:
                self.last_progress = progress
                self.sink.write_events(checkpoint(progress, self.form))
                self.last_write = now
                return
        self.sink.write_events(COMMENT)
        self.last_write = now

    def final_checkpoint(self) -> bytes:
        """The id-only event a stream ends with on shutdown: where to resume."""
        if self.state is State.LIVE:
            return checkpoint(self.hub.progress.id_progress(None), self.form)
        if self.position is not None and self._snapshot is None and self.last_progress:
            return checkpoint(self.position.id_progress(None), self.form)
        return b""

    # -- StreamListener --------------------------------------------------------------------

    def on_writable(self) -> None:
        if self.state is State.REPLAYING:
            self._schedule_replay()
        elif self.state is State.CATCHUP and self._catchup_ack is not None:
            ack, self._catchup_ack = self._catchup_ack, None
            ack()

    def on_closed(self, reason: str) -> None:
        self.close(reason, from_sink=True)

    def close(self, reason: str, *, from_sink: bool = False, final: bytes = b"") -> None:
        """Leave the fan-out; end the stream unless the sink reported it gone."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._finish_catchup()
        self.hub.service.forget_waiting(self)
        self.hub.leave(self)
        self.stats.open.dec()
        self.stats.closed(reason)
        if self._on_close is not None:
            self._on_close()
        if not from_sink and not self.sink.closed:
            if reason == "slow_client":
                self.sink.abort(reason)
            else:
                self.sink.end(reason, final)


class _CatchUpListener:
    """Routes one catch-up reader's reports to its subscriber."""

    def __init__(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber
        self.reader: CatchUpReader | None = None

    def on_partitions(self, partitions: Mapping[int, PartitionStart]) -> None:
        pass

    def on_batch(self, records: list[KafkaRecord], eofs: dict[int, int], ack: Ack) -> None:
        if self.reader is None:
            ack()
            return
        self._subscriber.on_catchup_batch(self.reader, records, eofs, ack)

    def on_topic_missing(self) -> None:
        pass

    def on_high_watermarks(self, high: Mapping[int, int]) -> None:
        pass

    def on_gap(self, lost: Mapping[int, tuple[int, int]]) -> None:
        if self.reader is not None and self.reader is self._subscriber.catchup:
            self._subscriber.on_gap(lost)

    def on_failure(self, message: str) -> None:
        if self.reader is not None:
            self._subscriber.catchup_failed(self.reader, message)
