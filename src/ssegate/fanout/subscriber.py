"""One client's subscription: where it starts, how it catches up, when it goes live.

A subscriber moves through the states of `State`, only along these transitions (`_enter`
refuses any other):

    from            to                          when
    WAITING         RESOLVING                   the start is a time (`?since=`, a compact
                                                id) or `compacted`: ask the source first
    WAITING         WAITING                     the source has not assigned its partitions
                                                (the topic may not exist), or the position
                                                is ahead of it: looked at after each batch
    WAITING         CATCHUP / CATCHUP_QUEUED    the position is older than the ring
    WAITING         REPLAYING                   the ring covers the position
    RESOLVING       WAITING                     the lookup answered (then on at once)
    CATCHUP_QUEUED  CATCHUP                     a catch-up turn came free
    CATCHUP         WAITING                     the ring covers the position again
    REPLAYING       REPLAYING                   one chunk written, more to come
    REPLAYING       WAITING                     `compacted`: the ring is exhausted but the
                                                reader has not yet reached the snapshot's end
    REPLAYING       CATCHUP / CATCHUP_QUEUED    the ring evicted what is left to replay
    REPLAYING       LIVE                        the ring is exhausted: it joins its group
    LIVE            REPLAYING                   it fell behind: its unsent data passed the
                                                high-water mark, so it leaves its group and
                                                replays the ring at the pace it reads
    any but CLOSED  CLOSED                      the client left, it fell behind the ring,
                                                the source failed, or the server drains

A stream that fell behind is not sent to a catch-up source when the ring no longer covers
it (that would hold a Kafka reader for a client that cannot keep up): it ends, with a
checkpoint and a jittered `retry:`, and resumes by id when it comes back.

Nothing is written twice or skipped at any seam: each step starts exactly at the offsets
the previous one ended with, and the ring and the live position change only on the loop,
between steps. While not live, ids carry the subscriber's own position (for a stream that
fell behind, the same ids the live streams got: `replay.take`); once live, the live
source's. A resumed position that retention deleted moves to the oldest offset left,
after one `event:gap`. The hub drives the machine: `advance()` says what the hub must do
next (`Next`), and every later event (a lookup's answer, a catch-up that reached the
ring, room to write more replay) asks the hub to advance it again.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from ssegate.fanout.catchup import CatchUpListener
from ssegate.fanout.encode import checkpoint
from ssegate.fanout.group import GroupKey, SubscriptionGroup, accepts_for
from ssegate.fanout.replay import ReplayChunk, chunk_records, position_key, take
from ssegate.fanout.snapshot import CompactedSnapshot
from ssegate.fanout.start import (
    ResumeOutcome,
    StartAt,
    initial_position,
    position_at_time,
)
from ssegate.kafka.position import Position
from ssegate.sse.stream import CloseReason
from ssegate.sse.wire import COMMENT, encode_retry

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from ssegate.fanout.context import StreamContext, TopicView
    from ssegate.observe.metrics import RouteStats
    from ssegate.sources.protocol import Ack, Source, SourceFailure
    from ssegate.sources.record import Record
    from ssegate.sse.stream import EventSink

logger = logging.getLogger("ssegate.fanout")

# `last_progress` of a stream whose position is ahead of its last id: equal to no progress.
BEHIND_POSITION = "\x00behind"


class State(enum.Enum):
    WAITING = "waiting"
    RESOLVING = "resolving"
    CATCHUP_QUEUED = "catchup-queued"
    CATCHUP = "catchup"
    REPLAYING = "replaying"
    LIVE = "live"
    CLOSED = "closed"


_CATCHUP = (State.CATCHUP, State.CATCHUP_QUEUED)
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.WAITING: frozenset(
        {State.WAITING, State.RESOLVING, State.REPLAYING, *_CATCHUP, State.CLOSED}
    ),
    State.RESOLVING: frozenset({State.WAITING, State.CLOSED}),
    State.CATCHUP_QUEUED: frozenset({State.CATCHUP, State.CLOSED}),
    State.CATCHUP: frozenset({State.WAITING, State.CLOSED}),
    State.REPLAYING: frozenset(
        {State.REPLAYING, State.WAITING, State.LIVE, *_CATCHUP, State.CLOSED}
    ),
    State.LIVE: frozenset({State.REPLAYING, State.CLOSED}),
    State.CLOSED: frozenset(),
}
"""The docstring's table: state -> the states it may go to."""


