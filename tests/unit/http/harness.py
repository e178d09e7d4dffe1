"""Drive `HttpProtocol` without sockets: a fake transport, a loop whose timers fire by hand,
a small application, and a strict reader of what the protocol wrote.

As uvicorn's MockTransport/MockLoop: `call_later` returns a handle the test fires itself, so
a 10-second request timeout takes no time at all.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

from ssegate.config.schema import ByteSize, Limits, Seconds
from ssegate.http.exchange import ConnectionRegistry, Exchange
from ssegate.http.h1 import HttpProtocol
from ssegate.http.h1stream import H1EventStream
from ssegate.http.h2stream import H2Stream
from ssegate.sse.stream import CloseReason

STREAM_PATH = "/stream"  # the fake application opens an event stream here
BOOM_PATH = "/boom"  # ... raises before answering here
MISSING_PATH = "/missing"  # ... answers 404 here
STREAM_PREAMBLE = b":\n\n"
TEXT = [("Content-Type", "text/plain; charset=utf-8")]

REQUEST_TIMEOUT = 10.0
KEEPALIVE_TIMEOUT = 5.0


class FakeTimer:
    """What `call_later` returns: cancellable, and fired by the test."""

    def __init__(self, delay: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.delay = delay
        self.callback = callback
        self.args = args
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def pending(self) -> bool:
        return not (self.cancelled or self.fired)

    def fire(self) -> None:
        assert self.pending, "a cancelled or fired timer cannot fire"
        self.fired = True
        self.callback(*self.args)


class FakeLoop:
    """The loop methods a connection uses: `call_later`, and for HTTP/2 `call_soon` (run by
    `run_soon`) and `time`."""

    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []
        self.soon: list[FakeTimer] = []
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def call_soon(self, callback: Callable[..., object], *args: Any) -> FakeTimer:
        timer = FakeTimer(0, callback, args)
        self.soon.append(timer)
        return timer

    def run_soon(self) -> None:
        """Run what was scheduled with call_soon (one loop pass)."""
        soon, self.soon = self.soon, []
        for timer in soon:
            if timer.pending:
                timer.fire()

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> FakeTimer:
        timer = FakeTimer(delay, callback, args)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[FakeTimer]:
        return [timer for timer in self.timers if timer.pending]

    def fire(self) -> float:
        """Fire the one pending timer; return its delay."""
        (timer,) = self.pending()
        timer.fire()
        return timer.delay


class FakeTransport:
    """Collects written bytes; records close, abort and writes after either."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.late_writes: list[bytes] = []  # written after close or abort: always a bug
        self.buffer_size = 0
        self.limits: tuple[int | None, int | None] | None = None
        self.reading = True
        self.writes = 0  # calls to write()
        self.eof_written = False

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self.closed or self.aborted:
            self.late_writes.append(bytes(data))
        else:
            self.written += data

    def close(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """A half-close (the protocol lingers): nothing more may be written either."""
        self.eof_written = True
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return self.buffer_size

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.limits = (high, low)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading


class RecordingListener:
    """A stream's fan-out listener that remembers what it was told."""

    def __init__(self) -> None:
        self.closed: list[CloseReason] = []
        self.writable = 0

    def on_writable(self) -> None:
        self.writable += 1

    def on_closed(self, reason: CloseReason) -> None:
        self.closed.append(reason)


@dataclass
class FakeApp:
    """200 `ok` for any request, an event stream on `/stream`, 404 on `/missing`, and an
    exception on `/boom`."""

    requests: list[Any] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    protocol_errors: list[tuple[str, str]] = field(default_factory=list)
    streams: list[tuple[H1EventStream | H2Stream, RecordingListener]] = field(default_factory=list)

    def handle(self, exchange: Exchange) -> None:
        request = exchange.request
        self.requests.append(request)
        if request.path == STREAM_PATH:
            stream = exchange.start_stream([])
            assert isinstance(stream, H1EventStream | H2Stream)
            listener = RecordingListener()
            stream.listener = listener
            stream.write_events(STREAM_PREAMBLE)
            self.streams.append((stream, listener))
        elif request.path == BOOM_PATH:
            raise RuntimeError("the application failed")
        elif request.path == MISSING_PATH:
            exchange.respond(404, TEXT, f"no route for {request.path}\n".encode())
        else:
            exchange.respond(200, TEXT, b"ok")

    def record_status(self, status: int) -> None:
        self.statuses.append(status)

    def record_protocol_error(self, protocol: str, reason: str) -> None:
        self.protocol_errors.append((protocol, reason))


class ErrorLog(logging.Handler):
    """Collects ERROR records of `ssegate.http` while attached."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Connection:
    """One `HttpProtocol` on a fake transport and loop."""

    def __init__(
        self,
        *,
        max_header_bytes: int = 16 * 1024,
        accepting: bool = True,
        app: FakeApp | None = None,
    ) -> None:
        self.app = app or FakeApp()
        self.loop = FakeLoop()
        self.transport = FakeTransport()
        self.registry = ConnectionRegistry()
        self.registry.accepting = accepting
        self.max_header_bytes = max_header_bytes
        limits = Limits(
            max_header_bytes=ByteSize(max_header_bytes),
            request_timeout=Seconds(REQUEST_TIMEOUT),
            keepalive_timeout=Seconds(KEEPALIVE_TIMEOUT),
        )
        self.protocol = HttpProtocol(
            self.app, limits, self.registry, cast(asyncio.AbstractEventLoop, self.loop)
        )
        self.protocol.connection_made(cast(asyncio.Transport, self.transport))

    def feed(self, *chunks: bytes) -> Connection:
        for chunk in chunks:
            self.protocol.data_received(chunk)
        return self

    def fire(self) -> float:
        """Fire the one pending timer (request or keep-alive); return its delay."""
        return self.loop.fire()

    @property
    def open(self) -> bool:
        return not self.transport.is_closing()

    @property
    def output(self) -> bytes:
        return bytes(self.transport.written)

    def responses(self) -> list[Response]:
        methods = [request.method for request in self.app.requests]
        return parse_responses(self.output, methods)

    def statuses(self) -> list[int]:
        return [response.status for response in self.responses()]


# -- reading what the protocol wrote ---------------------------------------------------------

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) ([^\r\n]*)\r\n")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+): ([^\r\n]*)\r\n")
_CHUNK_SIZE = re.compile(rb"([0-9a-f]+)\r\n")


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool = False  # an event stream
    ended: bool = False  # the stream's last chunk was written

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def closes(self) -> bool:
        return self.header("Connection") == "close"


class Malformed(AssertionError):
    """The protocol wrote bytes that are not a sequence of HTTP/1.1 responses."""


def parse_responses(data: bytes, methods: Sequence[str] = ()) -> list[Response]:
    """Every response in `data`, strictly: status line with its standard reason phrase,
    header lines, then a Content-Length body (none for a HEAD request's answer) or chunks.

    `methods` are the methods of the requests the application saw, in order: response `i`
    answers request `i` (the protocol's own answers, 400 and the like, end the connection).
    """
    responses: list[Response] = []
    position = 0
    while position < len(data):
        line = _STATUS_LINE.match(data, position)
        if line is None:
            raise Malformed(f"no status line at {position}: {data[position : position + 80]!r}")
        status = int(line[1])
        reason = line[2].decode("latin-1")
        if reason != HTTPStatus(status).phrase:
            raise Malformed(f"status {status} with reason {reason!r}")
        position = line.end()
        headers: list[tuple[str, str]] = []
        while not data.startswith(b"\r\n", position):
            header = _HEADER_LINE.match(data, position)
            if header is None:
                raise Malformed(f"bad header line: {data[position : position + 80]!r}")
            headers.append((header[1].decode("latin-1"), header[2].decode("latin-1")))
            position = header.end()
        position += 2
        response = Response(status, reason, headers, b"")
        responses.append(response)
        names = [name.lower() for name, _ in headers]
        if response.header("Transfer-Encoding") == "chunked":
            if "content-length" in names:
                raise Malformed("both Content-Length and chunked")
            response.chunked = True
            position = _read_chunks(data, position, response)
            if position != len(data):
                raise Malformed(f"bytes after the end of a stream: {data[position:]!r}")
            break
        if names.count("content-length") != 1:
            raise Malformed(f"a response needs exactly one Content-Length: {headers}")
        length = int(response.header("Content-Length") or "")
        head = len(responses) <= len(methods) and methods[len(responses) - 1] == "HEAD"
        if not head:
            response.body = data[position : position + length]
            if len(response.body) != length:
                raise Malformed(f"body of {len(response.body)} bytes, announced {length}")
            position += length
    return responses


def _read_chunks(data: bytes, position: int, response: Response) -> int:
    body = bytearray()
    while position < len(data):
        size_line = _CHUNK_SIZE.match(data, position)
        if size_line is None:
            raise Malformed(f"bad chunk size line: {data[position : position + 20]!r}")
        size = int(size_line[1], 16)
        start = size_line.end()
        if size == 0:
            if data[start : start + 2] != b"\r\n":
                raise Malformed("last chunk without its final CRLF")
            response.ended = True
            position = start + 2
            break
        chunk_end = start + size
        if data[chunk_end : chunk_end + 2] != b"\r\n" or chunk_end > len(data):
            raise Malformed("a chunk is cut or lacks its CRLF")
        body += data[start:chunk_end]
        position = chunk_end + 2
    response.body = bytes(body)
    return position


def request(
    target: str = "/",
    *,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (("Host", "gw"),),
    version: str = "HTTP/1.1",
    body: bytes = b"",
) -> bytes:
    """A request's bytes (Content-Length added when there is a body)."""
    lines = [f"{method} {target} {version}", *(f"{name}: {value}" for name, value in headers)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
