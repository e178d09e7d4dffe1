"""A subscription group: the live streams that want the same events.

Streams of one route whose topic, resolved filters and id form are equal share a group.
Per batch the group filters each record once and builds one payload; every member gets
that payload in one write, framed once per framing (HTTP/1.1 chunked, HTTP/2 ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssegate.kafka.eventid import IdForm
from ssegate.observe.metrics import Value
from ssegate.routing.filters import ResolvedFilters, index_keys, matches
from ssegate.sse.stream import Framing

if TYPE_CHECKING:
    from ssegate.fanout.subscriber import Subscriber
    from ssegate.kafka.records import KafkaRecord

GroupKey = tuple[str, ResolvedFilters, IdForm]  # (route, filters, id form)


class SubscriptionGroup:
    """Live members sharing (route, filters, id form) on one topic."""

    __slots__ = (
        "bytes_delivered",
        "events_delivered",
        "filters",
        "form",
        "frames",
        "index_keys",
        "key",
        "last_progress",
        "last_write",
        "members",
        "route",
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
        self.route, self.filters, self.form = key
        self.index_keys = index_keys(self.filters) if self.filters else None
        self.members: dict[Subscriber, None] = {}
        self.frames: list[bytes] = []
        # The progress the members' last id (or checkpoint) carried, for heartbeats.
        self.last_progress = progress
        self.last_write = now
        self.events_delivered = events_delivered
        self.bytes_delivered = bytes_delivered

    def __repr__(self) -> str:
        return f"<SubscriptionGroup route={self.route} members={len(self.members)}>"

    def accepts(self, record: KafkaRecord) -> bool:
        return not self.filters or matches(self.filters, record.key, record.headers)

    def write_all(self, payload: bytes, now: float, high_water: int) -> list[Subscriber]:
        """Write `payload` to every member; return those now over the high-water mark."""
        framed: dict[Framing, bytes] = {}
        over: list[Subscriber] = []
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

    def flush(self, now: float, high_water: int) -> list[Subscriber]:
        """Deliver the frames gathered from this batch; return the members to drop."""
        payload = b"".join(self.frames)
        events = len(self.frames)
        self.frames.clear()
        members = len(self.members)
        self.events_delivered.value += events * members
        self.bytes_delivered.value += len(payload) * members
        return self.write_all(payload, now, high_water)
