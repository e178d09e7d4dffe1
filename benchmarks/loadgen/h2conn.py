"""Several SSE streams on one HTTP/2 connection, for the load generator: a raw asyncio
Protocol that walks frame heads itself (no h2 state machine: it would cost more client
CPU than the server spends).

1. On connect: the preface, SETTINGS (no push, the largest stream window), a connection
   WINDOW_UPDATE to the largest window, then one HEADERS per stream (HPACK by `hpack`):
   the windows never close during a run, so no WINDOW_UPDATE is ever owed.
2. Per read: frames are cut from the buffer by their 9-byte heads. HEADERS are decoded in
   order (HPACK's table is per connection) for `:status`; DATA go to their stream, which
   splits them at the last event terminator and hands the complete events to the worker
   (the same per-read work as `stream.SseConnection`); SETTINGS and PING are acknowledged.
3. A stream that ends, is reset or is refused (`:status` not 200) is counted and not
   reopened; nor is a lost connection: the HTTP/2 points measure steady fan-out, where
   neither should happen, and the checks then show what was missed.
"""

from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING

from hpack import Decoder, Encoder

from benchmarks.loadgen.stream import Stream

if TYPE_CHECKING:
    from benchmarks.loadgen.worker import Worker

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEAD = struct.Struct(">HBBBI")
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
MAX_WINDOW = 2**31 - 1


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    size = len(payload)
    return _HEAD.pack(size >> 8, size & 0xFF, kind, flags, stream_id) + payload


class H2SseConnection(asyncio.Protocol):
    """One HTTP/2 connection carrying `streams` (rules 1-3)."""

    def __init__(self, worker: Worker, streams: list[Stream], authority: str) -> None:
        self.worker = worker
        self.authority = authority
        self.by_id = {2 * index + 1: stream for index, stream in enumerate(streams)}
        self.rest: dict[int, bytes] = {}  # a stream's bytes after its last complete event
        self.opened: set[int] = set()
        self.pending_head = b""  # a HEADERS block waiting for its CONTINUATION
        self.buffer = b""
        self.decoder = Decoder()
        self.transport: asyncio.Transport | None = None
        self.head_done = False  # any stream open (the worker's drop and close read it)
        # Resolved when every stream has its answer (True) or the connection failed.
        self.answered: asyncio.Future[bool] = worker.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        encoder = Encoder()
        settings = struct.pack(">HIHI", 0x2, 0, 0x4, MAX_WINDOW)  # ENABLE_PUSH, INITIAL_WINDOW
        out = [
            PREFACE,
            frame(SETTINGS, 0, 0, settings),
            frame(0x8, 0, 0, struct.pack(">I", MAX_WINDOW - 65535)),
        ]
        for stream_id, stream in self.by_id.items():
            headers = [
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", self.authority),
                (":path", stream.path),
                ("accept", "text/event-stream"),
            ]
            if stream.last_id:
                headers.append(("last-event-id", stream.last_id.decode("latin-1")))
            for line in stream.headers.split("\r\n"):
                name, sep, value = line.partition(": ")
                if sep:
                    headers.append((name.lower(), value))
            out.append(frame(HEADERS, END_STREAM | END_HEADERS, stream_id, encoder.encode(headers)))
        transport.write(b"".join(out))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        position = 0
        size = len(buffer)
        while size - position >= 9:
            high, low, kind, flags, stream_id = _HEAD.unpack_from(buffer, position)
            length = (high << 8) | low
            end = position + 9 + length
            if end > size:
                break
            payload = buffer[position + 9 : end]
            position = end
            stream_id &= 0x7FFFFFFF
            if kind == DATA:
                self._data(stream_id, flags, payload)
            elif kind in (HEADERS, CONTINUATION):
                self._headers(stream_id, kind, flags, payload)
            elif kind == SETTINGS and not flags & ACK:
                self._write(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                self._write(frame(PING, ACK, 0, payload))
            elif kind == RST_STREAM:
                self._ended(stream_id)
        self.buffer = buffer[position:]

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _headers(self, stream_id: int, kind: int, flags: int, payload: bytes) -> None:
        if kind == HEADERS and flags & PADDED:
            payload = payload[1 : len(payload) - payload[0]]
        if kind == HEADERS and flags & 0x20:  # PRIORITY: 5 bytes before the block
            payload = payload[5:]
        block = self.pending_head + payload
        if not flags & END_HEADERS:
            self.pending_head = block
            return
        self.pending_head = b""
        headers = dict(self.decoder.decode(block, raw=True))
        stream = self.by_id.get(stream_id)
        if stream is None or stream_id in self.opened:
            return  # trailers
        status_text = headers.get(b":status", b"0")
        status = int(status_text) if status_text.isdigit() else 0
        if status != 200:
            stream.status = status
            self.worker.on_refused(stream, status)
            self._settle()
            return
        self.opened.add(stream_id)
        self.head_done = True
        self.rest[stream_id] = b"\n"  # a line break before the first field
        self.worker.on_open(stream)
        self._settle()
        if flags & END_STREAM:
            self._ended(stream_id)

    def _data(self, stream_id: int, flags: int, payload: bytes) -> None:
        stream = self.by_id.get(stream_id)
        if stream is None:
            return
        if flags & PADDED:
            payload = payload[1 : len(payload) - payload[0]]
        data = self.rest.pop(stream_id, b"") + payload
        terminator = self.worker.terminator
        end = data.rfind(terminator)
        if end < 0:
            self.rest[stream_id] = data
        else:
            cut = end + len(terminator)
            if cut < len(data):
                self.rest[stream_id] = data[cut:]
                data = data[:cut]
            self.worker.on_events(stream, data)
        if flags & END_STREAM:
            self._ended(stream_id)

    def _settle(self) -> None:
        if not self.answered.done() and len(self.opened) + sum(
            1 for s in self.by_id.values() if s.status
        ) >= len(self.by_id):
            self.answered.set_result(True)

    def _ended(self, stream_id: int) -> None:
        if stream_id in self.opened:
            self.opened.discard(stream_id)
            self.worker.on_h2_stream_ended()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_result(False)
        for stream_id in list(self.opened):
            self._ended(stream_id)
        for stream in self.by_id.values():
            if stream.connection is self:
                stream.connection = None
