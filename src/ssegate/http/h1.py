"""HTTP/1.1 connections: an asyncio.Protocol over httptools.

Theory of operation:

1. Parser callbacks only accumulate; `on_message_complete` hands a `Request` to the
   application with an `Exchange` to answer it.
2. A plain response is written in one `write()`; the connection then waits for the next
   request (keep-alive, closed after `keepalive_timeout` idle) or closes.
3. A stream response turns the connection into an `H1EventStream`: headers now, events as
   chunks later. From then on the connection reads nothing but its end.
4. Limits: the header block (URL plus headers) may hold `max_header_bytes` (431 beyond; a
   header line still arriving counts in raw bytes, up to twice that); a request must arrive
   complete within `request_timeout` (408); a body may hold 64 KiB (413). A malformed
   request gets 400. Each of these answers and closes, lingering (`_linger`) so that the
   client reads the answer before the close.
5. Flow control: the transport pauses writers at 256 KiB buffered and resumes them at 64 KiB;
   a plain connection stops reading meanwhile (its client is not reading the answers);
   a stream reports the resume to its fan-out listener, which writes more catch-up.
   Live fan-out does not wait: it reads `buffered()` and drops a stream past its
   high-water mark (the client resumes by id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

import httptools

from ssegate.http.exchange import Application, ConnectionRegistry, peer_ip
from ssegate.http.h1stream import H1EventStream
from ssegate.http.request import Request
from ssegate.http.responses import response_bytes, stream_head
from ssegate.http.tls import client_certificate_values
from ssegate.sse.stream import CloseReason

if TYPE_CHECKING:
    from ssegate.config.schema import Limits

logger = logging.getLogger("ssegate.http")

MAX_BODY = 64 * 1024
# A connection's flow-control marks: writers pause above WRITE_HIGH unsent bytes and go on
# below WRITE_LOW (pipelined answers; an event stream's writers set their own,
# `H1EventStream.set_flow_marks`).
WRITE_HIGH = 256 * 1024
WRITE_LOW = 64 * 1024
# Pipelined requests are parsed this many bytes at a time, so parsing can stop between
# slices once the answers owed pass the high-water mark (HttpProtocol._parse).
PARSE_SLICE = 4096
# Seconds a connection closed after an error keeps reading what its client still sends, so
# the client reads the answer before the close (`_linger`).
LINGER_SECONDS = 2.0


class _HeadersTooLarge(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


class H1Exchange:
    """One request and the means to answer it (once): implements `http.exchange.Exchange`."""

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


class HttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection (rules 1-5)."""

    scheme = "http"  # what the requests' origins begin with (CORS)
    tls_client: Mapping[str, str] | None = None  # HttpsProtocol's client certificate

    # Every idle stream holds one of these: slots keep it small (docs/performance.md).
    __slots__ = (
        "_app",
        "_body_bytes",
        "_closing",
        "_exchange",
        "_head_open",
        "_head_raw",
        "_header_bytes",
        "_headers",
        "_keepalive_timeout",
        "_loop",
        "_max_header_bytes",
        "_messages_begun",
        "_parser",
        "_reading_paused",
        "_receiving",
        "_registry",
        "_request_timeout",
        "_timer",
        "_unparsed",
        "_url",
        "_write_timeout",
        "_write_timer",
        "_write_waiting",
        "client_ip",
        "stream",
        "transport",
        "writing_paused",
    )

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
        self._write_timeout = float(limits.write_timeout)
        # Per-connection state
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self._parser = httptools.HttpRequestParser(self)
        self._timer: asyncio.TimerHandle | None = None
        self.writing_paused = False
        self.stream: H1EventStream | None = None
        self._closing = False
        self._reading_paused = False  # by us, while unsent answers pile up (pause_writing)
        self._messages_begun = 0
        # Received bytes not parsed yet: parsing waits while answers pile up unsent.
        self._unparsed = b""
        self._write_timer: asyncio.TimerHandle | None = None
        self._write_waiting = 0  # unsent bytes when the write timer was armed
        # Per-request state
        self._url = bytearray()
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._body_bytes = 0
        self._receiving = False  # bytes of a request have arrived and it is not complete
        self._head_open = False  # its request line and headers are not complete
        self._head_raw = 0  # raw bytes of that head received in later reads (see _check_head)
        self._exchange: H1Exchange | None = None

    def __repr__(self) -> str:
        kind = "stream" if self.stream is not None else "http"
        return f"<HttpProtocol {self.client_ip} {kind}>"

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.client_ip = peer_ip(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self._registry.add(self)
        self._arm(self._keepalive_timeout, self._on_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.discard(self)
        self._cancel_timer()
        self._cancel_write_timer()
        self._unparsed = b""
        self._closing = True
        if self.stream is not None:
            self.stream.lost(CloseReason.CLIENT_CLOSED)

    def eof_received(self) -> bool:
        return False  # the client is done: close our side too

    def pause_writing(self) -> None:
        self.writing_paused = True
        # Fix: a client that pipelines requests and never reads the answers made them pile up
        # in the transport without bound (one client could exhaust memory). Read no further
        # requests until the answers drain, as uvicorn does. A stream keeps reading: its end
        # arrives as a read.
        if self.stream is None and self.transport is not None and not self._closing:
            self._reading_paused = True
            self.transport.pause_reading()
            self._arm_write_timer()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._cancel_write_timer()
        self._resume_reading()
        stream = self.stream
        if stream is not None and stream.listener is not None:
            stream.listener.on_writable()
        elif self._unparsed and not self._closing:
            self._parse(b"")  # the pipelined requests that waited for the answers to drain

    def _resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self._closing:
            self._reading_paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self._parse(data)

    def _parse(self, data: bytes) -> None:
        """Parse what arrived, in slices, and stop while answers pile up unsent (fix).

        A client that pipelines requests and never reads made the gateway answer every
        request of a read at once: one 256 KiB read of `GET /metrics` owed it 14 MB. Now
        parsing stops as soon as the connection's unsent bytes pass the high-water mark
        (`pause_writing`), keeping the rest of the read unparsed until they drain
        (`resume_writing`); reading is paused meanwhile, so what one connection is owed is
        bounded by the mark plus the answers to one slice of requests.
        """
        if self._unparsed:
            data, self._unparsed = self._unparsed + data, b""
        while data and self.stream is None and not self._closing:
            if self.writing_paused:
                self._unparsed = data
                if self.transport is not None:  # what the write timer must see move
                    self._write_waiting = self.transport.get_write_buffer_size()
                return
            piece, data = data[:PARSE_SLICE], data[PARSE_SLICE:]
            rest = self._feed(piece)
            if rest:
                data = rest + data

    def _feed(self, data: bytes) -> bytes:
        """Feed one slice to the parser; what follows an upgrade request, to parse anew."""
        # A stream reads nothing more; its end arrives as connection_lost.
        # The request timer is armed by on_message_begin: bytes that begin no request (the
        # empty lines RFC 9112 §2.2 lets a client send between requests) leave the idle
        # timer running. (Fix: arming it here for any read gave such a connection a 408,
        # and left a pipelined request that began in the same read as the previous one's
        # end under the idle timer, which closed it silently mid-request.)
        # The caller loops, not recursion (fix): one read may hold thousands of pipelined
        # upgrade requests, and recursing once per upgrade raised RecursionError.
        begun = self._messages_begun
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # An upgrade we do not offer (h2c, websocket): answered as HTTP/1.1 already;
            # parse whatever follows with a fresh parser.
            offset = upgrade.args[0] if upgrade.args else len(data)
            self._parser = httptools.HttpRequestParser(self)
            return data[offset:]
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
        else:
            self._check_head(len(data), begun)
        return b""

    def _check_head(self, size: int, begun: int) -> None:
        """Count a read that fell entirely inside an unfinished head (fix).

        httptools holds a header name or value until its line ends, growing it with `+=`
        at every read, so a header line that never ends escaped `max_header_bytes` (counted
        in on_header) and cost quadratic time: 100 MiB took the loop 50 s. A read that
        neither began the request nor finished its head is all head bytes; the read that
        began it is not counted (at most one read more). Raw bytes include what on_url and
        on_header do not count (request line, optional whitespace), so the bound is twice
        the limit: it refuses nothing the exact count would accept.
        """
        if not self._head_open or self._messages_begun != begun:
            return
        if self._closing or self.stream is not None:
            return
        self._head_raw += size
        if self._head_raw > 2 * self._max_header_bytes:
            self._reject(431, f"request headers exceed {self._max_header_bytes} bytes\n")

    # -- httptools callbacks: accumulate only ----------------------------------------------

    def on_message_begin(self) -> None:
        self._url.clear()
        self._headers = []
        self._header_bytes = 0
        self._body_bytes = 0
        self._messages_begun += 1
        self._head_open = True
        self._head_raw = 0
        self._exchange = None
        if not self._receiving and self.stream is None and not self._closing:
            self._receiving = True
            self._arm(self._request_timeout, self._on_request_timeout)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        # llhttp drops a value's leading whitespace but keeps its trailing whitespace, which is
        # not part of the value either (RFC 9110 §5.5; fix: `Last-Event-ID: <id> ` did not
        # decode and the stream restarted per the route's policy).
        value_text = value.decode("latin-1").rstrip(" \t")
        self._headers.append((name.decode("latin-1").lower(), value_text))

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._max_header_bytes:
            raise _HeadersTooLarge

    def on_headers_complete(self) -> None:
        self._head_open = False

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
        # absolute-form target; the scheme is case-insensitive (RFC 9110 §4.2.3; fix)
        if path[:8].lower().startswith(("http://", "https://")):
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        parser = self._parser
        method = parser.get_method().decode("ascii", "replace")
        keep_alive = parser.should_keep_alive() and self._registry.accepting
        if parser.should_upgrade() and (method == "CONNECT" or self._declares_body()):
            # Fix: httptools skips the body of an upgrade request (and everything after a
            # CONNECT) and hands it back as the new protocol's bytes. We answer in HTTP/1.1,
            # so those bytes were parsed as further requests: a body smuggled a request past
            # any proxy that forwarded it as a body. Answer this one and close.
            keep_alive = False
        request = Request(
            method=method,
            path=path,
            query=query,
            headers=self._headers,
            http_version=parser.get_http_version(),
            keep_alive=keep_alive,
            client_ip=self.client_ip,
            scheme=self.scheme,
            tls_client=self.tls_client,
        )
        exchange = self._exchange = H1Exchange(self, request)
        self._app.handle(exchange)
        if not exchange.answered:  # the application must answer; never leave a client hanging
            logger.error("no answer for %s %s", request.method, request.loggable_target())
            exchange.respond(500, body=b"internal error\n", close=True)

    def _declares_body(self) -> bool:
        return any(name in ("content-length", "transfer-encoding") for name, _ in self._headers)

    # -- answering -------------------------------------------------------------------------

    def send_response(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        keep_alive: bool,
        head: bool = False,
        linger: bool = False,
    ) -> None:
        transport = self.transport
        # Fix: once a stream owns the connection nothing else is written to it. Bytes that
        # followed the stream's request in the same read are still parsed, and a 400 or 431
        # for them was written into the middle of the chunked event stream.
        if transport is None or self._closing or self.stream is not None:
            return
        self._app.record_status(status)
        transport.write(response_bytes(status, headers, body, keep_alive=keep_alive, head=head))
        if keep_alive:
            self._arm(self._keepalive_timeout, self._on_idle)
        elif linger and transport.can_write_eof():
            self._linger(transport)
        else:
            self._close()

    def start_stream(self, headers: list[tuple[str, str]]) -> H1EventStream:
        transport = self.transport
        assert transport is not None
        self._cancel_timer()
        self._app.record_status(200)
        transport.write(stream_head(headers))
        self.stream = H1EventStream(self, transport)
        # The connection parses nothing more: let the request's state go (memory per stream).
        self._exchange = None
        self._headers = []
        self._url = bytearray()
        return self.stream

    def _reject(self, status: int, message: str) -> None:
        self.send_response(
            status,
            [("Content-Type", "text/plain; charset=utf-8")],
            message.encode(),
            keep_alive=False,
            linger=True,
        )

    def _fail(self) -> None:
        """An internal error: 500, or, once a stream's 200 is out, its end (it resumes)."""
        exchange = self._exchange
        if self.stream is not None:
            self.stream.abort(CloseReason.ERROR)
        elif exchange is None:
            self._reject(500, "internal error\n")
        elif exchange.answered:
            # Fix: the answer is out; a 500 after it would be read as the answer to the
            # client's next request.
            self._close()
        else:
            # Fix: answered through the exchange, so a 500 to HEAD carries no body.
            exchange.respond(
                500,
                [("Content-Type", "text/plain; charset=utf-8")],
                b"internal error\n",
                close=True,
            )

    def shutdown(self) -> None:
        """Server shutdown: an idle connection closes now, a busy one after its response."""
        if self.stream is None and not self._receiving:
            self._close()

    def abort_after(self, seconds: float) -> None:
        """Drop the connection unless it closes by itself within `seconds`."""
        self._arm(seconds, self.abort)

    def abort(self) -> None:
        """Drop the connection now (shutdown deadline passed, or a client that does not
        read)."""
        self._closing = True
        self._cancel_timer()
        self._cancel_write_timer()
        self._unparsed = b""
        if self.transport is not None:
            self.transport.abort()

    def _linger(self, transport: asyncio.Transport) -> None:
        """After an error answer to a request not read in full (400, 408, 413, 431): send
        the answer and a FIN, and go on reading (and discarding) until the client closes, or
        for LINGER_SECONDS (fix). Closing at once with the client's bytes unread made the
        kernel send a reset, which can reach the client before the answer: a 64 KiB header
        got `connection reset` instead of its 431. nginx's lingering close does the same.
        (TLS has no half-close: there the connection closes at once.)"""
        self._closing = True
        self._unparsed = b""
        transport.write_eof()  # after the unsent bytes
        self._arm(LINGER_SECONDS, self.abort)

    def _close(self) -> None:
        self._closing = True
        self._cancel_timer()
        self._unparsed = b""
        if self.transport is not None:
            self.transport.close()  # once the unsent bytes are sent
            if self.transport.get_write_buffer_size():
                self._arm_write_timer()

    # -- timers ----------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm_write_timer(self) -> None:
        """Drop the connection if its unsent answers do not move for `write_timeout`: a
        client that does not read would otherwise hold them, and the connection, for good.
        (Streams have their own rule: the high-water mark, then END_FLUSH_SECONDS.)"""
        if self._write_timer is None and self.stream is None and self.transport is not None:
            self._write_waiting = self.transport.get_write_buffer_size()
            self._write_timer = self._loop.call_later(self._write_timeout, self._on_write_stalled)

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _on_write_stalled(self) -> None:
        self._write_timer = None
        if self.transport is None or self.stream is not None:
            return
        waiting = self.transport.get_write_buffer_size()
        if waiting and waiting >= self._write_waiting:
            logger.info(
                "%s read none of its answers in %gs; dropped", self.client_ip, self._write_timeout
            )
            self.abort()
        elif waiting:
            self._arm_write_timer()  # it reads, slowly: give it another period

    def _on_idle(self) -> None:
        self._timer = None
        if self.stream is None and not self._receiving:
            self._close()

    def _on_request_timeout(self) -> None:
        self._timer = None
        if self._receiving and self.stream is None:
            self._reject(408, f"request not received within {self._request_timeout:g}s\n")


class HttpsProtocol(HttpProtocol):
    """An HTTP/1.1 connection inside TLS (the transport decrypts; the protocol is the same)."""

    __slots__ = ("tls_client",)
    scheme = "https"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tls_client = client_certificate_values(transport.get_extra_info("ssl_object"))
        super().connection_made(transport)
