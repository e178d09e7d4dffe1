"""A subscription group: the live streams that want the same events.

Streams of one route whose topic, resolved filters and id form are equal share a group.
Per batch the group filters each record once and builds one payload; every member gets
that payload in one write, framed once per framing (HTTP/1.1 chunked, HTTP/2 ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, NamedTuple, Protocol, TypeVar

from ssegate.kafka.eventid import IdForm
from ssegate.observe.metrics import Value
from ssegate.routing.filters import ResolvedFilters, index_keys, matches
from ssegate.sources.record import Record
from ssegate.sse.stream import EventSink, Framing


class GroupKey(NamedTuple):
    """What makes two streams of a topic get the same bytes."""

    route: str  # the route's path template (streams of different routes never share)
    filters: ResolvedFilters
    form: IdForm
    # Records a model refused (`Record.invalid`): passed over, or delivered as
    # `event:invalid` (the route's `on_invalid`).
    deliver_invalid: bool = False


def _accept_all(record: Record) -> bool:
    return True


def _accept_valid(record: Record) -> bool:
    return record.invalid is None


def accepts_for(key: GroupKey) -> Callable[[Record], bool]:
    """The predicate a group's filters and invalid-record policy apply to a record. Value
    conditions are not evaluated on an invalid record (its value is not the model's)."""
    filters = key.filters
    if not filters:
        return _accept_all if key.deliver_invalid else _accept_valid
    if key.deliver_invalid:

        def accepts(record: Record) -> bool:
            document = record.document if record.invalid is None else None
            return matches(filters, record.key, record.headers, document)

        return accepts

    def accepts_valid(record: Record) -> bool:
        return record.invalid is None and matches(
            filters, record.key, record.headers, record.document
        )

    return accepts_valid


class Member(Protocol):
    """A live stream, as its group sees it."""

    @property
    def sink(self) -> EventSink: ...


M = TypeVar("M", bound=Member)


class SubscriptionGroup(Generic[M]):
    """Live members sharing a `GroupKey` on one topic."""

    __slots__ = (
        "accepts",
        "bytes_delivered",
        "events_delivered",
        "form",
        "frames",
        "index_keys",
        "key",
        "last_progress",
        "last_write",
        "members",
    )

    def __init__(
        self,
        key: GroupKey,
        *,
        events_delivered: Value,
        bytes_delivered: Value,
        progress: str,
        now: float,
    ) -> None:
        self.key = key
        self.form = key.form
        self.accepts = accepts_for(key)
        self.index_keys = index_keys(key.filters) if key.filters else None
        self.members: dict[M, None] = {}
        self.frames: list[bytes] = []
        # The progress the members' last id (or checkpoint) carried, for heartbeats.
        self.last_progress = progress
        self.last_write = now
        self.events_delivered = events_delivered
        self.bytes_delivered = bytes_delivered

    def __repr__(self) -> str:
        return f"<SubscriptionGroup route={self.key.route} members={len(self.members)}>"

    def write_all(self, payload: bytes, now: float, high_water: int) -> list[M]:
        """Write `payload` to every member; return those now over the high-water mark."""
        framed: dict[Framing, bytes] = {}
        over: list[M] = []
        for member in self.members:
            sink = member.sink
            framing = sink.framing
            data = framed.get(framing)
            if data is None:
                data = framed[framing] = framing.frame(payload)
            sink.write(data)
            if sink.buffered() > high_water:
                over.append(member)
        self.last_write = now
        return over

    def add(self, frame: bytes, progress: str) -> None:
        """Queue one event for this batch; `progress` is the one its id carries."""
        self.frames.append(frame)
        self.last_progress = progress

    def flush(self, now: float, high_water: int) -> list[M]:
        """Deliver the frames gathered from this batch; return the members to drop."""
        payload = b"".join(self.frames)
        events = len(self.frames)
        self.frames.clear()
        members = len(self.members)
        self.events_delivered.value += events * members
        self.bytes_delivered.value += len(payload) * members
        return self.write_all(payload, now, high_water)
