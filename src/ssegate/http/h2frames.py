"""HTTP/2 frames the gateway handles itself: DATA frame heads for the event hot path, and a
guard that reads the frame heads a client sends before h2 parses them (sans-I/O).

Theory of operation:

1. DATA frames of event streams are framed here, not by h2 (`data_frame_head`): h2's
   `send_data` costs 4.1 us per event, a 9-byte head 0.2 us (`benchmarks/h2_framing.py`,
   decision 0010). The stream keeps h2's flow-control windows in step (`http.h2stream`).
2. `FrameGuard.feed` sees every byte a client sends, in order, before h2 does, and walks the
   frame heads only (9 bytes each; payloads are skipped, never copied). It stops a
   connection whose frames cost the server work without progress, at rates no client
   needs (FLOOD_LIMITS):
   - rapid reset (CVE-2023-44487): streams opened and reset at once by RST_STREAM;
   - SETTINGS and PING floods (CVE-2019-9512, -9515): each one owes an acknowledgement;
     PRIORITY floods (CVE-2019-9513);
   - empty frames (CVE-2019-9518): DATA without payload or end, CONTINUATION without
     payload or end of headers;
   - CONTINUATION floods (CVE-2024-27316 class): a header block may hold
     `max_header_block` bytes and MAX_CONTINUATIONS frames, whatever it would decode to.
   HPACK bombs are h2's (the decoder stops at SETTINGS_MAX_HEADER_LIST_SIZE).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PING = 0x6
GOAWAY = 0x7
CONTINUATION = 0x9
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4

# A frame head: 24-bit length (as 16 + 8 bits), type, flags, stream id (RFC 9113 §4.1).
_HEAD = struct.Struct(">HBBBI")
_HEAD_SIZE = 9

# The CONTINUATION frames one header block may take. Browsers send a request's headers in
# one HEADERS frame; h2 itself allows 64 (`CONTINUATION_BACKLOG`).
MAX_CONTINUATIONS = 16


def data_frame_head(stream_id: int, length: int) -> bytes:
    """The 9-byte head of a DATA frame without flags carrying `length` bytes."""
    return _HEAD.pack(length >> 8, length & 0xFF, DATA, 0, stream_id)


def goaway_frame(last_stream_id: int, error_code: int = 0) -> bytes:
    """A GOAWAY frame (RFC 9113 §6.8), written past h2 so that h2 still lets the streams
    under way finish (h2 sends nothing more once it has sent a GOAWAY itself)."""
    return _HEAD.pack(0, 8, GOAWAY, 0, 0) + struct.pack(">II", last_stream_id, error_code)


class Flood(enum.Enum):
    """Why a connection was stopped; the value is the metric's `reason` label."""

    RAPID_RESET = "rapid_reset"
    CONTROL_FLOOD = "control_flood"  # SETTINGS, PING, PRIORITY
    EMPTY_FRAMES = "empty_frames"
    HEADER_BLOCK = "header_block_too_large"


@dataclass(frozen=True, slots=True)
class FloodLimit:
    events: int
    seconds: float


# What one connection may do in a window: a browser resets a stream when a page closes an
# EventSource (a few per navigation) and sends a SETTINGS and a PING or two per connection;
# nginx and Go set similar bounds. Attacks run at thousands per second.
FLOOD_LIMITS: dict[Flood, FloodLimit] = {
    Flood.RAPID_RESET: FloodLimit(200, 10.0),
    Flood.CONTROL_FLOOD: FloodLimit(200, 10.0),
    Flood.EMPTY_FRAMES: FloodLimit(100, 10.0),
}


class _Meter:
    """At most `limit.events` hits in any window of `limit.seconds` (a fixed window that
    restarts at the first hit after it ends: coarse, and free of per-hit allocation)."""

    __slots__ = ("_count", "_ends", "_limit")

    def __init__(self, limit: FloodLimit) -> None:
        self._limit = limit
        self._count = 0
        self._ends = 0.0

    def hit(self, now: float) -> bool:
        """Count one; whether the connection is still within its limit."""
        if now >= self._ends:
            self._ends = now + self._limit.seconds
            self._count = 0
        self._count += 1
        return self._count <= self._limit.events


