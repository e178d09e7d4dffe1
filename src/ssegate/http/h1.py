"""HTTP/1.1 connections: an asyncio.Protocol over httptools.

Theory of operation:

1. Parser callbacks only accumulate; `on_message_complete` hands a `Request` to the
   application with an `Exchange` to answer it.
2. A plain response is written in one `write()`; the connection then waits for the next
   request (keep-alive, closed after `keepalive_timeout` idle) or closes.
3. A stream response turns the connection into an `H1EventStream`: headers now, events as
   chunks later. From then on the connection reads nothing but its end.
4. Limits: the header block (URL plus headers) may hold `max_header_bytes` (431 beyond);
   a request must arrive complete within `request_timeout` (408); a body may hold 64 KiB
   (413). A malformed request gets 400. Each of these answers and closes.
5. Flow control: the transport pauses writers at 64 KiB buffered and resumes them at 16 KiB;
   a stream reports the resume to its fan-out listener, which writes more catch-up.
   Live fan-out does not wait: it reads `buffered()` and drops a stream past its
   high-water mark (the client resumes by id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

import httptools

from ssegate.http.request import Request
from ssegate.http.responses import CHUNKED, CHUNKED_END, response_bytes, stream_head
from ssegate.sse.stream import StreamListener

if TYPE_CHECKING:
    from ssegate.config.schema import Limits

logger = logging.getLogger("ssegate.http")

MAX_BODY = 64 * 1024
WRITE_HIGH = 64 * 1024
WRITE_LOW = 16 * 1024


class Application(Protocol):
    """What a connection needs from the gateway."""

    def handle(self, exchange: Exchange) -> None: ...
    def record_status(self, status: int) -> None: ...


class ConnectionRegistry:
    """The open connections of a server, for gauges and for shutdown."""

    def __init__(self) -> None:
        self.connections: set[HttpProtocol] = set()
        self.accepting = True
        self.drained = asyncio.Event()  # set whenever the last connection closes

    def add(self, connection: HttpProtocol) -> None:
        self.connections.add(connection)
        self.drained.clear()

    def discard(self, connection: HttpProtocol) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self.drained.set()


class _HeadersTooLarge(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


class Exchange:
    """One request and the means to answer it (once)."""

    __slots__ = ("_protocol", "answered", "request")

    def __init__(self, protocol: HttpProtocol, request: Request) -> None:
        self._protocol = protocol
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
        self._protocol.send_response(
            status,
            headers or [],
            body,
            keep_alive=self.request.keep_alive and not close,
            head=self.request.method == "HEAD",
        )

    def start_stream(self, headers: list[tuple[str, str]]) -> H1EventStream:
        if self.answered:
            raise RuntimeError("this request was already answered")
        self.answered = True
        return self._protocol.start_stream(headers)


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

    def end(self, reason: str, final: bytes = b"") -> None:
        if self.closed:
            return
        self.closed = True
        self._transport.write(CHUNKED.frame(final) + CHUNKED_END)
        self._transport.close()

    def abort(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._transport.abort()

    def lost(self, reason: str) -> None:
        """The connection is gone (called by the protocol)."""
        if self.closed and self.listener is None:
            return
        self.closed = True
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.on_closed(reason)


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection (rules 1-5)."""

    def __init__(
        self,
        app: Application,
        limits: Limits,
        registry: ConnectionRegistry,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        # Server-wide state
        self._app = app
        self._registry = registry
        self._loop = loop
        self._max_header_bytes = int(limits.max_header_bytes)
        self._request_timeout = float(limits.request_timeout)
        self._keepalive_timeout = float(limits.keepalive_timeout)
        # Per-connection state
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self._parser = httptools.HttpRequestParser(self)
        self._timer: asyncio.TimerHandle | None = None
        self.writing_paused = False
        self.stream: H1EventStream | None = None
        self._closing = False
        # Per-request state
        self._url = bytearray()
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._body_bytes = 0
        self._receiving = False  # bytes of a request have arrived and it is not complete

    def __repr__(self) -> str:
        kind = "stream" if self.stream is not None else "http"
        return f"<HttpProtocol {self.client_ip} {kind}>"

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if isinstance(peer, tuple) and peer else "unknown"
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self._registry.add(self)
        self._arm(self._keepalive_timeout, self._on_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.discard(self)
        self._cancel_timer()
        self._closing = True
        if self.stream is not None:
            self.stream.lost("client_closed")

    def eof_received(self) -> bool:
        return False  # the client is done: close our side too

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        stream = self.stream
        if stream is not None and stream.listener is not None:
            stream.listener.on_writable()

    def data_received(self, data: bytes) -> None:
        if self.stream is not None or self._closing:
            return  # a stream reads nothing more; its end arrives as connection_lost
        if not self._receiving:
            self._receiving = True
            self._arm(self._request_timeout, self._on_request_timeout)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # An upgrade we do not offer (h2c, websocket): answered as HTTP/1.1 already;
            # parse whatever follows with a fresh parser.
            offset = upgrade.args[0] if upgrade.args else len(data)
            self._parser = httptools.HttpRequestParser(self)
            if self.stream is None and not self._closing and offset < len(data):
                self.data_received(data[offset:])
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, _HeadersTooLarge):
                self._reject(431, f"request headers exceed {self._max_header_bytes} bytes\n")
            elif isinstance(cause, _BodyTooLarge):
                self._reject(413, f"request body exceeds {MAX_BODY} bytes\n")
            else:
                logger.error("request handling failed", exc_info=cause)
                self._fail()
        except httptools.HttpParserError as error:
            self._reject(400, f"malformed HTTP request: {error}\n")

    # -- httptools callbacks: accumulate only ----------------------------------------------

    def on_message_begin(self) -> None:
        self._url.clear()
        self._headers = []
        self._header_bytes = 0
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._max_header_bytes:
            raise _HeadersTooLarge

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_BODY:
            raise _BodyTooLarge

    def on_message_complete(self) -> None:
        self._receiving = False
        if self.stream is not None or self._closing:
            return  # pipelined after a stream or a closing answer: ignored
        self._cancel_timer()
        raw = self._url.decode("latin-1")
        path, _, query = raw.partition("?")
        path = path.partition("#")[0]
        if path.startswith(("http://", "https://")):  # absolute-form target
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        parser = self._parser
        request = Request(
            method=parser.get_method().decode("ascii", "replace"),
            path=path,
            query=query,
            headers=self._headers,
            http_version=parser.get_http_version(),
            keep_alive=parser.should_keep_alive() and self._registry.accepting,
            client_ip=self.client_ip,
        )
        exchange = Exchange(self, request)
        self._app.handle(exchange)
        if not exchange.answered:  # the application must answer; never leave a client hanging
            logger.error("no answer for %s %s", request.method, request.loggable_target())
            exchange.respond(500, body=b"internal error\n", close=True)

    # -- answering -------------------------------------------------------------------------

    def send_response(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        keep_alive: bool,
        head: bool = False,
    ) -> None:
        transport = self.transport
        if transport is None or self._closing:
            return
        self._app.record_status(status)
        transport.write(response_bytes(status, headers, body, keep_alive=keep_alive, head=head))
        if keep_alive:
            self._arm(self._keepalive_timeout, self._on_idle)
        else:
            self._close()

    def start_stream(self, headers: list[tuple[str, str]]) -> H1EventStream:
        transport = self.transport
        assert transport is not None
        self._cancel_timer()
        self._app.record_status(200)
        transport.write(stream_head(headers))
        self.stream = H1EventStream(self, transport)
        return self.stream

    def _reject(self, status: int, message: str) -> None:
        self.send_response(
            status,
            [("Content-Type", "text/plain; charset=utf-8")],
            message.encode(),
            keep_alive=False,
        )

    def _fail(self) -> None:
        """An internal error: 500, or, once a stream's 200 is out, its end (it resumes)."""
        if self.stream is not None:
            self.stream.abort("error")
        else:
            self._reject(500, "internal error\n")

    def shutdown(self) -> None:
        """Server shutdown: an idle connection closes now, a busy one after its response."""
        if self.stream is None and not self._receiving:
            self._close()

    def abort(self) -> None:
        """Drop the connection now (shutdown deadline passed)."""
        self._closing = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()

    def _close(self) -> None:
        self._closing = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    # -- timers ----------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_idle(self) -> None:
        self._timer = None
        if self.stream is None and not self._receiving:
            self._close()

    def _on_request_timeout(self) -> None:
        self._timer = None
        if self._receiving and self.stream is None:
            self._reject(408, f"request not received within {self._request_timeout:g}s\n")
