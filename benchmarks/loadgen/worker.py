"""A load-generator process: streams on one uvloop, driven by commands over a pipe.

The controller (`pool.py`) sends a command dict and waits for the reply dict. Commands:

- `open`: connect the given streams (at most `concurrency` connects in flight), each from
  its source address (127.0.0.x, so more than ~28k connections reach one port).
- `status`: counters (open, refused, events, reconnects, caught up).
- `window`: start (`on: true`) or end a measurement window; the end returns the events
  counted and the latency samples taken inside it.
- `drop`: abort every connection at once; each reconnects at once with its last id.
- `targets`: per-key sequences every stream must reach; `status` then counts the streams
  that did and when the last one did.
- `final`: the checks of every stream against the producer's final sequences.
- `close`: close everything and exit.

A stream the server closes (or drops as a slow client) reconnects with its last id, like an
EventSource: after the last `retry:` the server sent on that stream, or `RECONNECT_DELAY`
when it sent none. A stream refused with `503` or `429` and a `Retry-After` reconnects
after that delay (an EventSource would give up; a well-behaved client waits as told);
refused without one, it gives up. Reconnects, refusals by status and the delays used (by
what set them) are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
import time
from array import array
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import uvloop

from benchmarks.loadgen.delays import DelayStats
from benchmarks.loadgen.h2conn import H2SseConnection
from benchmarks.loadgen.stream import SseConnection, Stream, process_events
from benchmarks.system import raise_fd_limit

RECONNECT_DELAY = 0.5  # seconds, until the server sends `retry:`
REFUSALS = (429, 503)  # statuses that may come with a Retry-After worth honouring
HEAD_TIMEOUT = 10.0  # a connect holds its slot in the gate at most this long
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class Worker:
    """The streams of one process and the commands that drive them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Connection) -> None:
        self.loop = loop
        self.conn = conn
        self._send_lock = threading.Lock()
        self.host = "127.0.0.1"
        self.port = 0
        self.host_header = ""
        self.terminator = b"\n\n"
        self.id_kind = "ssegate"
        self.exact_ids = False
        self.reconnect = True
        # How streams reach the server: "h1" (one TCP connection each), "h1-tls" (one TLS
        # connection each) or "h2-tls" (`per_connection` streams per TLS connection, ALPN h2).
        self.protocol = "h1"
        self.per_connection = 1
        self.tls: ssl.SSLContext | None = None
        self.streams: list[Stream] = []
        self.open_count = 0
        self.refused: dict[int, int] = {}
        self.delays = DelayStats()
        self.events = 0
        self.window_events = 0
        self.window_started = 0.0
        self.latencies: array[int] | None = None
        self.targets: dict[bytes, int] | None = None
        self.connect_started: float | None = None
        self.last_open_at: float | None = None
        self.lost_connections = 0
        self.connect_errors: dict[str, int] = {}
        self.stopping = False
        self._pending: set[asyncio.Task[None]] = set()
        self.done = asyncio.Event()

    # -- stream callbacks (hot path) -------------------------------------------------------

    def on_events(self, stream: Stream, body: bytes) -> None:
        count = process_events(
            stream,
            body,
            time.time_ns(),
            self.latencies,
            self.id_kind,
            self.exact_ids,
            self.targets,
        )
        self.events += count
        if self.latencies is not None:
            self.window_events += count

    def on_open(self, stream: Stream) -> None:
        self.open_count += 1
        now = time.monotonic()
        stream.opened_at = now
        self.last_open_at = now

    def on_refused(self, stream: Stream, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1
        stream.refusals += 1

    def on_h2_stream_ended(self) -> None:
        """A stream of an HTTP/2 connection ended or was reset (it is not reopened)."""
        self.open_count -= 1
        self.lost_connections += 1

    def on_lost(self, stream: Stream, connection: SseConnection) -> None:
        if stream.connection is not connection:
            return
        stream.connection = None
        if connection.head_done:
            self.open_count -= 1
            self.lost_connections += 1
        if not self.stopping and self.reconnect:
            self._schedule_reconnect(stream)

    # -- connecting ------------------------------------------------------------------------

    def _schedule_reconnect(self, stream: Stream) -> None:
        """Reconnect after the delay the server asked for (module docstring), or give up."""
        if stream.status in REFUSALS:
            if stream.retry_after is None:
                return
            delay, kind = stream.retry_after, "retry_after"
        elif stream.status != 0:  # any other refusal: an EventSource fails for good
            return
        elif stream.retry_ms is not None:
            delay, kind = stream.retry_ms / 1000, "retry"
        else:
            delay, kind = RECONNECT_DELAY, "default"
        stream.reconnects += 1
        self.delays.add(kind, delay)
        if stream.timer is not None:
            stream.timer.cancel()
        stream.timer = self.loop.call_later(delay, self._spawn_connect, stream)

    def _spawn_connect(self, stream: Stream) -> None:
        stream.timer = None
        if self.stopping or stream.connection is not None:
            return
        # The connection is the stream's from now on, so a second spawn before the task
        # runs (a drop and a timer in the same loop turn) does not open it twice.
        connection = SseConnection(self, stream)
        stream.connection = connection
        task = self.loop.create_task(self._connect(stream, connection))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _connect(
        self,
        stream: Stream,
        connection: SseConnection | H2SseConnection,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        stream.status = 0
        try:
            if gate is not None:
                async with gate:
                    await self._open_socket(connection, stream)
            else:
                await self._open_socket(connection, stream)
        except OSError as exc:
            name = type(exc).__name__ + (f"({exc.errno})" if exc.errno else "")
            self.connect_errors[name] = self.connect_errors.get(name, 0) + 1
            if stream.connection is not connection:
                return  # dropped meanwhile: the drop already reconnected it
            stream.connection = None
            if self.reconnect and not self.stopping:
                self._schedule_reconnect(stream)

    async def _open_socket(
        self, connection: SseConnection | H2SseConnection, stream: Stream
    ) -> None:
        # IP_BIND_ADDRESS_NO_PORT: the source port is chosen at connect() (per destination),
        # not at bind(), whose search for a free port slows down as thousands are taken.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((stream.source, 0))
            await self.loop.sock_connect(sock, (self.host, self.port))
        except OSError:
            sock.close()
            raise
        await self.loop.create_connection(
            lambda: connection,
            sock=sock,
            ssl=self.tls,
            server_hostname="localhost" if self.tls is not None else None,
        )
        # Wait for the response head, so the gate bounds connects truly in flight.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(connection.answered), HEAD_TIMEOUT)

    # -- commands --------------------------------------------------------------------------

    def read_commands(self) -> None:
        """Receive commands, on a thread of their own: `status`, `window`, `final` and
        `targets` are answered here at once (they only read or swap counters), every other
        command runs on the loop. A saturated client's loop serves its pipe late (a full
        fan-out point at 10,000 x 1,000/s went 60 s without an answer; `targets` at the
        start of an overload's drain, over 60 s), and a sample, window or drain started that
        late would be a wrong one."""
        while True:
            try:
                command = self.conn.recv()
            except (EOFError, OSError):
                self.loop.call_soon_threadsafe(self._controller_gone)
                return
            name = command.get("cmd")
            if name == "status":
                self._send(self.status())
            elif name in ("window", "final", "targets"):
                args = {k: v for k, v in command.items() if k != "cmd"}
                answers: dict[str, Callable[..., dict[str, Any]]] = {
                    "window": self.window,
                    "final": self.final,
                    "targets": self.set_targets,
                }
                self._send(_retried(partial(answers[name], **args)))
            else:
                self.loop.call_soon_threadsafe(self._start, command)
            if command.get("cmd") == "close":
                return

    def _controller_gone(self) -> None:
        self.stopping = True
        self.done.set()

    def _start(self, command: dict[str, Any]) -> None:
        name = command.pop("cmd")
        task = self.loop.create_task(self._run(name, command))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _send(self, reply: dict[str, Any]) -> None:
        with self._send_lock:  # replies come from the loop and from the command thread
            self.conn.send(reply)

    async def _run(self, name: str, args: dict[str, Any]) -> None:
        handler = getattr(self, f"cmd_{name}")
        try:
            reply = await handler(**args)
        except Exception as exc:  # report to the controller rather than die silently
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        self._send(reply)

    async def cmd_open(
        self,
        *,
        host: str,
        port: int,
        streams: list[tuple[int, str, list[str], str, bool, bool, str]],
        terminator: bytes,
        id_kind: str,
        exact_ids: bool,
        concurrency: int,
        reconnect: bool,
        protocol: str = "h1",
        per_connection: int = 1,
    ) -> dict[str, Any]:
        self.host, self.port = host, port
        self.protocol = protocol
        self.per_connection = per_connection if protocol == "h2-tls" else 1
        if protocol in ("h1-tls", "h2-tls"):
            # The benchmark measures the server: the client trusts whatever it is shown.
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE
            self.tls.set_alpn_protocols(["h2"] if protocol == "h2-tls" else ["http/1.1"])
        self.host_header = f"{host}:{port}"
        self.terminator = terminator
        self.id_kind = id_kind
        self.exact_ids = exact_ids
        self.reconnect = reconnect
        limit, note = raise_fd_limit(len(self.streams) + len(streams) + 1024)
        new = [
            Stream(index, path, tuple(k.encode() for k in keys), source, sample, check, headers)
            for index, path, keys, source, sample, check, headers in streams
        ]
        self.streams.extend(new)
        gate = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        if self.connect_started is None:
            self.connect_started = started
        task = self.loop.create_task(self._open_all(new, gate))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return {"started": started, "fd_limit": limit, "fd_note": note}

    async def _open_all(self, streams: list[Stream], gate: asyncio.Semaphore) -> None:
        connects = []
        if self.protocol == "h2-tls":
            size = self.per_connection
            for start in range(0, len(streams), size):
                group = streams[start : start + size]
                h2 = H2SseConnection(self, group, self.host_header)
                for stream in group:
                    stream.connection = h2
                connects.append(self._connect(group[0], h2, gate))
            await asyncio.gather(*connects)
            return
        for stream in streams:
            connection = SseConnection(self, stream)
            stream.connection = connection
            connects.append(self._connect(stream, connection, gate))
        await asyncio.gather(*connects)

    async def cmd_status(self) -> dict[str, Any]:
        return self.status()

    def status(self) -> dict[str, Any]:
        return _retried(self._status)

    def _status(self) -> dict[str, Any]:
        caught = [s.caught_up_at for s in self.streams if s.caught_up_at is not None]
        opened = [s.opened_at for s in self.streams if s.opened_at is not None]
        return {
            "streams": len(self.streams),
            "open": self.open_count,
            "ever_opened": len(opened),
            "first_open_at": min(opened, default=None),
            "last_open_at": self.last_open_at,
            "connect_started": self.connect_started,
            "refused": dict(self.refused),
            "refused_streams": sum(1 for s in self.streams if s.refusals),
            "refused_waiting": sum(
                1 for s in self.streams if s.status in REFUSALS and s.connection is None
            ),
            # Caught up, or refused and waiting (or given up): nothing more to wait for.
            "settled": sum(
                1
                for s in self.streams
                if s.caught_up_at is not None or (s.status in REFUSALS and s.connection is None)
            ),
            "reconnect_delays": self.delays.snapshot(),
            "connect_errors": dict(self.connect_errors),
            "events": self.events,
            "lost_connections": self.lost_connections,
            "reconnects": sum(s.reconnects for s in self.streams),
            "caught_up": len(caught),
            "last_caught_up_at": max(caught, default=None),
            "cpu": _cpu_seconds(),
        }

    async def cmd_window(self, *, on: bool) -> dict[str, Any]:
        return self.window(on=on)

    def window(self, *, on: bool) -> dict[str, Any]:
        """Start or end a measurement window (from any thread: it swaps counters)."""
        if on:
            self.latencies = array("q")
            self.window_events = 0
            self.window_started = time.monotonic()
            return {"cpu": _cpu_seconds(), "events": self.events}
        samples, self.latencies = self.latencies, None
        return {
            "events": self.window_events,
            "seconds": time.monotonic() - self.window_started,
            "latencies": samples.tobytes() if samples is not None else b"",
            "cpu": _cpu_seconds(),
        }

    async def cmd_drop(self, *, delay: float = 0.0) -> dict[str, Any]:
        dropped = 0
        for stream in self.streams:
            connection = stream.connection
            if connection is not None and connection.transport is not None:
                stream.connection = None
                if connection.head_done:
                    self.open_count -= 1
                connection.transport.abort()
                dropped += 1
        at = time.monotonic()
        if delay:
            await asyncio.sleep(delay)
        for stream in self.streams:
            stream.reconnects += 1
            stream.opened_at = None
            if stream.timer is not None:  # a network drop: every client retries now
                stream.timer.cancel()
            self._spawn_connect(stream)
        return {"dropped": dropped, "at": at}

    def set_targets(self, *, targets: dict[str, int]) -> dict[str, Any]:
        """From the command thread. The loop reads `self.targets` afresh for each read it
        processes, so a stream it marks caught up from now on is marked against these;
        until now there were none, so no stale mark can land after the loop below."""
        encoded = {key.encode(): seq for key, seq in targets.items()}
        self.targets = encoded
        now = time.monotonic()
        for stream in self.streams:
            stream.caught_up_at = None
            keys = stream.keys or encoded.keys()
            if all(stream.next_seq.get(k, 0) > encoded[k] for k in keys if k in encoded):
                stream.caught_up_at = now
        return {"ok": True}

    async def cmd_final(self, *, last_seq: dict[str, int]) -> dict[str, Any]:
        return self.final(last_seq=last_seq)

    def final(self, *, last_seq: dict[str, int]) -> dict[str, Any]:
        """The checks of every stream (from any thread: it only reads them)."""
        finals = {key.encode(): seq for key, seq in last_seq.items()}
        undelivered = 0
        undelivered_refused = 0
        refused_not_back = 0
        silent = 0
        id_errors: list[str] = []
        streams_with_id_errors = 0
        for stream in self.streams:
            if stream.last_id is not None and stream.last_id is not stream.first_id:
                stream.check_id(self.id_kind, stream.last_id, self.exact_ids)
            if stream.id_errors:
                streams_with_id_errors += 1
                id_errors.extend(stream.id_errors[: 3 - min(len(id_errors), 3)])
            keys = stream.keys or tuple(finals)
            # Refused and not admitted again by now: what it misses is not a loss.
            refused = stream.status in REFUSALS and stream.connection is None
            refused_not_back += refused
            if not stream.next_seq:
                silent += not refused
                continue
            owed = 0
            for key in keys:
                final = finals.get(key)
                got = stream.next_seq.get(key)
                if final is not None and got is not None and final + 1 > got:
                    owed += final + 1 - got
            if refused:
                undelivered_refused += owed
            else:
                undelivered += owed
        return {
            "streams": len(self.streams),
            "events": self.events,
            "lost": sum(s.lost for s in self.streams),
            "duplicated": sum(s.dup for s in self.streams),
            "undelivered": undelivered,
            "refused_not_back": refused_not_back,
            "undelivered_refused": undelivered_refused,
            "silent_streams": silent,
            "streams_with_id_errors": streams_with_id_errors,
            "id_errors": id_errors[:3],
        }

    async def cmd_close(self) -> dict[str, Any]:
        self.stopping = True
        for stream in self.streams:
            connection = stream.connection
            if connection is not None and connection.transport is not None:
                connection.transport.abort()
        self.loop.call_later(0.1, self.done.set)
        return {"ok": True}


def _retried(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`read()` from the command thread: a copy made while the loop changed a dict (a
    RuntimeError) is taken again."""
    for _ in range(5):
        with contextlib.suppress(RuntimeError):
            return read()
    return read()


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def _serve(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker(loop, conn)
    conn.send({"ready": os.getpid()})
    threading.Thread(target=worker.read_commands, name="commands", daemon=True).start()
    await worker.done.wait()


def worker_main(conn: Connection) -> None:
    """The entry point of a client process."""
    uvloop.run(_serve(conn))
