"""Which protocol a new connection speaks: HTTP/1.1 or HTTP/2.

1. Over TLS, the client's ALPN choice decides, known once the handshake is done (which is
   when asyncio calls `connection_made`): `h2` gets an `H2Protocol`, anything else (or no
   ALPN at all) HTTP/1.1.
2. Without TLS, HTTP/2 only by prior knowledge and only where `http2.cleartext` allows it:
   a connection whose first bytes are the HTTP/2 client preface becomes an `H2Protocol`.
   (The `Upgrade: h2c` dance of RFC 7540 is not offered: RFC 9113 dropped it.)
The chosen protocol replaces the first one on the transport (`set_protocol`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from ssegate.http.exchange import Application, ConnectionRegistry
from ssegate.http.h1 import HttpProtocol, HttpsProtocol
from ssegate.http.h2 import H2Protocol
from ssegate.http.h2frames import PREFACE

if TYPE_CHECKING:
    from ssegate.config.schema import Http2Config, Limits, Listener


def protocol_factory(
    app: Application,
    limits: Limits,
    listener: Listener,
    registry: ConnectionRegistry,
    loop: asyncio.AbstractEventLoop,
) -> Callable[[], asyncio.Protocol]:
    """What `loop.create_server` calls for each connection of `listener`."""
    http2 = listener.http2
    if listener.tls is not None:
        if http2.enabled:
            return partial(AlpnSelector, app, limits, http2, registry, loop)
        return partial(HttpsProtocol, app, limits, registry, loop)
    if http2.enabled and http2.cleartext:
        return partial(PriorKnowledgeProtocol, app, limits, http2, registry, loop)
    return partial(HttpProtocol, app, limits, registry, loop)


class AlpnSelector(asyncio.Protocol):
    """Stands in until the TLS handshake is done, then hands over (rule 1)."""

    __slots__ = ("_app", "_http2", "_limits", "_loop", "_registry")

    def __init__(
        self,
        app: Application,
        limits: Limits,
        http2: Http2Config,
        registry: ConnectionRegistry,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._app = app
        self._limits = limits
        self._http2 = http2
        self._registry = registry
        self._loop = loop

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        protocol: asyncio.Protocol
        if chosen == "h2":
            protocol = H2Protocol(
                self._app, self._limits, self._http2, self._registry, self._loop, "https"
            )
        else:
            protocol = HttpsProtocol(self._app, self._limits, self._registry, self._loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)


class PriorKnowledgeProtocol(HttpProtocol):
    """HTTP/1.1 unless the first bytes are the HTTP/2 preface (rule 2)."""

    __slots__ = ("_first", "_http2", "_limits")

    def __init__(
        self,
        app: Application,
        limits: Limits,
        http2: Http2Config,
        registry: ConnectionRegistry,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(app, limits, registry, loop)
        self._limits = limits
        self._http2 = http2
        self._first: bytes | None = b""  # the bytes so far, until they decide

    def data_received(self, data: bytes) -> None:
        if self._first is None:
            super().data_received(data)
            return
        first = self._first + data
        if not PREFACE.startswith(first[: len(PREFACE)]):
            self._first = None
            super().data_received(first)
        elif len(first) < len(PREFACE):
            self._first = first
        else:
            self._first = None
            self._hand_over(first)

    def _hand_over(self, first: bytes) -> None:
        transport = self.transport
        assert transport is not None
        self._cancel_timer()
        self._registry.discard(self)
        protocol = H2Protocol(
            self._app, self._limits, self._http2, self._registry, self._loop, "http"
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(first)
