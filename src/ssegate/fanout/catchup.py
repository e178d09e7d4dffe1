"""Catch-up: streams that resume from before the ring read through a source of their own.

A catch-up source costs a consumer (a thread, buffers, broker connections), so at most
`limit` run at once; the rest wait their turn, in arrival order, with heartbeats.
`CatchUpSlots` hands out the turns; `CatchUpListener` passes one catch-up source's news
to its stream, and drops news from a source the stream has already let go.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ssegate.sources.protocol import Ack, PartitionStart, Source, SourceFailure
from ssegate.sources.record import Record


class CatchUpClient(Protocol):
    """A stream that asked for a catch-up turn."""

    def begin_catchup(self) -> None:
        """Its turn: open the catch-up source now."""

    def catchup_queued(self) -> None:
        """No turn free: it waits (and is told `begin_catchup` later)."""


class CatchUpSlots:
    """At most `limit` catch-ups at once, the others queued first come, first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: dict[CatchUpClient, None] = {}
        self._queue: dict[CatchUpClient, None] = {}

    def __repr__(self) -> str:
        return f"<CatchUpSlots running={len(self._running)} queued={len(self._queue)}>"

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def request(self, client: CatchUpClient) -> None:
        if len(self._running) < self.limit:
            self._running[client] = None
            client.begin_catchup()
        else:
            self._queue[client] = None
            client.catchup_queued()

    def leave(self, client: CatchUpClient) -> None:
        """`client` is done (or gone): its turn, or its place in the queue, is free."""
        self._queue.pop(client, None)
        if client in self._running:
            del self._running[client]
            self._grant()

    def _grant(self) -> None:
        while self._queue and len(self._running) < self.limit:
            client = next(iter(self._queue))
            del self._queue[client]
            self._running[client] = None
            client.begin_catchup()


class CatchUpReceiver(Protocol):
    """The stream a catch-up source reads for."""

    def on_catchup_batch(
        self, source: Source, records: list[Record], eofs: dict[int, int], ack: Ack
    ) -> None: ...

    def on_catchup_gap(self, source: Source, lost: Mapping[int, tuple[int, int]]) -> None: ...

    def on_catchup_failed(self, source: Source, failure: SourceFailure) -> None: ...


class CatchUpListener:
    """A catch-up source's listener: everything goes to its stream, tagged with the source."""

    __slots__ = ("_receiver", "source")

    def __init__(self, receiver: CatchUpReceiver) -> None:
        self._receiver = receiver
        self.source: Source | None = None  # set once the source exists

    def on_partitions(self, partitions: Mapping[int, PartitionStart]) -> None:
        pass  # a catch-up source reads the partitions it was given

    def on_batch(self, records: list[Record], eofs: dict[int, int], ack: Ack) -> None:
        if self.source is None:
            ack()
            return
        self._receiver.on_catchup_batch(self.source, records, eofs, ack)

    def on_missing(self) -> None:
        pass

    def on_extent(self, ends: Mapping[int, int]) -> None:
        pass

    def on_gap(self, lost: Mapping[int, tuple[int, int]]) -> None:
        if self.source is not None:
            self._receiver.on_catchup_gap(self.source, lost)

    def on_failure(self, failure: SourceFailure) -> None:
        if self.source is not None:
            self._receiver.on_catchup_failed(self.source, failure)
