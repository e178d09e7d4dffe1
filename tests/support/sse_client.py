"""A small asyncio SSE client on raw sockets, for tests: exact bytes, statuses, events.

It speaks just enough HTTP/1.1 (one request per connection, chunked or Content-Length
bodies) and decodes events with ssegate's WHATWG decoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass, field

from ssegate.sse.wire import Decoder, Event


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class SseStream:
    """An open event stream: read events, or the raw body bytes received so far."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    response: Response
    decoder: Decoder = field(default_factory=Decoder)
    raw: bytearray = field(default_factory=bytearray)
    pending: list[Event] = field(default_factory=list)
    ended: bool = False  # the server ended the body cleanly (last chunk)
    _chunked: bool = True
    _buffer: bytearray = field(default_factory=bytearray)

    async def _read_body(self) -> bool:
        """Read more of the body; False at the end of the body or connection."""
        data = await self.reader.read(65536)
        if not data:
            return False
        if not self._chunked:
            self.raw += data
            self.pending.extend(self.decoder.feed(data))
            return True
        self._buffer += data
        while True:
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return True
            size = int(self._buffer[:line_end].split(b";")[0], 16)
            if size == 0:
                self.ended = True
                return False
            if len(self._buffer) < line_end + 2 + size + 2:
                return True
            chunk = bytes(self._buffer[line_end + 2 : line_end + 2 + size])
            del self._buffer[: line_end + 2 + size + 2]
            self.raw += chunk
            self.pending.extend(self.decoder.feed(chunk))

    async def next_events(self, count: int, timeout: float = 10.0) -> list[Event]:
        """Exactly `count` events (TimeoutError if they do not arrive in time)."""

        async def fill() -> None:
            while len(self.pending) < count:
                if not await self._read_body():
                    raise EOFError(f"stream ended after {len(self.pending)} of {count} events")

        await asyncio.wait_for(fill(), timeout)
        events, self.pending = self.pending[:count], self.pending[count:]
        return events

    async def read_until_end(self, timeout: float = 10.0) -> list[Event]:
        """Everything until the server ends the body or closes the connection."""

        async def drain() -> None:
            while await self._read_body():
                pass

        await asyncio.wait_for(drain(), timeout)
        events, self.pending = self.pending, []
        return events

    async def quiet_for(self, seconds: float) -> list[Event]:
        """Read for `seconds`; return what arrived (to prove nothing more does)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.read_until_end(seconds + 1), seconds)
        events, self.pending = self.pending, []
        return events

    async def wait_raw(self, needle: bytes, timeout: float = 10.0) -> None:
        """Read until the raw (de-chunked) body contains `needle`."""

        async def fill() -> None:
            while needle not in self.raw:
                if not await self._read_body():
                    raise EOFError(f"stream ended before {needle!r}; got {bytes(self.raw)!r}")

        await asyncio.wait_for(fill(), timeout)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    @property
    def last_event_id(self) -> str:
        return self.decoder.last_event_id


async def _read_head(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    _version, status, reason = [*lines[0].split(" ", 2), ""][:3]
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return Response(int(status), reason, headers)


async def request(
    port: int,
    target: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    host: str = "127.0.0.1",
    source: str | None = None,
    timeout: float = 10.0,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Response:
    """One complete non-stream request; the whole body is read (over TLS with `tls`)."""
    reader, writer = await asyncio.open_connection(
        host,
        port,
        local_addr=(source, 0) if source else None,
        ssl=tls,
        server_hostname=server_hostname if tls is not None else None,
    )
    try:
        writer.write(raw if raw is not None else _request_bytes(method, target, headers, port))
        response = await asyncio.wait_for(_read_head(reader), timeout)
        length = response.header("content-length")
        if length is not None and method != "HEAD":
            response.body = await asyncio.wait_for(reader.readexactly(int(length)), timeout)
        return response
    finally:
        writer.close()


def _request_bytes(
    method: str, target: str, headers: dict[str, str] | None, port: int, keep_alive: bool = False
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


async def open_stream(
    port: int,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    source: str | None = None,
    timeout: float = 10.0,
    tls: ssl.SSLContext | None = None,
) -> SseStream:
    """GET an event stream (from address `source`, if given; over TLS with `tls`); check
    `response.status`."""
    reader, writer = await asyncio.open_connection(
        host, port, limit=1 << 20, local_addr=(source, 0) if source else None, ssl=tls
    )
    all_headers = {"Accept": "text/event-stream", **(headers or {})}
    writer.write(_request_bytes("GET", target, all_headers, port, keep_alive=True))
    response = await asyncio.wait_for(_read_head(reader), timeout)
    stream = SseStream(reader, writer, response)
    stream._chunked = (response.header("transfer-encoding") or "").lower() == "chunked"
    if not stream._chunked:
        length = response.header("content-length")
        if length is not None:
            response.body = await reader.readexactly(int(length))
    return stream


async def adopt_stream(sock: socket.socket, timeout: float = 10.0) -> SseStream:
    """The event stream on a connected socket that already sent its request and has read
    nothing since (a client that stalled): read the response head now."""
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    response = await asyncio.wait_for(_read_head(reader), timeout)
    stream = SseStream(reader, writer, response)
    stream._chunked = (response.header("transfer-encoding") or "").lower() == "chunked"
    return stream


async def metric_value(port: int, sample: str) -> float:
    """The value of `sample` (`name{labels}`) in /metrics; 0 while the series is absent."""
    for line in (await request(port, "/metrics")).body.decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0
