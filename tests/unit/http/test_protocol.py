"""HttpProtocol on a fake transport and loop: one behaviour per test, exact bytes."""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import cast

import pytest

from ssegate.http.exchange import Exchange
from ssegate.http.h1 import LINGER_SECONDS, MAX_BODY, HttpProtocol
from ssegate.sse.stream import CloseReason
from tests.unit.http.harness import (
    BOOM_PATH,
    KEEPALIVE_TIMEOUT,
    MISSING_PATH,
    REQUEST_TIMEOUT,
    STREAM_PATH,
    STREAM_PREAMBLE,
    Connection,
    FakeTimer,
    FakeTransport,
    request,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nok"
OK_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _error(status: str, message: str) -> bytes:
    body = message.encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def _431(limit: int) -> bytes:
    return _error("431 Request Header Fields Too Large", f"request headers exceed {limit} bytes\n")


REQUEST_408 = _error("408 Request Timeout", f"request not received within {REQUEST_TIMEOUT:g}s\n")


# -- one request, keep-alive, close --------------------------------------------------------


def test_a_complete_request_gets_exactly_one_response() -> None:
    conn = Connection().feed(request("/ok?x=1"))
    assert conn.output == OK
    assert conn.open
    (seen,) = conn.app.requests
    assert (seen.method, seen.path, seen.query, seen.http_version) == ("GET", "/ok", "x=1", "1.1")
    assert seen.headers == [("host", "gw")]
    assert seen.client_ip == "127.0.0.1"
    assert conn.app.statuses == [200]
    assert conn.transport.limits == (256 * 1024, 64 * 1024)
    assert repr(conn.protocol) == "<HttpProtocol 127.0.0.1 http>"


def test_keep_alive_then_a_second_request_on_the_same_connection() -> None:
    conn = Connection().feed(request("/a"))
    assert [timer.delay for timer in conn.loop.pending()] == [KEEPALIVE_TIMEOUT]
    conn.feed(request("/b"))
    assert conn.output == OK + OK
    assert [r.path for r in conn.app.requests] == ["/a", "/b"]
    assert conn.open


def test_connection_close_is_answered_and_closed() -> None:
    conn = Connection().feed(request(headers=[("Host", "gw"), ("Connection", "close")]))
    assert conn.output == OK_CLOSE
    assert conn.transport.closed
    assert conn.loop.pending() == []


def test_http_1_0_closes_unless_it_asks_for_keep_alive() -> None:
    conn = Connection().feed(request(version="HTTP/1.0"))
    assert conn.output == OK_CLOSE
    assert conn.transport.closed
    conn = Connection().feed(request(version="HTTP/1.0", headers=[("Connection", "keep-alive")]))
    assert conn.output == OK
    assert conn.open


def test_draining_server_closes_after_the_answer() -> None:
    conn = Connection(accepting=False).feed(request())
    assert conn.output == OK_CLOSE
    assert conn.transport.closed


def test_head_gets_headers_without_body() -> None:
    conn = Connection().feed(request(method="HEAD"))
    assert conn.output == OK[:-2]
    assert conn.open


def test_pipelined_requests_are_answered_in_order() -> None:
    conn = Connection().feed(request("/a") + request(MISSING_PATH) + request("/c"))
    assert conn.statuses() == [200, 404, 200]
    assert [r.path for r in conn.app.requests] == ["/a", MISSING_PATH, "/c"]
    assert conn.open


def test_pipelined_requests_after_a_close_are_ignored() -> None:
    closing = request("/a", headers=[("Connection", "close")])
    conn = Connection().feed(closing + request("/b") + b"garbage\r\n\r\n")
    assert conn.output == OK_CLOSE
    assert [r.path for r in conn.app.requests] == ["/a"]
    assert conn.transport.late_writes == []


def test_absolute_form_target() -> None:
    conn = Connection().feed(request("http://gw:7114/events/a?lastEventId=x"))
    (seen,) = conn.app.requests
    assert (seen.path, seen.query) == ("/events/a", "lastEventId=x")
    conn = Connection().feed(request("http://gw:7114"))
    assert conn.app.requests[0].path == "/"


def test_absolute_form_scheme_is_case_insensitive() -> None:
    conn = Connection().feed(request("HTTP://gw/stream"))
    assert conn.app.requests[0].path == STREAM_PATH
    assert conn.app.streams


def test_header_values_lose_surrounding_whitespace() -> None:
    """RFC 9110 §5.5: whitespace around a field value is not part of it."""
    conn = Connection().feed(
        b"GET / HTTP/1.1\r\nLast-Event-ID: \t AQIAAg== \t\r\nX-Empty:  \r\n\r\n"
    )
    assert conn.app.requests[0].headers == [("last-event-id", "AQIAAg=="), ("x-empty", "")]


def test_any_byte_split_gives_the_same_answer() -> None:
    data = request("/a", headers=[("Host", "gw"), ("Last-Event-ID", "AQIAAg==")]) + request("/b")
    conn = Connection()
    for i in range(len(data)):
        conn.feed(data[i : i + 1])
    assert conn.output == OK + OK
    assert conn.app.requests[0].header("last-event-id") == "AQIAAg=="


# -- limits and errors -------------------------------------------------------------------------


def test_one_header_over_the_limit_is_431() -> None:
    conn = Connection(max_header_bytes=1024).feed(request(headers=[("X-Big", "x" * 1100)]))
    assert conn.output == _431(1024)
    assert conn.transport.closed
    assert conn.app.requests == []
    assert conn.app.statuses == [431]


def test_many_small_headers_over_the_limit_are_431() -> None:
    headers = [(f"X-{i}", "v") for i in range(300)]  # 300 * (3-5 + 1 + 4) bytes > 2048
    conn = Connection(max_header_bytes=2048).feed(request(headers=headers))
    assert conn.output == _431(2048)


def test_many_small_headers_within_the_limit_pass() -> None:
    headers = [(f"X-{i}", "v") for i in range(200)]
    conn = Connection(max_header_bytes=16 * 1024).feed(request(headers=headers))
    assert conn.output == OK
    assert len(conn.app.requests[0].headers) == 200


def test_one_huge_url_is_431() -> None:
    conn = Connection(max_header_bytes=1024).feed(request("/" + "a" * 2000))
    assert conn.output == _431(1024)


def test_a_huge_url_in_pieces_is_431_before_it_ends() -> None:
    conn = Connection(max_header_bytes=1024).feed(b"GET /", b"a" * 600, b"a" * 600)
    assert conn.output == _431(1024)


def test_a_header_value_that_never_ends_is_431_while_it_arrives() -> None:
    """httptools holds a header until its line ends; the raw head bytes still count."""
    conn = Connection(max_header_bytes=1024).feed(b"GET / HTTP/1.1\r\nX-Flood: ")
    for _ in range(10):
        conn.feed(b"a" * 512)
    assert conn.output == _431(1024)
    assert conn.transport.closed


def test_a_header_name_that_never_ends_is_431_while_it_arrives() -> None:
    conn = Connection(max_header_bytes=1024).feed(b"GET / HTTP/1.1\r\nX")
    for _ in range(10):
        conn.feed(b"a" * 512)
    assert conn.output == _431(1024)


def test_a_body_over_64_kib_is_413() -> None:
    body = b"x" * (MAX_BODY + 1)
    conn = Connection().feed(request(method="POST", body=body))
    assert conn.output == _error(
        f"413 {HTTPStatus(413).phrase}", f"request body exceeds {MAX_BODY} bytes\n"
    )
    assert conn.transport.closed


def test_a_huge_chunked_body_is_413_while_it_arrives() -> None:
    conn = Connection().feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(20):
        conn.feed(b"1000\r\n" + b"x" * 0x1000 + b"\r\n")
    assert conn.statuses() == [413]
    assert conn.transport.closed
    assert conn.transport.late_writes == []


def test_a_body_within_the_limit_is_read_and_the_connection_continues() -> None:
    body = b"x" * MAX_BODY
    conn = Connection().feed(request(method="POST", body=body), request("/b"))
    assert conn.output == OK + OK


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GARBAGE\r\n\r\n", "Invalid method encountered"),
        (b"GET / HTTP/1.1\r\nHost a\r\n\r\n", "Invalid header token"),
        (b"GET / HTTP/9.9\r\n\r\n", "Invalid HTTP version"),
        (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "Unexpected whitespace after header value"),
        (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", "Invalid header value char"),
        (b"GET /\x00 HTTP/1.1\r\n\r\n", "Invalid char in url path"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "Pause on PRI/Upgrade"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "Invalid method encountered"),
    ],
)
def test_malformed_request_is_400(data: bytes, reason: str) -> None:
    conn = Connection().feed(data)
    assert conn.output == _error("400 Bad Request", f"malformed HTTP request: {reason}\n")
    assert conn.transport.closed
    assert conn.app.requests == []