class Next(enum.Enum):
    """What the hub does after `advance()`."""

    NOTHING = "nothing"  # the subscriber carries on by itself (lookup, replay, catch-up)
    WAIT = "wait"  # park it until the live source moves
    JOIN = "join"  # it stands where the live source is: make it a live member


class Membership(Protocol):
    """What a subscriber asks of its topic's hub."""

    def advance(self, subscriber: Subscriber) -> None:
        """Run `subscriber.advance()` and do what it says."""

    def leave(self, subscriber: Subscriber) -> None: ...


class InvalidTransition(RuntimeError):
    """A bug: the subscriber was asked to move along no transition of its table."""


class Subscriber:
    """One open stream's place in the fan-out (see the module docstring)."""

    __slots__ = (
        "_accepts",
        "_began",
        "_behind",
        "_catchup",
        "_context",
        "_gap_reported",
        "_held_acks",
        "_membership",
        "_on_close",
        "_replay_scheduled",
        "_snapshot",
        "_view",
        "form",
        "group",
        "key",
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
        view: TopicView,
        context: StreamContext,
        membership: Membership,
        sink: EventSink,
        *,
        key: GroupKey,
        stats: RouteStats,
        start: StartAt,
        on_close: Callable[[CloseReason], None] | None = None,
    ) -> None:
        self._view = view
        self._context = context
        self._membership = membership
        self.sink = sink
        self.key = key
        self.form = key.form
        self._accepts = accepts_for(key)
        self.stats = stats
        self.start = start
        self.state = State.WAITING
        self.group: SubscriptionGroup[Subscriber] | None = None
        self.position: Position | None = None  # own position while not live
        self.last_write = context.clock.monotonic()
        # The progress text of the last id the client got, while not live.
        self.last_progress = ""
        # Where a client without an id began (its resume point until it gets an id).
        self._began = ""
        self._catchup: Source | None = None
        # Acks of catch-up batches written while the socket was full: the source reads on
        # when they are called (on_writable). One per batch: an ack never called would
        # hold one of the source's in-flight slots for good.
        self._held_acks: list[Ack] | None = None  # allocated when needed: memory per stream
        self._replay_scheduled = False
        # Fell behind the live source: replaying along its trail (`replay.take`), ended
        # rather than caught up when the ring no longer covers it.
        self._behind = False
        self._gap_reported = False
        self._snapshot: CompactedSnapshot | None = None
        self.outcome: ResumeOutcome | None = None  # how the stream started, once known
        self._on_close = on_close
        if start.invalid:
            self._set_outcome(ResumeOutcome.INVALID)

    def __repr__(self) -> str:
        return f"<Subscriber {self.state.value} topic={self._view.topic} route={self.key.route}>"

    def _enter(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise InvalidTransition(f"{self!r}: {self.state.value} -> {state.value}")
        if state is not self.state:
            if state is State.REPLAYING:
                self.sink.set_flow_marks(*self._context.options.replay_marks)
            elif state is State.CATCHUP:
                self.sink.set_flow_marks(*self._context.options.catchup_marks)
        self.state = state

    # -- the state machine -----------------------------------------------------------------

    def advance(self) -> Next:
        """Move as far as the topic's state allows; say what the hub must do next."""
        self._replay_scheduled = False
        if self.state is not State.WAITING and self.state is not State.REPLAYING:
            return Next.NOTHING
        view = self._view
        if not view.assigned:
            return self._wait()
        position = self.position
        if position is None:
            if not self.start.fits(view.partitions):
                assert self.start.positions is not None
                logger.info(
                    "stream on %r: id names partitions %s the topic does not have; starting %s",
                    view.topic,
                    sorted(set(self.start.positions) - set(view.partitions)),
                    self.start.policy.value,
                )
                self._invalid_id()
            time_ms = self.start.lookup_time(self._context.options.compact_id_margin_ms)
            if time_ms is not None or self.start.needs_ends:
                self._resolve(time_ms)
                return Next.NOTHING
            ends = {p: view.end_offset(p) for p in view.partitions}
            position, self.last_progress = initial_position(
                self.start, ends, self._context.clock.wall_ms()
            )
            self.position = position
            self._began = position.id_progress(None)
        ring = view.ring
        ahead = False
        gaps: dict[int, tuple[int, int]] = {}
        for partition in view.partitions:
            offset = position.get(partition)
            if offset is None:  # a partition the id has no offset for
                offset = self.start.unlisted_start(partition, view.end_offset(partition))
                position.set(partition, offset)
            if offset > view.position(partition):
                ahead = True
            elif not ring.covers(partition, offset):
                if self._behind:
                    self.close(CloseReason.SLOW_CLIENT)
                    return Next.NOTHING
                self._set_outcome(ResumeOutcome.CATCHUP)
                self._context.catchups.request(self)
                return Next.NOTHING
            elif lost := ring.gap(partition, offset):
                gaps[partition] = (offset, offset + lost)
        if ahead:
            return self._wait()
        if gaps:
            self._skip_deleted(gaps)
        self._set_outcome(self.start.fresh_outcome())
        if self.state is not State.REPLAYING:
            # The first chunk too runs as queued work, not within the request that opened
            # the stream: a storm of resumes must not hold the loop's accepts back.
            self._enter(State.REPLAYING)
            self._schedule_replay()
            return Next.NOTHING
        return self._replay()

    def _wait(self) -> Next:
        self._enter(State.WAITING)
        return Next.WAIT

    def _invalid_id(self) -> None:
        self.start = self.start.without_id()
        self._set_outcome(ResumeOutcome.INVALID)

    def _set_outcome(self, outcome: ResumeOutcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.stats.resumed(outcome.value)

    def reject_position(self, ends: Mapping[int, int]) -> bool:
        """While waiting ahead of the source: an id past a partition's end is not real.

        True when the subscriber starts over from its route's policy (the hub advances it).
        """
        position = self.position
        if position is None or not self.start.resumed or self.outcome is not None:
            return False
        beyond = {p: position.get(p) for p in ends if (position.get(p) or 0) > ends[p]}
        if not beyond:
            return False
        logger.info("stream on %r: id is past the end of %s", self._view.topic, beyond)
        self._invalid_id()
        self.position = None
        self.last_progress = ""
        return True

    # -- RESOLVING -------------------------------------------------------------------------

    def _resolve(self, time_ms: int | None) -> None:
        """Ask the source which offsets a time means, or where the topic ends now."""
        self._enter(State.RESOLVING)
        view = self._view
        sources = self._context.sources
        partitions = list(view.partitions)
        if time_ms is None:
            ends = sources.end_offsets(view.topic, partitions)
            ends.add_done_callback(self._snapshot_target_known)
            return
        offsets = sources.offsets_for_time(view.topic, partitions, time_ms)
        offsets.add_done_callback(lambda answer: self._resolved(answer, time_ms))

    def _lookup_answer(
        self, answer: asyncio.Future[dict[int, int]], question: str
    ) -> dict[int, int] | None:
        """A lookup's offsets, or None when the stream moved on or the source could not
        answer (then the stream ends; its client reconnects and asks again)."""
        if self.state is not State.RESOLVING:
            return None
        if answer.cancelled() or answer.exception() is not None:
            problem = "cancelled" if answer.cancelled() else answer.exception()
            logger.warning("stream on %r: %s: %s", self._view.topic, question, problem)
            self.close(CloseReason.ERROR)
            return None
        return answer.result()

    def _resolved(self, answer: asyncio.Future[dict[int, int]], time_ms: int) -> None:
        offsets = self._lookup_answer(answer, f"offsets for time {time_ms}")
        if offsets is None:
            return
        self.position, self.last_progress = position_at_time(self.start, offsets, time_ms)
        self._began = self.position.id_progress(None)
        self._enter(State.WAITING)
        self._membership.advance(self)

    def _snapshot_target_known(self, answer: asyncio.Future[dict[int, int]]) -> None:
        ends = self._lookup_answer(answer, "end offsets")
        if ends is None:
            return
        partitions = list(self._view.partitions)
        self._snapshot = CompactedSnapshot(
            partitions, ends, limit=self._view.ring.max_records, form=self.form
        )
        self.position = Position(dict.fromkeys(partitions, 0))
        self._began = self.position.id_progress(None)
        self._enter(State.WAITING)
        self._membership.advance(self)

    # -- writing ---------------------------------------------------------------------------

    def _write_own(self, payload: bytes, events: int, passed_after: bool = False) -> None:
        if not events:
            return
        self.sink.write_events(payload)
        self.stats.events.value += events
        self.stats.bytes.value += len(payload)
        self.last_write = self._context.clock.monotonic()
        if self._snapshot is None and self.position is not None:
            # Records passed over after the last event: the position is ahead of the
            # client's id, so no progress matches it and the next heartbeat checkpoints.
            self.last_progress = (
                BEHIND_POSITION if passed_after else self.position.id_progress(None)
            )

    def _skip_deleted(self, lost: Mapping[int, tuple[int, int]]) -> None:
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
        topic = self._view.topic
        data = {
            "topic": topic,
            "partitions": [
                {"partition": p, "from": frm, "to": to, "lost": to - frm}
                for p, (frm, to) in sorted(lost.items())
            ],
        }
        logger.info("stream on %r resumed after deleted records: %s", topic, data)
        progress = position.id_progress(None)
        event = (
            b"id:"
            + progress.encode()
            + b"\nevent:gap\ndata:"
            + json.dumps(data, separators=(",", ":")).encode()
            + b"\n\n"
        )
        self.sink.write_events(event)
        self.last_progress = progress
        self.last_write = self._context.clock.monotonic()

    # -- REPLAYING -------------------------------------------------------------------------

    def _replay(self) -> Next:
        """Write up to one chunk from the ring; join the group when the ring is exhausted."""
        position = self.position
        assert position is not None
        self._enter(State.REPLAYING)
        chunk = self._replay_chunk(position)
        self.position = chunk.end
        self._write_own(chunk.payload, chunk.events, chunk.passed_after)
        if chunk.final:
            return self._join()
        if not self.sink.paused:
            self._schedule_replay()
        return Next.NOTHING  # else: on_writable goes on

    def _replay_chunk(self, position: Position) -> ReplayChunk:
        """The next chunk from `position`, whose `end` this subscriber owns: shared with
        streams that resume at the same place (see `ssegate.fanout.replay`), except while
        gathering a snapshot."""
        view = self._view
        ring = view.ring
        options = self._context.options
        cacheable = self._snapshot is None
        if cacheable:
            key = (self.key, position_key(position))
            cached = view.replays.get(key, ring.appended)
            if cached is not None:
                return replace(cached, end=cached.end.copy())
        records, final = chunk_records(
            ring.replay(position.snapshot(), options.replay_chunk + 1),  # +1: is there more
            options.replay_chunk,
            options.replay_chunk_bytes,
        )
        frames, passed_after = take(
            records, position, self._accepts, self.form, self._snapshot, on_trail=self._behind
        )
        chunk = ReplayChunk(
            b"".join(frames), len(frames), position, passed_after, final, ring.appended
        )
        if cacheable:
            view.replays.put(key, replace(chunk, end=position.copy()))
        return chunk

    def _join(self) -> Next:
        """The ring is exhausted: this subscriber is where the live source is."""
        snapshot = self._snapshot
        if snapshot is not None:
            position = self.position
            assert position is not None
            if not snapshot.reached(position):
                return self._wait()  # the source has not yet read all that existed
            frames = snapshot.finish(position)
            self._snapshot = None
            self._write_own(b"".join(frames), len(frames))
        return Next.JOIN

    def _schedule_replay(self) -> None:
        if not self._replay_scheduled:
            self._replay_scheduled = True
            self._context.schedule(self._continue)

    def _continue(self) -> None:
        self._membership.advance(self)

    def went_live(self, group: SubscriptionGroup[Subscriber], live_progress: str) -> None:
        """Now a member of `group`, at the live source's position (`live_progress`).

        A client whose last id (or, without one, its starting point) is behind it (the
        records since were all filtered out) must get a checkpoint: the group's heartbeats
        write one only when the group's progress moved, assuming its members' ids are
        where the group's are, so the group's next heartbeat is made a checkpoint."""
        self._enter(State.LIVE)
        self.group = group
        self.position = None
        self._behind = False
        if (self.last_progress or self._began) != live_progress:
            group.last_progress = ""

    # -- CATCHUP ---------------------------------------------------------------------------

    def catchup_queued(self) -> None:
        self._enter(State.CATCHUP_QUEUED)

    def begin_catchup(self) -> None:
        position = self.position
        assert position is not None
        self._enter(State.CATCHUP)
        listener = CatchUpListener(self)
        source = self._context.sources.open_catchup(self._view.topic, position.snapshot(), listener)
        listener.source = self._catchup = source
        source.start()

    def on_catchup_batch(
        self, source: Source, records: list[Record], eofs: dict[int, int], ack: Ack
    ) -> None:
        position = self.position
        if self.state is not State.CATCHUP or source is not self._catchup or position is None:
            ack()
            return
        frames, passed_after = take(records, position, self._accepts, self.form, self._snapshot)
        now_ms = self._context.clock.wall_ms()
        for partition, end in eofs.items():
            position.reached_end(partition, end, now_ms)
        self._write_own(b"".join(frames), len(frames), passed_after)
        view = self._view
        if all(view.ring.covers(p, position.get(p) or 0) for p in view.partitions):
            ack()
            self._end_catchup()
            self._enter(State.WAITING)
            self._membership.advance(self)
        elif self.sink.paused:
            if self._held_acks is None:
                self._held_acks = []
            self._held_acks.append(ack)  # on_writable acknowledges: the source reads on
        else:
            ack()

    def on_catchup_gap(self, source: Source, lost: Mapping[int, tuple[int, int]]) -> None:
        if source is self._catchup:
            self._skip_deleted(lost)

    def on_catchup_failed(self, source: Source, failure: SourceFailure) -> None:
        if source is self._catchup:
            logger.warning("catch-up for a stream on %r failed: %s", self._view.topic, failure)
            self.close(CloseReason.ERROR)

    def _end_catchup(self) -> None:
        source, self._catchup = self._catchup, None
        self._held_acks = None
        if source is not None:
            source.stop()
        self._context.catchups.leave(self)

    # -- falling behind --------------------------------------------------------------------

    def fall_behind(self, position: Position, progress: str) -> None:
        """While live, its unsent data passed the high-water mark: leave the group (the
        hub did) and replay from the ring at the pace the client reads, starting where the
        live source was after the last batch it was sent (`position`, a copy of the live
        position; `progress`, the one its last id carries). Nothing is closed or sent
        again: the client only sees its events come as fast as it reads them."""
        self._enter(State.REPLAYING)
        self.group = None
        self.position = position
        self.last_progress = progress
        self.last_write = self._context.clock.monotonic()  # its group just wrote to it
        self._behind = True
        self.stats.fell_behind.inc()
        if not self.sink.paused:
            self._schedule_replay()

    def fell_off_ring(self) -> bool:
        """Whether it fell behind and the ring has since dropped records it has not seen:
        then it is ended (checked by the hub each tick, for streams that read nothing)."""
        if not self._behind or self.state is not State.REPLAYING:
            return False
        position = self.position
        assert position is not None
        ring = self._view.ring
        return not all(ring.covers(p, position.get(p) or 0) for p in self._view.partitions)

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

    def _slow_retry_ms(self) -> int:
        options = self._context.options
        spread = options.slow_retry_max - options.slow_retry_min
        return int((options.slow_retry_min + spread * self._context.jitter()) * 1000)

    def final_checkpoint(self) -> bytes:
        """The id-only event a stream ends with on shutdown: where to resume."""
        if self.state is State.LIVE:
            return checkpoint(self._view.progress.id_progress(None), self.form)
        if self.position is not None and self._snapshot is None and self.last_progress:
            return checkpoint(self.position.id_progress(None), self.form)
        return b""

    # -- StreamListener --------------------------------------------------------------------

    def on_writable(self) -> None:
        if self.state is State.REPLAYING:
            self._schedule_replay()
        elif self.state is State.CATCHUP and self._held_acks:
            acks, self._held_acks = self._held_acks, None
            for ack in acks:
                ack()

    def on_closed(self, reason: CloseReason) -> None:
        self.close(reason, from_sink=True)

    def close(self, reason: CloseReason, *, from_sink: bool = False, final: bytes = b"") -> None:
        """Leave the fan-out; end the stream unless the sink reported it gone."""
        if self.state is State.CLOSED:
            return
        if reason is CloseReason.SLOW_CLIENT and not from_sink:
            # A clean end after what it was sent, not a dropped connection: the client keeps
            # the bytes already buffered for it (less to replay), resumes past what its
            # filters skipped (the checkpoint), and its `retry:` spreads the reconnects of
            # many streams closed together.
            final = self.final_checkpoint() + encode_retry(self._slow_retry_ms())
        self._enter(State.CLOSED)
        self._end_catchup()
        self._membership.leave(self)
        self.stats.open.dec()
        self.stats.closed(reason.value)
        if self._on_close is not None:
            self._on_close(reason)
        if not from_sink and not self.sink.closed:
            self.sink.end(reason, final)
