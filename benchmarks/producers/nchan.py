"""Records into nchan through its HTTP publisher endpoint, paced like the Kafka producer.

One keep-alive connection, requests pipelined (at most `MAX_IN_FLIGHT` unanswered): nginx
answers pipelined requests in order, so every channel gets its records in sequence order.
The record's timestamp is taken when its POST is written.
"""

from __future__ import annotations

import socket
import time
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Event

from benchmarks.producers.pacing import Paced, ProducerHandle
from benchmarks.records import make_record

MAX_IN_FLIGHT = 256


class _Responses:
    """Counts complete HTTP responses on the publisher connection."""

    def __init__(self) -> None:
        self.buffer = b""
        self.answered = 0
        self.failed = 0

    def feed(self, data: bytes) -> None:
        buffer = self.buffer + data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 : head.find(b"\r\n", at)].strip() or 0) if at >= 0 else 0
            if len(buffer) < end + 4 + length:
                break
            if not buffer.startswith(b"HTTP/1.1 2"):
                self.failed += 1
            self.answered += 1
            buffer = buffer[end + 4 + length :]
        self.buffer = buffer


def _publisher_main(
    *,
    port: int,
    channels: list[str],
    rate: float,
    keys: list[str],
    stop: Event,
    ready: Event,
    last_seq: SynchronizedArray[int],
    sent: Synchronized[int],
    errors: Synchronized[int],
    shared_rate: Synchronized[float],
) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(5.0)
    heads = [
        f"POST /pub/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: ".encode()
        for channel in channels
    ]
    responses = _Responses()
    seqs = [0] * len(keys)
    paced = Paced(rate, shared_rate)
    ready.set()
    index = 0
    while True:
        due = paced.due(stop)
        if not due:
            break
        parts = []
        for _ in range(due):
            slot = index % len(keys)
            seq = seqs[slot]
            seqs[slot] = seq + 1
            body = make_record(keys[slot], seq, time.time_ns())
            parts.append(heads[slot] + str(len(body)).encode() + b"\r\n\r\n" + body)
            last_seq[slot] = seq
            index += 1
        sock.sendall(b"".join(parts))
        sent.value = index
        _read(sock, responses, index - MAX_IN_FLIGHT, stop=stop)
    _read(sock, responses, index, deadline=time.monotonic() + 30)
    errors.value = responses.failed + (index - responses.answered)
    sock.close()


def _read(
    sock: socket.socket,
    responses: _Responses,
    at_least: int,
    deadline: float | None = None,
    stop: Event | None = None,
) -> None:
    """Read what is there; block while fewer than `at_least` requests are answered
    (until `deadline`, or until `stop` is set)."""
    sock.setblocking(False)
    try:
        while True:
            try:
                data = sock.recv(262144)
            except BlockingIOError:
                if responses.answered >= at_least:
                    return
                if deadline is not None and time.monotonic() > deadline:
                    return
                if stop is not None and stop.is_set():
                    return
                time.sleep(0.0005)
                continue
            if not data:
                return
            responses.feed(data)
    finally:
        sock.setblocking(True)


def nchan_publisher(port: int, channels: list[str], keys: list[str], rate: float) -> ProducerHandle:
    """A paced publisher: record i goes to `channels[i % len(keys)]` with key `keys[...]`."""
    return ProducerHandle(_publisher_main, keys, {"port": port, "channels": channels, "rate": rate})
