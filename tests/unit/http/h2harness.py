"""Drive `H2Protocol` without sockets: an h2 client connection on one side, the fake
transport and loop of `harness` on the other, and a record of what each stream received."""

from __future__ import annotations

import asyncio
import struct
from typing import cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, Event
from h2.settings import SettingCodes, Settings

from ssegate.config.schema import ByteSize, Http2Config, Limits, Seconds
from ssegate.http.exchange import ConnectionRegistry
from ssegate.http.h2 import H2Protocol
from tests.support.h2_client import StreamState, record
from tests.unit.http.harness import (
    KEEPALIVE_TIMEOUT,
    REQUEST_TIMEOUT,
    FakeApp,
    FakeLoop,
    FakeTransport,
)


class H2Session:
    """One `H2Protocol` and an h2 client talking to it; `pump` moves bytes both ways."""

    def __init__(
        self,
        *,
        app: FakeApp | None = None,
        max_concurrent_streams: int = 100,
        max_header_bytes: int = 16 * 1024,
        client_settings: dict[SettingCodes, int] | None = None,
        auto_window: bool = True,
    ) -> None:
        self.app = app or FakeApp()
        self.loop = FakeLoop()
        self.transport = FakeTransport()
        self.registry = ConnectionRegistry()
        limits = Limits(
            max_header_bytes=ByteSize(max_header_bytes),
            request_timeout=Seconds(REQUEST_TIMEOUT),
            keepalive_timeout=Seconds(KEEPALIVE_TIMEOUT),
        )
        self.protocol = H2Protocol(
            self.app,
            limits,
            Http2Config(max_concurrent_streams=max_concurrent_streams),
            self.registry,
            cast(asyncio.AbstractEventLoop, self.loop),
            "https",
        )
        self.protocol.connection_made(cast(asyncio.Transport, self.transport))
        self.client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        if client_settings:
            self.client.local_settings = Settings(client=True, initial_values=client_settings)
        self.client.initiate_connection()
        self.auto_window = auto_window  # the client gives back the window for what it reads
        self.seen: dict[int, StreamState] = {}
        self.terminated: ConnectionTerminated | None = None
        self._read = 0  # bytes of the transport's output the client has taken
        self.pump()

    def pump(self) -> None:
        """Until neither side has anything more to say (a loop pass each turn)."""
        for _ in range(100):
            outgoing = self.client.data_to_send()
            if outgoing and not self.transport.is_closing():
                self.protocol.data_received(outgoing)
            self.loop.run_soon()
            written = bytes(self.transport.written[self._read :])
            self._read = len(self.transport.written)
            if written and self.terminated is None:
                for event in self.client.receive_data(written):
                    self._on(event)
            if not outgoing and not written and not self.client.data_to_send():
                return
        raise AssertionError("the connection never went quiet")

    def send_raw(self, data: bytes) -> None:
        """Bytes the h2 client would not send (floods, malformed frames)."""
        self.protocol.data_received(data)
        self.loop.run_soon()

    def get(self, path: str, headers: list[tuple[str, str]] | None = None) -> int:
        stream_id = self.client.get_next_available_stream_id()
        self.client.send_headers(stream_id, self.request_headers("GET", path, headers), True)
        self.pump()
        return stream_id

    @staticmethod
    def request_headers(
        method: str, path: str, headers: list[tuple[str, str]] | None = None
    ) -> list[tuple[bytes, bytes]]:
        block = [
            (b":method", method.encode()),
            (b":path", path.encode()),
            (b":scheme", b"https"),
            (b":authority", b"gateway.test"),
        ]
        block += [(name.encode(), value.encode()) for name, value in headers or []]
        return block

    def _on(self, event: Event) -> None:
        if isinstance(event, ConnectionTerminated):
            self.terminated = event
        record(self.seen, event)
        if isinstance(event, DataReceived) and self.auto_window:
            self.client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)


def raw_frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream id, payload) of each whole frame in `data`."""
    frames = []
    while len(data) >= 9:
        high, low, kind, flags, stream_id = struct.unpack(">HBBBI", data[:9])
        size = (high << 8) | low
        frames.append((kind, flags, stream_id & 0x7FFFFFFF, data[9 : 9 + size]))
        data = data[9 + size :]
    return frames
