"""An event stream on an HTTP/1.1 connection: the connection's transport, chunk-framed."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ssegate.http.responses import CHUNKED, CHUNKED_END
from ssegate.sse.stream import CloseReason, StreamListener

if TYPE_CHECKING:
    from ssegate.http.h1 import HttpProtocol

# Seconds an ended stream has to send what is still buffered for it before it is dropped.
END_FLUSH_SECONDS = 15.0


class H1EventStream:
    """An event stream on an HTTP/1.1 connection, chunk-framed (implements EventSink)."""

    __slots__ = ("_protocol", "_transport", "closed", "listener")
    framing = CHUNKED

    def __init__(self, protocol: HttpProtocol, transport: asyncio.Transport) -> None:
        self._protocol = protocol
        self._transport = transport
        self.listener: StreamListener | None = None
        self.closed = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<H1EventStream {self._protocol.client_ip} {state} buffered={self.buffered()}>"

    def write(self, framed: bytes) -> None:
        if not self.closed:
            self._transport.write(framed)

    def write_events(self, payload: bytes) -> None:
        if not self.closed and payload:
            self._transport.write(CHUNKED.frame(payload))

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    @property
    def paused(self) -> bool:
        return self._protocol.writing_paused

    def set_flow_marks(self, high: int, low: int) -> None:
        if not self.closed:
            self._transport.set_write_buffer_limits(high=high, low=low)

    def end(self, reason: CloseReason, final: bytes = b"") -> None:
        if self.closed:
            return
        self.closed = True
        transport = self._transport
        transport.write(CHUNKED.frame(final) + CHUNKED_END)
        transport.close()  # after the unsent bytes are sent
        if transport.get_write_buffer_size():
            # A client that stopped reading would hold them (up to the high-water mark)
            # for good: it gets END_FLUSH_SECONDS, then the connection is dropped.
            self._protocol.abort_after(END_FLUSH_SECONDS)

    def abort(self, reason: CloseReason) -> None:
        if self.closed:
            return
        self.closed = True
        self._transport.abort()

    def lost(self, reason: CloseReason) -> None:
        """The connection is gone (called by the protocol)."""
        if self.closed and self.listener is None:
            return
        self.closed = True
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.on_closed(reason)