class FrameGuard:
    """Reads the frame heads of a client's bytes (rule 2); `feed` returns why to stop, or
    None. After a Flood the guard stays stopped."""

    __slots__ = (
        "_block_bytes",
        "_block_frames",
        "_clock",
        "_goaway",
        "_head",
        "_in_block",
        "_max_header_block",
        "_meters",
        "_preface",
        "_skip",
        "goaway_ends",
        "stopped",
    )

    def __init__(self, max_header_block: int, clock: Callable[[], float]) -> None:
        self._max_header_block = max_header_block
        self._clock = clock
        self._preface = len(PREFACE)  # bytes of the client preface still to skip
        self._skip = 0  # payload bytes of the current frame still to skip
        self._head = b""  # the part of a frame head received so far
        self._in_block = False  # a header block has begun and not ended
        self._block_bytes = 0
        self._block_frames = 0
        self._meters = {flood: _Meter(limit) for flood, limit in FLOOD_LIMITS.items()}
        self.stopped: Flood | None = None
        self._goaway = False  # the current frame is a GOAWAY
        # Where in the last fed bytes each GOAWAY frame ended: the connection feeds h2 up
        # to there, then restores h2's state (`H2Protocol._on_terminated`).
        self.goaway_ends: list[int] = []

    def feed(self, data: bytes) -> Flood | None:
        if self.stopped is not None:
            return self.stopped
        self.goaway_ends.clear()
        view = memoryview(data)
        if self._preface:
            taken = min(self._preface, len(view))
            self._preface -= taken
            view = view[taken:]
        while view:
            if self._skip:
                taken = min(self._skip, len(view))
                self._skip -= taken
                view = view[taken:]
                if self._goaway and not self._skip:
                    self._goaway = False
                    self.goaway_ends.append(len(data) - len(view))
                continue
            wanted = _HEAD_SIZE - len(self._head)
            if len(view) < wanted:
                self._head += bytes(view)
                return None
            head = self._head + bytes(view[:wanted]) if self._head else bytes(view[:wanted])
            self._head = b""
            view = view[wanted:]
            high, low, kind, flags, _ = _HEAD.unpack(head)
            length = (high << 8) | low
            self._skip = length
            if kind == GOAWAY:
                self._goaway = bool(length)
                if not length:  # malformed: h2 answers it
                    self.goaway_ends.append(len(data) - len(view))
            flood = self._frame(kind, flags, length)
            if flood is not None:
                self.stopped = flood
                return flood
        return None

    def _frame(self, kind: int, flags: int, length: int) -> Flood | None:
        if kind in (HEADERS, CONTINUATION):
            return self._header_block(kind, flags, length)
        if kind == DATA:
            if length == 0 and not flags & END_STREAM:
                return self._hit(Flood.EMPTY_FRAMES)
        elif kind == RST_STREAM:
            return self._hit(Flood.RAPID_RESET)
        elif kind in (SETTINGS, PING):
            if not flags & ACK:
                return self._hit(Flood.CONTROL_FLOOD)
        elif kind == PRIORITY:
            return self._hit(Flood.CONTROL_FLOOD)
        return None

    def _header_block(self, kind: int, flags: int, length: int) -> Flood | None:
        if kind == HEADERS:
            self._in_block = True
            self._block_bytes = 0
            self._block_frames = 0
        elif not self._in_block:
            return None  # a CONTINUATION out of place: h2 answers it with PROTOCOL_ERROR
        else:
            self._block_frames += 1
            if length == 0 and not flags & END_HEADERS:
                flood = self._hit(Flood.EMPTY_FRAMES)
                if flood is not None:
                    return flood
        self._block_bytes += length
        if self._block_bytes > self._max_header_block or self._block_frames > MAX_CONTINUATIONS:
            return Flood.HEADER_BLOCK
        if flags & END_HEADERS:
            self._in_block = False
        return None

    def _hit(self, flood: Flood) -> Flood | None:
        return None if self._meters[flood].hit(self._clock()) else flood