def test_non_ascii_header_values_reach_the_application_as_latin_1() -> None:
    conn = Connection().feed(b"GET / HTTP/1.1\r\nLast-Event-ID: \xc3\xa9\xff\r\n\r\n")
    assert conn.output == OK
    assert conn.app.requests[0].header("last-event-id") == "\xc3\xa9\xff"


def test_request_timer_mid_request_is_408() -> None:
    conn = Connection().feed(b"GET / HTTP/1.1\r\nHost: gw\r\n")
    assert conn.output == b""
    assert conn.fire() == REQUEST_TIMEOUT
    assert conn.output == REQUEST_408
    assert conn.transport.closed
    assert conn.app.statuses == [408]


def test_request_timer_covers_a_pipelined_request_left_unfinished() -> None:
    conn = Connection().feed(request("/a") + b"GET /b HTTP/1.1\r\n")
    assert conn.output == OK
    assert conn.fire() == REQUEST_TIMEOUT
    assert conn.output == OK + REQUEST_408
    assert conn.transport.closed


def test_idle_keep_alive_connection_closes_when_the_timer_fires() -> None:
    conn = Connection()
    assert conn.fire() == KEEPALIVE_TIMEOUT  # never sent anything
    assert (conn.output, conn.transport.closed) == (b"", True)
    conn = Connection().feed(request())
    assert conn.fire() == KEEPALIVE_TIMEOUT
    assert (conn.output, conn.transport.closed) == (OK, True)


