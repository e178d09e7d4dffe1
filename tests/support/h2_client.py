"""A small HTTP/2 client for tests: h2 over an asyncio connection, streams read by hand.

Unlike httpx, it can stop reading one stream (`hold`: no WINDOW_UPDATE for it), reset
streams, and write raw frames (floods), and it reports what the server sent per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.settings import SettingCodes, Settings

from ssegate.sse.wire import Decoder
from ssegate.sse.wire import Event as SseEvent


@dataclass
class StreamState:
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    ended: bool = False
    reset: int | None = None

    @property
    def status(self) -> int:
        return int(self.headers[":status"])

    def events(self) -> list[SseEvent]:
        """The events of the body so far (WHATWG decoding; comments are not events)."""
        return Decoder().feed(self.data)


def record(streams: dict[int, StreamState], event: Event) -> None:
    """Note what `event` says of its stream in `streams`."""
    stream_id = getattr(event, "stream_id", None)
    if stream_id is None:
        return
    state = streams.setdefault(stream_id, StreamState())
    if isinstance(event, ResponseReceived):
        state.headers = {k.decode(): v.decode() for k, v in event.headers}
    elif isinstance(event, DataReceived):
        state.data += event.data
    elif isinstance(event, StreamEnded):
        state.ended = True
    elif isinstance(event, StreamReset):
        state.reset = event.error_code


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One raw HTTP/2 frame (RFC 9113 §4.1), for frames an h2 client would not send."""
    size = len(payload)
    return struct.pack(">HBBBI", size >> 8, size & 0xFF, kind, flags, stream_id) + payload


class H2Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.streams: dict[int, StreamState] = {}
        self.held: set[int] = set()  # streams whose data is not acknowledged (not read)
        self.terminated: ConnectionTerminated | None = None
        self.closed = False  # the server closed the connection

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        settings: dict[SettingCodes, int] | None = None,
    ) -> H2Client:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1" if tls else None
        )
        if tls is not None:
            chosen = writer.get_extra_info("ssl_object").selected_alpn_protocol()
            assert chosen == "h2", f"ALPN chose {chosen!r}"
        client = cls(reader, writer)
        if settings:
            client.h2.local_settings = Settings(client=True, initial_values=settings)
        client.h2.initiate_connection()
        # A window as big as a browser's for the connection: streams are held one by one.
        client.h2.increment_flow_control_window(2**30)
        await client.flush()
        return client

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()

    async def get(self, path: str, headers: dict[str, str] | None = None) -> int:
        stream_id = self.h2.get_next_available_stream_id()
        block = [
            (b":method", b"GET"),
            (b":path", path.encode()),
            (b":scheme", b"https"),
            (b":authority", b"127.0.0.1"),
        ]
        block += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self.h2.send_headers(stream_id, block, end_stream=True)
        self.streams[stream_id] = StreamState()
        await self.flush()
        return stream_id

    async def reset(self, stream_id: int) -> None:
        self.h2.reset_stream(stream_id)
        await self.flush()

    async def write_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the condition did not come true in time")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), remaining)
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                if done():
                    return
                raise ConnectionError("the server closed the connection")
            if self.terminated is None:
                for event in self.h2.receive_data(data):
                    self._on(event)
                await self.flush()

    def _on(self, event: Event) -> None:
        if isinstance(event, ConnectionTerminated):
            self.terminated = event
        record(self.streams, event)
        if isinstance(event, DataReceived) and event.stream_id not in self.held:
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 5)
