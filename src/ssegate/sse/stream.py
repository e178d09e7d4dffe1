"""The interface between the fan-out and a client's open event stream.

The fan-out writes the same bytes to thousands of streams, so a stream exposes its framing
(HTTP/1.1 chunked today, HTTP/2 DATA frames later): the fan-out frames a batch once per
framing and writes the framed bytes to every stream that shares it.
"""

from __future__ import annotations

import enum
from typing import Protocol


class CloseReason(enum.Enum):
    """Why a stream ended; the value is the `reason` label of ssegate_streams_closed_total."""

    CLIENT_CLOSED = "client_closed"  # the client went away
    SLOW_CLIENT = "slow_client"  # it fell behind what the ring holds
    SHUTDOWN = "shutdown"  # the server drains for a deploy
    ERROR = "error"  # the stream's source failed, or an internal error
    EXPIRED = "expired"  # its access token expired without renewal (guards)


class Framing(Protocol):
    """Turns event bytes into what goes on the connection for one kind of stream."""

    def frame(self, payload: bytes) -> bytes: ...


class StreamListener(Protocol):
    """What the stream tells the fan-out (on the loop)."""

    def on_writable(self) -> None:
        """The connection drained below its low-water mark: more may be written."""

    def on_closed(self, reason: CloseReason) -> None:
        """The stream ended (client gone, error); the fan-out forgets it."""


class EventSink(Protocol):
    """An open event stream to one client."""

    listener: StreamListener | None

    @property
    def framing(self) -> Framing:
        """Shared by every stream that frames the same way (a dict key per batch)."""

    def write(self, framed: bytes) -> None:
        """Write bytes already framed by `self.framing`."""

    def write_events(self, payload: bytes) -> None:
        """Frame and write event bytes (for bytes only this stream gets)."""

    def buffered(self) -> int:
        """Bytes written but not yet sent."""

    @property
    def paused(self) -> bool:
        """Whether the connection asked writers to stop (above its high-water mark)."""

    def set_flow_marks(self, high: int, low: int) -> None:
        """Writers are paused above `high` unsent bytes and resumed (`on_writable`) below
        `low`: how much a paced writer keeps buffered depends on how fast it refills."""

    @property
    def closed(self) -> bool: ...

    def end(self, reason: CloseReason, final: bytes = b"") -> None:
        """End the stream cleanly after `final` event bytes; the client may reconnect."""

    def abort(self, reason: CloseReason) -> None:
        """Drop the connection without a clean end (slow client, protocol error)."""