def test_empty_lines_between_requests_do_not_start_a_request() -> None:
    """RFC 9112 §2.2: a server SHOULD ignore an empty line before a request-line."""
    conn = Connection().feed(request("/a"), b"\r\n")
    assert conn.fire() == KEEPALIVE_TIMEOUT
    assert (conn.output, conn.transport.closed) == (OK, True)
    conn = Connection().feed(request("/a"), b"\r\n", request("/b"))
    assert conn.output == OK + OK


def test_shutdown_closes_an_idle_connection_and_waits_for_a_busy_one() -> None:
    conn = Connection()
    conn.protocol.shutdown()
    assert conn.transport.closed
    conn = Connection().feed(b"GET / HTTP/1.1\r\n")
    conn.protocol.shutdown()
    assert conn.open
    conn.feed(b"\r\n")
    assert conn.output == OK


# -- upgrades -------------------------------------------------------------------------------


def test_h2c_upgrade_is_answered_as_http_1_1_and_the_connection_continues() -> None:
    upgrade = request(
        "/a",
        headers=[
            ("Host", "gw"),
            ("Connection", "Upgrade, HTTP2-Settings"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
        ],
    )
    conn = Connection().feed(upgrade + request("/b"))
    assert conn.output == OK + OK
    assert [r.path for r in conn.app.requests] == ["/a", "/b"]
    conn = Connection().feed(upgrade, request("/b"))
    assert conn.output == OK + OK


def test_many_pipelined_upgrades_in_one_read() -> None:
    upgrade = request(headers=[("Connection", "upgrade"), ("Upgrade", "h2c")])
    conn = Connection().feed(upgrade * 3000)
    assert conn.output == OK * 3000
    assert conn.open


@pytest.mark.parametrize(
    "body_headers",
    [[("Content-Length", "23")], [("Transfer-Encoding", "chunked")]],
)
def test_upgrade_with_a_body_is_answered_and_closed(body_headers: list[tuple[str, str]]) -> None:
    """httptools hands an upgrade request's body back unread: it must not be taken for the
    next request (a proxy forwarding the body would be out of step: request smuggling)."""
    smuggled = b"GET /missing HTTP/1.1\r\n"  # 23 bytes, also a valid chunk-size error
    head = request("/a", headers=[("Connection", "upgrade"), ("Upgrade", "h2c"), *body_headers])
    conn = Connection().feed(head + smuggled + b"\r\n")
    assert conn.output == OK_CLOSE
    assert [r.path for r in conn.app.requests] == ["/a"]
    assert conn.transport.closed


def test_connect_is_answered_and_closed() -> None:
    conn = Connection().feed(b"CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n\r\n" + request("/b"))
    assert conn.output == OK_CLOSE
    assert [(r.method, r.path) for r in conn.app.requests] == [("CONNECT", "gw:443")]


# -- streams -------------------------------------------------------------------------------------


def test_a_stream_starts_with_its_head_and_reads_nothing_more() -> None:
    conn = Connection().feed(request(STREAM_PATH) + request("/b"), b"GARBAGE\r\n\r\n")
    assert conn.output == STREAM_HEAD + b"3\r\n" + STREAM_PREAMBLE + b"\r\n"
    assert [r.path for r in conn.app.requests] == [STREAM_PATH]
    assert conn.loop.pending() == []  # no request or idle timer on a stream
    assert conn.open
    ((stream, _),) = conn.app.streams
    assert repr(conn.protocol) == "<HttpProtocol 127.0.0.1 stream>"
    assert repr(stream) == "<H1EventStream 127.0.0.1 open buffered=0>"


def test_connection_lost_while_streaming_tells_the_listener_once() -> None:
    conn = Connection().feed(request(STREAM_PATH))
    ((stream, listener),) = conn.app.streams
    conn.protocol.connection_lost(ConnectionResetError())
    conn.protocol.connection_lost(None)
    assert listener.closed == [CloseReason.CLIENT_CLOSED]
    assert stream.closed
    stream.write_events(b"data:late\n\n")
    stream.end(CloseReason.SHUTDOWN)
    assert conn.transport.late_writes == []
    assert conn.output == STREAM_HEAD + b"3\r\n" + STREAM_PREAMBLE + b"\r\n"


def test_stream_end_writes_the_last_chunk_and_closes() -> None:
    conn = Connection().feed(request(STREAM_PATH))
    ((stream, listener),) = conn.app.streams
    stream.end(CloseReason.SHUTDOWN, b"id:AQIAAg==\n\n")
    stream.end(CloseReason.SHUTDOWN)
    assert conn.responses()[0].body == STREAM_PREAMBLE + b"id:AQIAAg==\n\n"
    assert conn.responses()[0].ended
    assert conn.transport.closed
    conn.protocol.connection_lost(None)
    assert listener.closed == [CloseReason.CLIENT_CLOSED]


def test_a_stream_sets_the_flow_marks_its_writer_asks_for() -> None:
    conn = Connection()
    assert conn.transport.limits == (256 * 1024, 64 * 1024)
    conn.feed(request(STREAM_PATH))
    ((stream, _),) = conn.app.streams
    stream.set_flow_marks(64 * 1024, 16 * 1024)
    assert conn.transport.limits == (64 * 1024, 16 * 1024)
    stream.end(CloseReason.SHUTDOWN)
    stream.set_flow_marks(1, 0)
    assert conn.transport.limits == (64 * 1024, 16 * 1024), "not once the stream ended"


def test_write_pressure_is_reported_to_the_stream() -> None:
    conn = Connection().feed(request(STREAM_PATH))
    ((stream, listener),) = conn.app.streams
    conn.protocol.pause_writing()
    assert stream.paused
    conn.transport.buffer_size = 70_000
    assert stream.buffered() == 70_000
    conn.protocol.resume_writing()
    assert (stream.paused, listener.writable) == (False, 1)
    assert conn.transport.reading  # a stream's reads are never paused: its end must arrive


def test_a_client_that_reads_no_answers_is_not_read_either() -> None:
    """Pipelined requests whose answers pile up unsent: reading waits for the client."""
    conn = Connection().feed(request("/a"))
    conn.protocol.pause_writing()
    assert not conn.transport.reading
    conn.protocol.resume_writing()
    assert conn.transport.reading


# -- application failures ----------------------------------------------------------------


def test_an_application_error_is_500_and_close(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "ssegate.http"):
        conn = Connection().feed(request(BOOM_PATH) + request("/b"))
    assert conn.output == _error("500 Internal Server Error", "internal error\n")
    assert conn.transport.closed
    assert [r.message for r in caplog.records] == ["request handling failed"]


def test_an_application_error_after_its_answer_closes_without_a_second_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conn = Connection()

    def answer_then_fail(exchange: Exchange) -> None:
        exchange.respond(200, [("Content-Type", "text/plain; charset=utf-8")], b"ok")
        raise RuntimeError("after the answer")

    conn.app.handle = answer_then_fail  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, "ssegate.http"):
        conn.feed(request("/a") + request("/b"))
    assert conn.output == OK
    assert conn.transport.closed
    assert [r.message for r in caplog.records] == ["request handling failed"]


