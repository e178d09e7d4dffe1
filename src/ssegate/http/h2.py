"""HTTP/2 connections: an asyncio.Protocol over the sans-I/O `h2` state machine.

Theory of operation:

1. Every read goes first through `FrameGuard` (floods, oversized header blocks: GOAWAY
   ENHANCE_YOUR_CALM and close), then to h2, whose events are dispatched by type. A
   protocol error h2 finds gets h2's GOAWAY and the connection closes. A read is fed to
   h2 in pieces that end where a client's GOAWAY does (the guard knows where): h2 would
   refuse every frame after one, and the open streams still need them.
2. A request is handed to the application, with an `H2Exchange`, once its END_STREAM has
   arrived (a body may hold 64 KiB, 413 beyond; it must end within `request_timeout`,
   408). Streams answer on their own (`http.h2stream`); a client's RST_STREAM ends only
   its stream.
3. Writes: h2's frames (HEADERS, SETTINGS and PING acknowledgements, WINDOW_UPDATE,
   RST_STREAM) and the streams' DATA frames join one batch, in order; the batch is written
   once at the end of a read, or once per loop pass for what the fan-out wrote: every
   stream of a connection that gets an event in a fan-out batch shares one write.
4. Flow control: the socket pauses writers at 256 KiB unsent and resumes them at 64 KiB;
   a peer's WINDOW_UPDATE or SETTINGS sends what waited for it.
5. Limits: SETTINGS_MAX_CONCURRENT_STREAMS (`max_concurrent_streams`) and
   SETTINGS_MAX_HEADER_LIST_SIZE (`limits.max_header_bytes`, HPACK's count); a connection
   without streams closes after `keepalive_timeout`.
6. Drain: `shutdown` sends GOAWAY with the last stream taken; new streams are refused
   (REFUSED_STREAM: the client may retry them elsewhere), the open ones end (the fan-out
   ends them with a checkpoint), and the connection closes when none is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings

from ssegate.http.exchange import Application, ConnectionRegistry, peer_ip
from ssegate.http.h1 import MAX_BODY, WRITE_HIGH, WRITE_LOW
from ssegate.http.h1stream import END_FLUSH_SECONDS
from ssegate.http.h2frames import Flood, FrameGuard, goaway_frame
from ssegate.http.h2stream import H2Exchange, H2Stream
from ssegate.http.request import Request
from ssegate.http.tls import client_certificate_values
from ssegate.sse.stream import CloseReason

if TYPE_CHECKING:
    from ssegate.config.schema import Http2Config, Limits

logger = logging.getLogger("ssegate.http")

# Seconds a connection closed for a flood or protocol error has to send its GOAWAY.
GOAWAY_FLUSH_SECONDS = 1.0


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (rules 1-6)."""

    __slots__ = (
        "_closing",
        "_discarding",
        "_flush_handle",
        "_guard",
        "_idle_timer",
        "_keepalive_timeout",
        "_out",
        "_reading",
        "_registry",
        "_request_timeout",
        "app",
        "blocked",
        "client_ip",
        "h2",
        "loop",
        "max_frame",
        "scheme",
        "streams",
        "tls_client",
        "transport",
        "waiting",
        "writing_paused",
    )

    def __init__(
        self,
        app: Application,
        limits: Limits,
        http2: Http2Config,
        registry: ConnectionRegistry,
        loop: asyncio.AbstractEventLoop,
        scheme: str,
    ) -> None:
        # Server-wide state
        self.app = app
        self._registry = registry
        self.loop = loop
        self.scheme = scheme
        self._keepalive_timeout = float(limits.keepalive_timeout)
        self._request_timeout = float(limits.request_timeout)
        max_header_bytes = int(limits.max_header_bytes)
        # Per-connection state
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: http2.max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: max_header_bytes,
            },
        )
        # Compressed, a header block is no bigger than what it decodes to, plus a little.
        self._guard = FrameGuard(2 * max_header_bytes + 1024, loop.time)
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.tls_client: Mapping[str, str] | None = None
        self.streams: dict[int, H2Stream] = {}
        self.blocked: dict[H2Stream, None] = {}  # streams waiting for a window
        self.waiting: dict[H2Stream, None] = {}  # streams that found writing paused
        self.writing_paused = False
        self.max_frame = self.h2.max_outbound_frame_size
        self._out: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._reading = False  # inside data_received: it writes the batch at its end
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing = False  # GOAWAY sent: no new streams
        self._discarding = False  # closed for writing: what arrives is discarded

    def __repr__(self) -> str:
        return f"<H2Protocol {self.client_ip} streams={len(self.streams)}>"

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.client_ip = peer_ip(transport)
        self.tls_client = client_certificate_values(transport.get_extra_info("ssl_object"))
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self._registry.add(self)
        self.h2.initiate_connection()
        self._take_h2_output()
        self._flush()
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.discard(self)
        self._closing = True
        self._cancel_idle()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._out.clear()
        streams = list(self.streams.values())
        self.streams.clear()
        self.blocked.clear()
        self.waiting.clear()
        for stream in streams:
            stream.lost(CloseReason.CLIENT_CLOSED)

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        for stream in list(self.waiting):
            stream.writable()

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing() or self._discarding:
            return
        flood = self._guard.feed(data)
        if flood is not None:
            self._stop(flood.value, ErrorCodes.ENHANCE_YOUR_CALM, _FLOOD_MESSAGES[flood])
            return
        self._reading = True
        try:
            start = 0
            for end in [*self._guard.goaway_ends, len(data)]:
                if end > start:
                    self._receive(data[start:end] if start or end < len(data) else data)
                start = end
        except ProtocolError as exc:
            # h2 queued its GOAWAY with the error's code.
            self._stop("protocol_error", None, f"HTTP/2 protocol error: {exc}")
            return
        finally:
            self._reading = False
        self._take_h2_output()
        self._flush()

    def _receive(self, data: bytes) -> None:
        events = self.h2.receive_data(data)
        # What h2 answered (SETTINGS acknowledgements above all) goes before any frame sent
        # for these events: a client applies its new settings once acknowledged.
        self._take_h2_output()
        for event in events:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)

    # -- events (rule 2) -------------------------------------------------------------------

    def _on_request(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        if self._closing:
            self._reset_id(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        request = self._request(event.headers)
        stream = H2Stream(self, stream_id, request)
        self.streams[stream_id] = stream
        self._cancel_idle()
        if event.stream_ended is None:
            stream.arm(self._request_timeout, self._on_request_timeout)

    def _on_data(self, event: DataReceived) -> None:
        self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        stream = self.streams.get(event.stream_id)
        if stream is None or stream.request is None:
            return  # answered already: the body is not wanted
        stream.body_bytes += len(event.data)
        if stream.body_bytes > MAX_BODY:
            self._answer(stream, 413, f"request body exceeds {MAX_BODY} bytes\n")
            self._reset_id(event.stream_id, ErrorCodes.NO_ERROR)  # stop the upload

    def _on_stream_ended(self, event: StreamEnded | TrailersReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None and stream.request is not None:
            stream.disarm()
            self._dispatch(stream, stream.request)

    def _on_reset(self, event: StreamReset) -> None:
        stream = self.streams.pop(event.stream_id, None)
        if stream is not None:
            stream.lost(CloseReason.CLIENT_CLOSED)
            self._after_stream()

    def _on_window(self, event: WindowUpdated) -> None:
        if event.stream_id:
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream in self.blocked:
                stream.drain()
        else:
            self._drain_blocked()

    def _on_settings(self, event: RemoteSettingsChanged) -> None:
        self.max_frame = self.h2.max_outbound_frame_size
        self._drain_blocked()

    def _on_terminated(self, event: ConnectionTerminated) -> None:
        """The client's GOAWAY: it opens no more streams; the open ones go on and the
        connection closes after the last (RFC 9113 §6.8). Its error code changes nothing:
        unknown codes must not trigger special behaviour (§7), and a client that failed
        closes the connection itself."""
        # h2 (4.x) treats a received GOAWAY as the end of everything, even the PING
        # acknowledgements and END_STREAMs the open streams still need: keep it serving.
        self.h2.state_machine.state = ConnectionState.SERVER_OPEN
        self._closing = True
        self._after_stream()

    def _drain_blocked(self) -> None:
        for stream in list(self.blocked):
            stream.drain()
            if self.h2.outbound_flow_control_window <= 0:
                break

    def _request(self, headers: list[tuple[bytes, bytes]]) -> Request:
        method = path = ""
        authority: str | None = None
        fields: list[tuple[str, str]] = []
        cookies: list[str] = []
        for raw_name, raw_value in headers:
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            if name == ":method":
                method = value
            elif name == ":path":
                path = value
            elif name == ":authority":
                authority = value
            elif name == "cookie":
                cookies.append(value)  # split across fields in HTTP/2 (RFC 9113 §8.2.3)
            elif not name.startswith(":"):
                fields.append((name, value))
        if cookies:
            fields.append(("cookie", "; ".join(cookies)))
        if authority is not None and not any(name == "host" for name, _ in fields):
            fields.append(("host", authority))
        target, _, query = path.partition("?")
        return Request(
            method=method,
            path=target or "/",
            query=query,
            headers=fields,
            http_version="2",
            keep_alive=True,
            client_ip=self.client_ip,
            scheme=self.scheme,
            tls_client=self.tls_client,
        )

    def _dispatch(self, stream: H2Stream, request: Request) -> None:
        exchange = H2Exchange(stream, request)
        failed = False
        try:
            self.app.handle(exchange)
        except Exception:
            logger.exception("request handling failed")
            failed = True
        if not exchange.answered:  # the application must answer; never leave a client hanging
            if not failed:
                logger.error("no answer for %s %s", request.method, request.loggable_target())
            self._answer(stream, 500, "internal error\n")
        elif failed:
            stream.abort(CloseReason.ERROR)  # after its 200: reset (the client resumes)

    def _answer(self, stream: H2Stream, status: int, message: str) -> None:
        stream.disarm()
        request = stream.request
        if request is None or stream.closed:
            return
        exchange = H2Exchange(stream, request)
        exchange.respond(status, [("content-type", "text/plain; charset=utf-8")], message.encode())

    def _on_request_timeout(self, stream: H2Stream) -> None:
        self._answer(stream, 408, f"request not received within {self._request_timeout:g}s\n")
        if stream.stream_id in self.h2.streams:
            self._reset_id(stream.stream_id, ErrorCodes.NO_ERROR)
        self._flush()

    # -- writing (rule 3), used by the streams ---------------------------------------------

    def queue(self, head: bytes, payload: bytes) -> None:
        """Add one DATA frame to the batch."""
        self._out.append(head)
        self._out.append(payload)
        if self._flush_handle is None and not self._reading:
            self._flush_handle = self.loop.call_soon(self._flush)

    def unsent(self) -> int:
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def send_headers(
        self, stream_id: int, block: list[tuple[bytes, bytes]], *, end_stream: bool
    ) -> None:
        try:
            self.h2.send_headers(stream_id, block, end_stream=end_stream)
        except StreamClosedError:
            return  # reset by the client meanwhile
        self._take_h2_output()

    def end_stream(self, stream: H2Stream) -> None:
        """END_STREAM after what the stream sent (h2 closes its side)."""
        with contextlib.suppress(StreamClosedError, ProtocolError, KeyError):
            self.h2.end_stream(stream.stream_id)  # unless reset by the client meanwhile
        self._take_h2_output()
        self.finished(stream)

    def reset(self, stream: H2Stream, code: ErrorCodes) -> None:
        self._reset_id(stream.stream_id, code)
        self.finished(stream)

    def finished(self, stream: H2Stream) -> None:
        """The stream has sent all it will: forget it."""
        stream.disarm()
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
        self.blocked.pop(stream, None)
        self.waiting.pop(stream, None)
        self._after_stream()
        if self._flush_handle is None and not self._reading and self._out:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _after_stream(self) -> None:
        if self.streams:
            return
        if self._closing:
            self._close()
        else:
            self._arm_idle()

    def _reset_id(self, stream_id: int, code: ErrorCodes) -> None:
        try:
            self.h2.reset_stream(stream_id, code)
        except (StreamClosedError, ProtocolError, KeyError):
            return
        self._take_h2_output()

    def _take_h2_output(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self._out.append(data)
            if self._flush_handle is None and not self._reading:
                self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        if out and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        out.clear()

    # -- ending (rules 1, 5, 6) ------------------------------------------------------------

    def shutdown(self) -> None:
        """Server shutdown (rule 6)."""
        if self._closing:
            return
        self._closing = True
        self._out.append(goaway_frame(self.h2.highest_inbound_stream_id))
        self._flush()
        if not self.streams:
            self._close()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def _stop(self, reason: str, code: ErrorCodes | None, message: str) -> None:
        """Close for a flood or a protocol error: GOAWAY (h2's, or ours with `code`)."""
        logger.info("%s: %s; connection closed", self.client_ip, message)
        self.app.record_protocol_error("h2", reason)
        self._closing = True
        if code is not None:
            self.h2.close_connection(error_code=code)
        self._take_h2_output()
        self._close(GOAWAY_FLUSH_SECONDS)

    def _close(self, within: float = END_FLUSH_SECONDS) -> None:
        """Send what is owed and a FIN, then read and discard what the client still sends,
        dropping the connection after `within` seconds (a client that reads nothing more
        would hold it; an ended HTTP/1.1 stream gets END_FLUSH_SECONDS too). Closing with
        the client's frames unread made the kernel send a reset that could overtake our
        GOAWAY (h2spec saw `connection reset`); TLS has no half-close: it closes."""
        self._cancel_idle()
        self._flush()
        transport = self.transport
        if transport is None or self._discarding:
            return
        self._discarding = True
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(within, self.abort)
            return
        transport.close()  # after the unsent bytes
        if transport.get_write_buffer_size():
            self.loop.call_later(within, self.abort)

    def _arm_idle(self) -> None:
        self._cancel_idle()
        self._idle_timer = self.loop.call_later(self._keepalive_timeout, self._on_idle)

    def _cancel_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _on_idle(self) -> None:
        self._idle_timer = None
        if not self.streams and not self._closing:
            self._closing = True
            self._out.append(goaway_frame(self.h2.highest_inbound_stream_id))
            self._close()


_FLOOD_MESSAGES = {
    Flood.RAPID_RESET: "HTTP/2 rapid reset (too many RST_STREAM)",
    Flood.CONTROL_FLOOD: "HTTP/2 SETTINGS/PING/PRIORITY flood",
    Flood.EMPTY_FRAMES: "HTTP/2 empty frame flood",
    Flood.HEADER_BLOCK: "HTTP/2 header block too large (CONTINUATION flood)",
}

_HANDLERS: dict[type[Event], Callable[[H2Protocol, Event], None]] = {
    RequestReceived: H2Protocol._on_request,  # type: ignore[dict-item]
    DataReceived: H2Protocol._on_data,  # type: ignore[dict-item]
    StreamEnded: H2Protocol._on_stream_ended,  # type: ignore[dict-item]
    TrailersReceived: H2Protocol._on_stream_ended,  # type: ignore[dict-item]
    StreamReset: H2Protocol._on_reset,  # type: ignore[dict-item]
    WindowUpdated: H2Protocol._on_window,  # type: ignore[dict-item]
    RemoteSettingsChanged: H2Protocol._on_settings,  # type: ignore[dict-item]
    ConnectionTerminated: H2Protocol._on_terminated,  # type: ignore[dict-item]
}
