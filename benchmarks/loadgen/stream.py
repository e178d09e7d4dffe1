"""One SSE stream of the load generator: a raw asyncio Protocol and its per-read work.

Per read, the work is what a correct check needs and no more:

1. Split at the last event terminator (`\\n\\n`, or `\\r\\n\\r\\n` for servers that write CRLF);
   keep the rest for the next read. Chunked framing is not decoded: chunk-size lines sit
   between events and never look like a field.
2. One `re.findall` over the complete events pulls (key, seq, ts) out of every `data:` line;
   a short Python loop checks that each key's sequence advances by exactly one (a gap is
   `lost`, a step back `duplicated`). That loop is the only per-event Python work.
3. The id of the last event in the read is found with `rfind` and kept (a reconnect sends it
   as `Last-Event-ID`). It is decoded on a stream's first id, on its last at the end, and
   on every read of the few id-checking streams (see `ids.py`).
4. Latency (`receive wall clock - t`) is recorded for every event of the sampling streams,
   all sharing the read's receive time.
5. A `retry:` field (the server's reconnection time, WHATWG) is rare: it is parsed only when
   `b"retry:"` occurs in the read; the last valid one sets the stream's next reconnect delay.

A refused stream (`503` or `429`) keeps the response's `Retry-After` (seconds, or an
HTTP-date), so the worker can reconnect after it with the stream's last id.

A `Stream` is the logical stream: it survives reconnects, so its sequence checks span them.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from array import array
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from benchmarks.loadgen.ids import DECODERS, Decoded, IdError, check_step
from benchmarks.records import DATA_PATTERN

if TYPE_CHECKING:
    from benchmarks.loadgen.h2conn import H2SseConnection
    from benchmarks.loadgen.worker import Worker

MAX_HEAD = 16384
RETRY_FIELD = b"retry:"
find_data = DATA_PATTERN.findall


class Stream:
    """A logical SSE stream: its checks and counters, across connections."""

    __slots__ = (
        "caught_up_at",
        "check_ids",
        "connection",
        "dup",
        "events",
        "events_since_decode",
        "first_id",
        "headers",
        "id_errors",
        "index",
        "keys",
        "last_decoded",
        "last_id",
        "lost",
        "next_seq",
        "opened_at",
        "path",
        "reconnects",
        "refusals",
        "retry_after",
        "retry_ms",
        "sample",
        "source",
        "status",
        "timer",
    )

    def __init__(
        self,
        index: int,
        path: str,
        keys: tuple[bytes, ...],
        source: str,
        sample: bool,
        check_ids: bool,
        headers: str = "",
    ) -> None:
        self.index = index
        self.headers = headers  # extra request header lines (a token), sent on every connect
        self.path = path
        self.keys = keys  # the keys this stream should receive; () = every key (fan-out)
        self.source = source
        self.sample = sample  # latency of every event
        self.check_ids = check_ids  # decode the last id of every read
        self.connection: SseConnection | H2SseConnection | None = None
        self.next_seq: dict[bytes, int] = {}
        self.events = 0
        self.lost = 0
        self.dup = 0
        self.id_errors: list[str] = []
        self.last_id: bytes | None = None
        self.first_id: bytes | None = None
        self.last_decoded: Decoded | None = None
        self.events_since_decode = 0
        self.opened_at: float | None = None
        self.caught_up_at: float | None = None
        self.reconnects = 0
        self.status = 0  # 0 while connecting or open, else the status that refused it
        self.refusals = 0
        self.retry_ms: int | None = None  # the last `retry:` received, on any connection
        self.retry_after: float | None = None  # seconds, from the last refusal's Retry-After
        self.timer: asyncio.TimerHandle | None = None  # a scheduled reconnect

    def check_id(self, id_kind: str, text: bytes, exact: bool) -> None:
        """Decode `text` and check it follows the last decoded id (see ids.py)."""
        try:
            current = DECODERS[id_kind](text.decode("latin-1"))
            check_step(self.last_decoded, current, self.events_since_decode, exact)
        except IdError as exc:
            if len(self.id_errors) < 3:
                self.id_errors.append(str(exc))
            return
        self.last_decoded = current
        self.events_since_decode = 0


class SseConnection(asyncio.Protocol):
    """One HTTP/1.1 connection carrying one stream."""

    __slots__ = ("answered", "head_done", "rest", "stream", "transport", "worker")

    def __init__(self, worker: Worker, stream: Stream) -> None:
        self.worker = worker
        self.stream = stream
        self.transport: asyncio.Transport | None = None
        self.head_done = False
        self.rest = b""
        # Resolved when the response head arrived (True) or the connection failed (False).
        self.answered: asyncio.Future[bool] = worker.loop.create_future()

    def _answer(self, ok: bool) -> None:
        if not self.answered.done():
            self.answered.set_result(ok)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport) or hasattr(transport, "write")
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        stream = self.stream
        last_id = f"Last-Event-ID: {stream.last_id.decode('latin-1')}\r\n" if stream.last_id else ""
        request = (
            f"GET {stream.path} HTTP/1.1\r\nHost: {self.worker.host_header}\r\n"
            f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n{last_id}"
            f"{stream.headers}\r\n"
        )
        transport.write(request.encode("latin-1"))

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
        if not self.head_done:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEAD:
                    self._fail(0)
                self.rest = data
                return
            status_line = data[: data.find(b"\r\n")]
            parts = status_line.split(b" ", 2)
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            if status != 200:
                self._fail(status, retry_after_seconds(data[: end + 2], time.time()))
                return
            self.head_done = True
            self._answer(True)
            self.worker.on_open(self.stream)
            data = b"\n" + data[end + 4 :]  # a line break before the first field
        terminator = self.worker.terminator
        end = data.rfind(terminator)
        if end < 0:
            self.rest = data
            return
        cut = end + len(terminator)
        if cut == len(data):
            self.rest = b""
        else:
            self.rest = data[cut:]
            data = data[:cut]
        self.worker.on_events(self.stream, data)

    def _fail(self, status: int, retry_after: float | None = None) -> None:
        self._answer(False)
        self.stream.status = status
        self.stream.retry_after = retry_after
        if self.transport is not None:
            self.transport.abort()
        self.worker.on_refused(self.stream, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._answer(False)
        # A `retry:` line of an event the server never finished still counts (WHATWG
        # processes fields line by line).
        if self.head_done and RETRY_FIELD in self.rest:
            retry = last_retry_ms(self.rest)
            if retry is not None:
                self.stream.retry_ms = retry
        self.worker.on_lost(self.stream, self)


def last_retry_ms(text: bytes) -> int | None:
    """The value of the last valid `retry:` field in `text`, or None (WHATWG: a field at a
    line start, one optional space after the colon, ASCII digits only, a complete line)."""
    at = text.rfind(RETRY_FIELD)
    while at >= 0:
        if at == 0 or text[at - 1] in (10, 13):
            start = at + len(RETRY_FIELD)
            end = len(text)
            for line_end in (b"\n", b"\r"):
                found = text.find(line_end, start)
                if 0 <= found < end:
                    end = found
            value = text[start:end]
            if value.startswith(b" "):
                value = value[1:]
            if end < len(text) and value.isdigit():
                return int(value)
        at = text.rfind(RETRY_FIELD, 0, at)
    return None


def retry_after_seconds(head: bytes, now: float) -> float | None:
    """Seconds a response head's `Retry-After` asks to wait (integer seconds or an
    HTTP-date, relative to the wall clock `now`), or None when absent or invalid."""
    lowered = head.lower()
    at = lowered.find(b"\r\nretry-after:")
    if at < 0:
        return None
    start = at + len(b"\r\nretry-after:")
    value = head[start : head.find(b"\r\n", start)].strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)


def process_events(
    stream: Stream,
    body: bytes,
    now_ns: int,
    latencies: array[int] | None,
    id_kind: str,
    exact_ids: bool,
    targets: dict[bytes, int] | None,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """The per-read work (module docstring); returns the number of events in `body`."""
    found = find_data(body)
    count = len(found)
    if count:
        stream.events += count
        stream.events_since_decode += count
        next_seq = stream.next_seq
        for key, seq_text, _ in found:
            seq = int(seq_text)
            expected = next_seq.get(key)
            if expected is None or expected == seq:
                next_seq[key] = seq + 1
            elif seq > expected:
                stream.lost += seq - expected
                next_seq[key] = seq + 1
            else:
                stream.dup += 1
        if latencies is not None and stream.sample:
            for _, _, ts in found:
                latencies.append(now_ns - int(ts))
    at = body.rfind(b"id:")
    while at > 0 and body[at - 1] != 10:  # a field starts a line (a read may start with one)
        at = body.rfind(b"id:", 0, at)
    if at >= 0:
        line_end = body.find(b"\n", at + 3)
        last_id = body[at + 3 : line_end].strip()
        stream.last_id = last_id
        if stream.first_id is None:
            stream.first_id = last_id
            stream.check_id(id_kind, last_id, exact_ids)
        elif stream.check_ids:
            stream.check_id(id_kind, last_id, exact_ids)
    if RETRY_FIELD in body:
        retry = last_retry_ms(body)
        if retry is not None:
            stream.retry_ms = retry
    if targets is not None and stream.caught_up_at is None and count:
        next_seq = stream.next_seq
        keys = stream.keys or targets.keys()
        if all(next_seq.get(key, 0) > targets[key] for key in keys if key in targets):
            stream.caught_up_at = monotonic()
    return count