def test_head_gets_a_500_without_body() -> None:
    conn = Connection().feed(request(BOOM_PATH, method="HEAD"))
    assert conn.output == _error("500 Internal Server Error", "internal error\n")[:-15]
    assert conn.transport.closed


def test_an_application_that_does_not_answer_gets_500_for_the_client() -> None:
    conn = Connection()
    conn.app.handle = lambda exchange: None  # type: ignore[method-assign]
    conn.feed(request("/a"))
    assert conn.output == (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 15\r\nConnection: close\r\n\r\n"
        b"internal error\n"
    )
    assert conn.transport.closed


# -- clients that pipeline and do not read (issue 15) ------------------------------------


class PausingTransport(FakeTransport):
    """Unsent bytes grow with every write until the test drains them; past `high` the
    protocol is told to pause, as a real transport does."""

    def __init__(self, high: int) -> None:
        super().__init__()
        self.high = high
        self.protocol: HttpProtocol | None = None

    def write(self, data: bytes) -> None:
        super().write(data)
        self.buffer_size += len(data)
        protocol = self.protocol
        if protocol is not None and self.buffer_size > self.high and not protocol.writing_paused:
            protocol.pause_writing()

    def drain(self) -> None:
        self.buffer_size = 0
        assert self.protocol is not None
        self.protocol.resume_writing()


