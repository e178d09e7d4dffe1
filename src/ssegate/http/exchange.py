"""What the application sees of HTTP, whatever the wire: HTTP/1.1 or HTTP/2.

A connection hands the application one `Exchange` per request. The application answers it
once: a whole response (`respond`), or an event stream (`start_stream`, which returns the
`EventSink` the fan-out writes to). HTTP/1.1 (`http.h1`) and HTTP/2 (`http.h2`) implement
these; the application and the fan-out never learn which one they talk to.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ssegate.http.request import Request
from ssegate.sse.stream import EventSink


class Exchange(Protocol):
    """One request and the means to answer it (once)."""

    @property
    def request(self) -> Request: ...

    @property
    def answered(self) -> bool: ...

    def respond(
        self,
        status: int,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        close: bool = False,
    ) -> None:
        """A complete response; `close` ends the connection after it (HTTP/1.1 only: an
        HTTP/2 connection carries other streams)."""

    def start_stream(self, headers: list[tuple[str, str]]) -> EventSink:
        """A 200 `text/event-stream` response with `headers`, left open for events."""


class Application(Protocol):
    """What a connection needs from the gateway."""

    def handle(self, exchange: Exchange) -> None: ...
    def record_status(self, status: int) -> None: ...
    def record_protocol_error(self, protocol: str, reason: str) -> None:
        """A connection was closed for breaking a protocol's rules or limits (metrics)."""


class Connection(Protocol):
    """What shutdown needs of an open connection."""

    def shutdown(self) -> None:
        """Stop taking requests; close once what is under way has ended."""

    def abort(self) -> None:
        """Drop the connection now."""


def peer_ip(transport: asyncio.BaseTransport) -> str:
    """The client's address, as logs and per-IP limits name it."""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


class ConnectionRegistry:
    """The open connections of a server, for gauges and for shutdown."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.accepting = True
        self.drained = asyncio.Event()  # set whenever the last connection closes

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.drained.clear()

    def discard(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self.drained.set()
