"""One HTTP/2 stream: the answer to one request, a whole response or an event stream.

Theory of operation:

1. `H2Stream` is the request's `EventSink`. Its bytes go out as DATA frames the stream
   frames itself (`h2frames.data_frame_head`) into the connection's batch, which the
   connection writes once per loop pass for all its streams (`H2Protocol.queue`).
2. Flow control: a DATA frame may not exceed the stream's window, the connection's window
   or the peer's frame size. What does not fit waits here (`_pending`) until the peer opens
   its windows (WINDOW_UPDATE, SETTINGS); h2's window counts are kept in step, so h2 goes on
   validating what the peer sends.
3. Slow streams: `buffered()` is what waits here plus what the connection's socket has not
   taken, so a stream whose window stays closed, or a connection too slow for its streams
   together, passes the fan-out's high-water mark and falls behind like a slow HTTP/1.1
   client (decision 0008). `paused` and `on_writable` follow this stream's marks and the
   connection's.
4. End: the events written, then END_STREAM (through h2, which closes its side). A stream
   that cannot send what it owes within END_FLUSH_SECONDS is reset instead. `abort` resets
   at once; the client's RST_STREAM or the connection's loss reach the fan-out as `lost`.
   Only this stream ends: the connection and its other streams go on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

from ssegate.http.h1stream import END_FLUSH_SECONDS
from ssegate.http.h2frames import data_frame_head
from ssegate.http.request import Request
from ssegate.sse.stream import CloseReason, StreamListener

if TYPE_CHECKING:
    import asyncio

    from h2.stream import H2Stream as _H2LibStream

    from ssegate.http.h2 import H2Protocol

# A stream's own marks until the fan-out sets them (`set_flow_marks`): HTTP/1.1's.
STREAM_HIGH = 256 * 1024
STREAM_LOW = 64 * 1024

# Response headers HTTP/2 forbids (RFC 9113 §8.2.2); the application writes HTTP/1.1's.
_CONNECTION_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)
_STREAM_HEAD = [
    (b":status", b"200"),
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class DataFraming:
    """HTTP/2 streams share the event bytes unframed: each stream adds its own 9-byte DATA
    head, which holds its stream id (`H2Stream.write`)."""

    __slots__ = ()

    def frame(self, payload: bytes) -> bytes:
        return payload

    def __repr__(self) -> str:
        return "DataFraming()"


DATA_FRAMING = DataFraming()


def response_headers(status: int, headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The application's headers as HTTP/2 wants them: lowercase, no connection headers."""
    block = [(b":status", str(status).encode())]
    for name, value in headers:
        lowered = name.lower()
        if lowered not in _CONNECTION_HEADERS:
            block.append((lowered.encode("latin-1"), value.encode("latin-1")))
    return block