def write_timers(conn: Connection) -> list[FakeTimer]:
    return [t for t in conn.loop.pending() if t.callback == conn.protocol._on_write_stalled]


def pausing_connection(high: int = 10_000) -> tuple[Connection, PausingTransport]:
    conn = Connection()
    transport = PausingTransport(high)
    conn.transport = transport
    transport.protocol = conn.protocol
    conn.protocol.connection_made(cast(asyncio.Transport, transport))
    return conn, transport


def test_pipelined_requests_wait_unparsed_while_answers_pile_up() -> None:
    conn, transport = pausing_connection()
    flood = request("/a") * 6241  # one read of the whole flood, as the kernel may hand it
    conn.feed(flood)
    answered = len(conn.app.requests)
    # Parsing stopped within one slice of requests after the mark was passed.
    assert 0 < answered < 6241
    assert transport.buffer_size < transport.high + 4096 // len(request("/a")) * 200
    assert not transport.reading
    # A client that reads its answers gets every one, in order, as it reads.
    while len(conn.app.requests) < 6241:
        before = len(conn.app.requests)
        transport.drain()
        assert len(conn.app.requests) > before
    assert conn.statuses() == [200] * 6241
    assert transport.reading


def test_a_client_that_reads_none_of_its_answers_is_dropped_after_the_write_timeout() -> None:
    conn, transport = pausing_connection()
    conn.feed(request("/a") * 6241)
    (write_timer,) = write_timers(conn)
    assert write_timer.delay == 5.0  # limits.write_timeout
    write_timer.fire()
    assert transport.aborted
    assert conn.protocol._unparsed == b""  # nothing kept for it


def test_a_slow_reader_gets_another_period_while_its_answers_move() -> None:
    conn, transport = pausing_connection()
    conn.feed(request("/a") * 6241)
    (write_timer,) = write_timers(conn)
    transport.buffer_size -= 100  # it read a little
    write_timer.fire()
    assert not transport.aborted
    (again,) = write_timers(conn)
    again.fire()  # and then nothing more
    assert transport.aborted


def test_a_close_with_unsent_answers_is_bounded_too() -> None:
    conn, transport = pausing_connection(high=10**9)
    conn.feed(request("/a", headers=(("Host", "gw"), ("Connection", "close"))))
    assert transport.closed
    assert transport.buffer_size > 0
    (write_timer,) = write_timers(conn)
    write_timer.fire()
    assert transport.aborted


def test_an_error_answer_lingers_so_the_client_reads_it_before_the_close() -> None:
    # Closing with the client's bytes unread would make the kernel send a reset, which may
    # overtake the 431: the answer goes out with a FIN, reading goes on and is discarded.
    conn = Connection(max_header_bytes=1024).feed(b"GET / HTTP/1.1\r\nX: a", b"a" * 3000)
    assert conn.output == _431(1024)
    assert conn.transport.eof_written
    assert not conn.transport.aborted
    conn.feed(b"a" * 5000 + b"\r\n\r\nGET / HTTP/1.1\r\n\r\n")  # discarded, never answered
    assert conn.output == _431(1024)
    assert conn.fire() == LINGER_SECONDS  # then dropped, if the client has not closed
    assert conn.transport.aborted
