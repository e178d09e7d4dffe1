"""Where a stream begins: from a client's id, a time, or its route's policy.

`StartAt` is what the subscription step decided from the request. Turning it into a
position needs the topic's partitions, sometimes a round trip to the source first:

- an exact id: its offsets; a partition it does not name is read from its start;
- a compact id: the first offsets stamped at or after its time less the margin, with the
  id's own partition exact (`ssegate.kafka.position` rule 4);
- `?since=`: the first offsets stamped at or after that time;
- no id: `earliest` (offset 0 everywhere, i.e. the log's start), `latest` (the ends as
  last known), or `compacted` (from the start, gathering the latest value per key up to
  the ends as of now, which needs those ends first).

`ResumeOutcome` says how a stream started, once known; it labels `ssegate_resume_total`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ssegate.kafka.eventid import CompactProgress
from ssegate.kafka.position import Position
from ssegate.routing.router import StartPolicy


class ResumeOutcome(enum.Enum):
    """How a stream started (the `outcome` label of ssegate_resume_total)."""

    FRESH = "fresh"  # no id: the route's policy
    SINCE = "since"  # ?since=
    RING = "ring"  # resumed from the ring, in memory
    CATCHUP = "catchup"  # resumed through a catch-up source (older than the ring)
    INVALID = "invalid"  # an id that did not decode or did not fit the topic: the policy


@dataclass(frozen=True, slots=True)
class StartAt:
    """Where a stream begins: a valid id's position, a time, or the route's policy."""

    policy: StartPolicy
    positions: Mapping[int, int] | None = None  # from an exact id
    compact: CompactProgress | None = None  # from a compact id
    since_ms: int | None = None  # from ?since=
    invalid: bool = False  # the client sent an id that did not decode (counted)
    # Partitions a Zilla id lists at -1 (nothing delivered from them): a resume reads them
    # from their beginning, or under `latest` from their end (docs/streams.md).
    live: frozenset[int] = frozenset()

    @property
    def resumed(self) -> bool:
        """Whether the client sent a position it had reached (gaps are reported)."""
        return self.positions is not None or self.compact is not None

    def unlisted_start(self, partition: int, end: int) -> int:
        """Where a resume reads a partition its id has no offset for: from the beginning
        (a partition added since, or one a Zilla id lists at -1), except that a Zilla -1
        under `latest` starts at the end, as Zilla does."""
        if partition in self.live and self.policy is StartPolicy.LATEST:
            return end
        return 0

    def without_id(self) -> StartAt:
        """The start when the id turns out not to fit the topic: the policy, counted."""
        return StartAt(self.policy, invalid=True)

    def lookup_time(self, margin_ms: int) -> int | None:
        """The time whose offsets must be looked up first, if any."""
        if self.compact is not None:
            return max(self.compact.time_ms - margin_ms, 0)
        return self.since_ms

    @property
    def needs_ends(self) -> bool:
        """`compacted` without an id: the snapshot runs up to the ends as of now."""
        return self.policy is StartPolicy.COMPACTED and not self.resumed and self.since_ms is None

    def fits(self, partitions: Mapping[int, object]) -> bool:
        """Whether an exact id names only partitions the topic has."""
        return self.positions is None or set(self.positions) <= set(partitions)

    def fresh_outcome(self) -> ResumeOutcome:
        """The outcome once the stream starts from memory."""
        if self.resumed:
            return ResumeOutcome.RING
        return ResumeOutcome.SINCE if self.since_ms is not None else ResumeOutcome.FRESH


def initial_position(start: StartAt, ends: Mapping[int, int], now_ms: int) -> tuple[Position, str]:
    """The position of a start that needs no lookup, and the progress the client holds.

    `ends` maps every partition to its end as last known.
    """
    if start.positions is not None:
        position = Position(start.positions)
        return position, position.id_progress(None)
    if start.policy is StartPolicy.LATEST:
        return Position(dict(ends), dict.fromkeys(ends, now_ms)), ""
    return Position(dict.fromkeys(ends, 0)), ""


def position_at_time(
    start: StartAt, offsets: Mapping[int, int], time_ms: int
) -> tuple[Position, str]:
    """The position a time lookup answered, and the progress the client holds."""
    resolved = dict(offsets)
    compact = start.compact
    if compact is not None and compact.anchor is not None:
        partition, offset = compact.anchor
        if partition in resolved:
            resolved[partition] = offset  # the id's own partition is exact
    position = Position(resolved, dict.fromkeys(resolved, time_ms))
    return position, position.id_progress(None) if compact is not None else ""
