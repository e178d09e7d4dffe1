"""A TLS reconnect storm: `count` clients each connect, shake hands, ask for `/health`,
read the answer and hang up, as fast as the server lets them.

Clients are threads in a few processes with blocking sockets: `ssl` releases the GIL for
the handshake's cryptography, and `wrap_socket(session=...)` is the only way to offer a
saved session (asyncio's transports take none). With `resume`, each thread makes one
full handshake, keeps the session (TLS 1.3 tickets arrive after the handshake, so after
the answer is read), and offers it on every later connection; the server decides whether
to resume, and `session_reused` counts the ones it did.
"""

from __future__ import annotations

import multiprocessing
import socket
import ssl
import threading
import time
from typing import Any

REQUEST = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server is measured, not verified
    context.set_alpn_protocols(["http/1.1"])
    return context


def _one(
    context: ssl.SSLContext, port: int, session: ssl.SSLSession | None
) -> tuple[bool, ssl.SSLSession | None]:
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        tls.sendall(REQUEST)
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(f"answer: {answer[:40]!r}")
        return bool(tls.session_reused), tls.session


def _thread(port: int, count: int, resume: bool, out: list[tuple[int, int, int]]) -> None:
    context = _client_context()
    session = None
    done = reused = failed = 0
    for _ in range(count):
        try:
            was_reused, new_session = _one(context, port, session if resume else None)
        except (OSError, ConnectionError):
            failed += 1
            continue
        done += 1
        reused += was_reused
        if resume and session is None:
            session = new_session
    out.append((done, reused, failed))


def _process(port: int, count: int, threads: int, resume: bool, queue: Any) -> None:
    results: list[tuple[int, int, int]] = []
    share = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    workers = [
        threading.Thread(target=_thread, args=(port, n, resume, results)) for n in share if n
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put(tuple(sum(r[i] for r in results) for i in range(3)))


def storm(
    port: int, count: int, *, resume: bool, processes: int = 2, threads: int = 16
) -> dict[str, Any]:
    """Run the storm; handshakes done, resumed and failed, and the seconds it took."""
    queue: Any = multiprocessing.get_context("fork").Queue()
    share = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    started = time.monotonic()
    children = [
        multiprocessing.get_context("fork").Process(
            target=_process, args=(port, n, threads, resume, queue)
        )
        for n in share
    ]
    for child in children:
        child.start()
    totals = [queue.get(timeout=600) for _ in children]
    for child in children:
        child.join(30)
    seconds = time.monotonic() - started
    done, reused, failed = (sum(t[i] for t in totals) for i in range(3))
    return {"handshakes": done, "resumed": reused, "failed": failed, "seconds": round(seconds, 2)}