class H2Stream:
    """One request's stream (rules 1-4); implements `EventSink`."""

    __slots__ = (
        "_end_owed",
        "_h2_stream",
        "_high",
        "_low",
        "_pending",
        "_pending_size",
        "_protocol",
        "_timer",
        "body_bytes",
        "closed",
        "listener",
        "request",
        "stream_id",
    )
    framing = DATA_FRAMING

    def __init__(self, protocol: H2Protocol, stream_id: int, request: Request) -> None:
        self._protocol = protocol
        self.stream_id = stream_id
        self.request: Request | None = request  # until answered: then its memory goes
        self._h2_stream: _H2LibStream = protocol.h2.streams[stream_id]
        self.listener: StreamListener | None = None
        self.closed = False  # nothing more may be written (ended, aborted or lost)
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._end_owed = False  # END_STREAM follows what is pending
        self._high = STREAM_HIGH
        self._low = STREAM_LOW
        self._timer: asyncio.TimerHandle | None = None
        self.body_bytes = 0

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<H2Stream {self.stream_id} {state} buffered={self.buffered()}>"

    # -- answering -------------------------------------------------------------------------

    def respond(
        self, status: int, headers: list[tuple[str, str]], body: bytes, *, head: bool
    ) -> None:
        """Headers with the body's length, then the body unless answering HEAD."""
        protocol = self._protocol
        protocol.app.record_status(status)
        block = response_headers(status, headers)
        block.append((b"content-length", str(len(body)).encode()))
        self.request = None
        if head:
            body = b""
        protocol.send_headers(self.stream_id, block, end_stream=not body)
        if body:
            self._send(body)
            self.end(CloseReason.CLIENT_CLOSED)
        else:
            self.closed = True
            protocol.finished(self)

    def start(self, headers: list[tuple[str, str]]) -> None:
        self._protocol.app.record_status(200)
        self.request = None
        block = list(_STREAM_HEAD)
        block.extend(response_headers(200, headers)[1:])
        self._protocol.send_headers(self.stream_id, block, end_stream=False)

    # -- EventSink -------------------------------------------------------------------------

    def write(self, framed: bytes) -> None:
        if not self.closed:
            self._send(framed)

    def write_events(self, payload: bytes) -> None:
        if not self.closed and payload:
            self._send(payload)

    def buffered(self) -> int:
        return self._pending_size + self._protocol.unsent()

    @property
    def paused(self) -> bool:
        protocol = self._protocol
        if self._pending_size > self._high or protocol.writing_paused:
            protocol.waiting[self] = None  # on_writable once both have room again
            return True
        return False

    def set_flow_marks(self, high: int, low: int) -> None:
        self._high = high
        self._low = low

    def end(self, reason: CloseReason, final: bytes = b"") -> None:
        if self.closed:
            return
        self.closed = True
        if final:
            self._send(final)
        self._end_owed = True
        if not self._pending:
            self._send_end()
        else:
            # A client that keeps its window closed would hold the stream for good.
            self._timer = self._protocol.loop.call_later(END_FLUSH_SECONDS, self._give_up)

    def abort(self, reason: CloseReason) -> None:
        if self.closed:
            return
        self.closed = True
        self._drop_pending()
        self._protocol.reset(self, ErrorCodes.CANCEL)

    def lost(self, reason: CloseReason) -> None:
        """The client reset the stream, or the connection is gone (called by the
        connection)."""
        self.closed = True
        self._drop_pending()
        self._cancel_timer()
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.on_closed(reason)

    # -- flow control (rule 2) -------------------------------------------------------------

    def _send(self, payload: bytes) -> None:
        protocol = self._protocol
        size = len(payload)
        if not self._pending:
            h2_stream = self._h2_stream
            h2 = protocol.h2
            if (
                size <= h2_stream.outbound_flow_control_window
                and size <= h2.outbound_flow_control_window
                and size <= protocol.max_frame
            ):
                h2_stream.outbound_flow_control_window -= size
                h2.outbound_flow_control_window -= size
                protocol.queue(data_frame_head(self.stream_id, size), payload)
                return
        self._pending.append(payload)
        self._pending_size += size
        protocol.blocked[self] = None
        self.drain()

    def drain(self) -> None:
        """Send what waits, as far as the windows allow (the connection calls this when the
        peer opens them)."""
        protocol = self._protocol
        h2_stream = self._h2_stream
        h2 = protocol.h2
        pending = self._pending
        max_frame = protocol.max_frame
        window = min(h2_stream.outbound_flow_control_window, h2.outbound_flow_control_window)
        while pending and window > 0:
            chunk = pending[0]
            size = min(len(chunk), window, max_frame)
            if size == len(chunk):
                pending.popleft()
            else:
                pending[0] = chunk[size:]
                chunk = chunk[:size]
            h2_stream.outbound_flow_control_window -= size
            h2.outbound_flow_control_window -= size
            window -= size
            self._pending_size -= size
            protocol.queue(data_frame_head(self.stream_id, size), chunk)
        if pending:
            return
        protocol.blocked.pop(self, None)
        if self._end_owed:
            self._cancel_timer()
            self._send_end()
        elif self in protocol.waiting and not protocol.writing_paused:
            self.writable()

    def writable(self) -> None:
        """Tell the fan-out it may write again, if this stream has room (the connection
        calls this when its socket drains)."""
        if self._pending_size <= self._low and self.listener is not None:
            self._protocol.waiting.pop(self, None)
            self.listener.on_writable()

    def _send_end(self) -> None:
        self._end_owed = False
        self._protocol.end_stream(self)

    def _give_up(self) -> None:
        self._timer = None
        if self._end_owed:
            self._end_owed = False
            self._drop_pending()
            self._protocol.reset(self, ErrorCodes.CANCEL)

    def _drop_pending(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        self._protocol.blocked.pop(self, None)
        self._protocol.waiting.pop(self, None)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def arm(self, delay: float, callback: Callable[[H2Stream], None]) -> None:
        """Call `callback(self)` in `delay` seconds (the connection's request timeout)."""
        self._cancel_timer()
        self._timer = self._protocol.loop.call_later(delay, callback, self)

    def disarm(self) -> None:
        if not self._end_owed:  # that timer is the stream's own
            self._cancel_timer()


class H2Exchange:
    """One request on an HTTP/2 connection: implements `http.exchange.Exchange`."""

    __slots__ = ("_stream", "answered", "request")

    def __init__(self, stream: H2Stream, request: Request) -> None:
        self._stream = stream
        self.request = request
        self.answered = False

    def respond(
        self,
        status: int,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        close: bool = False,
    ) -> None:
        if self.answered:
            raise RuntimeError("this request was already answered")
        self.answered = True
        if self._stream.closed:
            return  # the client reset it meanwhile
        self._stream.respond(status, headers or [], body, head=self.request.method == "HEAD")

    def start_stream(self, headers: list[tuple[str, str]]) -> H2Stream:
        if self.answered:
            raise RuntimeError("this request was already answered")
        self.answered = True
        self._stream.start(headers)
        return self._stream
