"""One client's subscription: where it starts, how it catches up, when it goes live.

Theory of operation (states in `State`):

1. PENDING: the topic's reader has not assigned its partitions yet (the topic may not
   exist), or the subscriber's position is ahead of the reader on some partition (the
   reader is still filling its ring after a start). Re-examined after every batch.
2. CATCHUP_WAITING / CATCHUP: the position is older than the ring on some partition. A
   temporary reader (a bounded number run at once; the rest wait their turn with
   heartbeats) reads from the position until the ring covers every partition.
3. REPLAYING: everything from the position on is in the ring; it is written in chunks,
   pausing while the connection's buffer is full.
4. LIVE: the position equals the reader's; the subscriber is a member of its group and gets
   each batch with everyone else. Nothing is written twice or skipped at any seam, because
   every step starts exactly at the offsets the previous step ended with, and the ring's
   coverage and the reader's position only change on the loop, between steps.
5. CLOSED: gone; every resource released.

While not live, ids carry the subscriber's own progress; once live, the group's (which is
the reader's). A partition the subscriber's id does not name is read from its start.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Literal

from ssegate.fanout.encode import checkpoint, encode_record
from ssegate.kafka.eventid import IdForm, ProgressTracker
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
    PENDING = "pending"
    CATCHUP_WAITING = "catchup-waiting"
    CATCHUP = "catchup"
    REPLAYING = "replaying"
    LIVE = "live"
    CLOSED = "closed"


Policy = Literal["earliest", "latest"]


@dataclass(frozen=True, slots=True)
class StartAt:
    """Where a stream begins: the positions from a valid id, else the route's policy."""

    policy: Policy
    positions: Mapping[int, int] | None = None
    invalid: bool = False  # the client sent an id that did not decode (counted)


class Subscriber:
    """One open stream's place in the fan-out (see the module docstring)."""

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
        self.tracker: ProgressTracker | None = None  # own progress while not live
        self.last_write = now
        self.last_progress = ""  # progress of the last id written while not live
        self.catchup: CatchUpReader | None = None
        self._catchup_ack: Ack | None = None
        self._replay_scheduled = False
        self.outcome: str | None = None  # how the stream started, once known (metrics)
        self._on_close = on_close
        if start.invalid:
            self._set_outcome("invalid")

    def __repr__(self) -> str:
        return f"<Subscriber {self.state.value} topic={self.hub.topic} route={self.stats.route}>"

    # -- the state machine -----------------------------------------------------------------

    def advance(self) -> None:
        """Move as far as the hub's current state allows (rules 1-4)."""
        self._replay_scheduled = False
        hub = self.hub
        if self.state in (State.CLOSED, State.LIVE, State.CATCHUP, State.CATCHUP_WAITING):
            return
        if not hub.assigned:
            self._wait()
            return
        tracker = self.tracker
        if tracker is None:
            tracker = self.tracker = self._initial_tracker()
        for partition in hub.partitions:
            if tracker.get(partition) is None:
                tracker.set(partition, 0)  # a partition the id does not know: from its start
        ahead = False
        for partition in hub.partitions:
            position = tracker.get(partition) or 0
            if position > hub.position(partition):
                ahead = True
            elif not hub.ring.covers(partition, position):
                self._set_outcome("kafka")
                self.hub.service.request_catchup(self)
                return
        if ahead:
            self._wait()
            return
        self._set_outcome("ring" if self.start.positions is not None else "fresh")
        self._replay()

    def _initial_tracker(self) -> ProgressTracker:
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
            tracker = ProgressTracker(positions)
            self.last_progress = tracker.encoded()  # what the client already holds
            return tracker
        if self.start.policy == "latest":
            return ProgressTracker({p: hub.end_offset(p) for p in hub.partitions})
        return ProgressTracker(dict.fromkeys(hub.partitions, 0))

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
        tracker = self.tracker
        if tracker is None or self.start.positions is None or self.outcome is not None:
            return
        beyond = {p: tracker.get(p) for p in high if (tracker.get(p) or 0) > high[p]}
        if beyond:
            logger.info("stream on %r: id is past the end of %s", self.hub.topic, beyond)
            self._invalid_id()
            self.tracker = None
            self.hub.waiting.pop(self, None)
            self.advance()

    def _replay(self) -> None:
        """Write up to one chunk from the ring; join the group when the ring is exhausted."""
        hub = self.hub
        tracker = self.tracker
        assert tracker is not None
        self.state = State.REPLAYING
        hub.waiting.pop(self, None)
        frames: list[bytes] = []
        accepts = hub.accepts_for(self.filters)
        chunk = list(islice(hub.ring.replay(tracker.snapshot()), REPLAY_CHUNK + 1))
        for record in chunk[:REPLAY_CHUNK]:
            tracker.set(record.partition, record.offset + 1)
            if accepts(record):
                frames.append(encode_record(record, tracker.encoded(), self.form))
        self._write_own(frames, tracker)
        if len(chunk) <= REPLAY_CHUNK:
            hub.join(self)  # the ring is exhausted: this subscriber is where the reader is
        elif not self.sink.paused:
            self._schedule_replay()
        # else: on_writable continues

    def _schedule_replay(self) -> None:
        if not self._replay_scheduled:
            self._replay_scheduled = True
            self.hub.service.loop.call_soon(self.advance)

    def _write_own(self, frames: list[bytes], tracker: ProgressTracker) -> None:
        if not frames:
            return
        payload = b"".join(frames)
        self.sink.write_events(payload)
        self.stats.events.value += len(frames)
        self.stats.bytes.value += len(payload)
        self.last_write = self.hub.service.loop.time()
        self.last_progress = tracker.encoded()

    def went_live(self, group: SubscriptionGroup) -> None:
        self.group = group
        self.state = State.LIVE
        self.tracker = None

    # -- catch-up (rule 2) -----------------------------------------------------------------

    def start_catchup(self, reader_config: Mapping[str, object]) -> None:
        tracker = self.tracker
        assert tracker is not None
        hub = self.hub
        self.state = State.CATCHUP
        listener = _CatchUpListener(self)
        reader = CatchUpReader(
            hub.topic, reader_config, listener, hub.service.loop, positions=tracker.snapshot()
        )
        listener.reader = self.catchup = reader
        reader.start()

    def on_catchup_batch(
        self, reader: CatchUpReader, records: list[KafkaRecord], eofs: dict[int, int], ack: Ack
    ) -> None:
        tracker = self.tracker
        if self.state is not State.CATCHUP or reader is not self.catchup or tracker is None:
            ack()
            return
        accepts = self.hub.accepts_for(self.filters)
        frames: list[bytes] = []
        for record in records:
            position = tracker.get(record.partition)
            if position is not None and record.offset < position:
                continue  # already delivered (never expected; a seam guard)
            tracker.set(record.partition, record.offset + 1)
            if accepts(record):
                frames.append(encode_record(record, tracker.encoded(), self.form))
        for partition, end in eofs.items():
            if end > (tracker.get(partition) or 0):
                tracker.set(partition, end)
        self._write_own(frames, tracker)
        ring = self.hub.ring
        if all(ring.covers(p, tracker.get(p) or 0) for p in self.hub.partitions):
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
        """A comment, or an id-only checkpoint when filtered records moved the position."""
        tracker = self.tracker
        if tracker is not None:
            progress = tracker.encoded()
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
            return checkpoint(self.hub.progress.encoded(), self.form)
        if self.tracker is not None:
            return checkpoint(self.tracker.encoded(), self.form)
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

    def on_failure(self, message: str) -> None:
        if self.reader is not None:
            self._subscriber.catchup_failed(self.reader, message)
