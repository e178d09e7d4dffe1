"""H2Protocol against an h2 client on a fake transport and loop: one behaviour per test,
what the client's h2 sees (statuses, headers, DATA, resets, GOAWAY)."""

from __future__ import annotations

import struct

import pytest
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hpack import Encoder

from ssegate.http.h1 import MAX_BODY
from ssegate.http.h1stream import END_FLUSH_SECONDS
from ssegate.http.h2frames import FLOOD_LIMITS, PREFACE, Flood
from ssegate.http.h2stream import DATA_FRAMING, H2Stream
from ssegate.sse.stream import CloseReason
from tests.support.h2_client import frame
from tests.unit.http.h2harness import H2Session, raw_frames
from tests.unit.http.harness import (
    BOOM_PATH,
    KEEPALIVE_TIMEOUT,
    MISSING_PATH,
    REQUEST_TIMEOUT,
    STREAM_PATH,
    STREAM_PREAMBLE,
    RecordingListener,
)


def open_stream(session: H2Session) -> tuple[int, H2Stream, RecordingListener]:
    stream_id = session.get(STREAM_PATH)
    stream, listener = session.app.streams[-1]
    assert isinstance(stream, H2Stream)
    session.pump()
    return stream_id, stream, listener


# -- requests and answers ------------------------------------------------------------------


def test_a_request_gets_its_answer_on_its_stream() -> None:
    session = H2Session()
    stream_id = session.get("/ok?x=1", [("accept", "text/plain")])
    seen = session.seen[stream_id]
    assert seen.headers == {
        ":status": "200",
        "content-type": "text/plain; charset=utf-8",
        "content-length": "2",
    }
    assert (seen.data, seen.ended) == (b"ok", True)
    request = session.app.requests[0]
    assert (request.method, request.path, request.query, request.http_version) == (
        "GET",
        "/ok",
        "x=1",
        "2",
    )
    assert ("host", "gateway.test") in request.headers  # from :authority, for CORS
    assert ("accept", "text/plain") in request.headers
    assert request.scheme == "https"
    assert session.app.statuses == [200]
    assert not session.protocol.streams


def test_split_cookies_are_joined_and_head_gets_no_body() -> None:
    session = H2Session()
    stream_id = session.client.get_next_available_stream_id()
    block = session.request_headers("HEAD", "/ok", [("cookie", "a=1"), ("cookie", "b=2")])
    session.client.send_headers(stream_id, block, end_stream=True)
    session.pump()
    seen = session.seen[stream_id]
    assert (seen.status, seen.headers["content-length"], seen.data, seen.ended) == (
        200,
        "2",
        b"",
        True,
    )
    assert ("cookie", "a=1; b=2") in session.app.requests[0].headers


def test_not_found_and_a_failing_application_answer_without_harming_the_connection() -> None:
    session = H2Session()
    missing = session.get(MISSING_PATH)
    boom = session.get(BOOM_PATH)
    ok = session.get("/ok")
    assert session.seen[missing].status == 404
    assert (session.seen[boom].status, session.seen[boom].data) == (500, b"internal error\n")
    assert (session.seen[ok].status, session.seen[ok].data) == (200, b"ok")
    assert session.terminated is None


def test_a_body_is_read_up_to_the_limit_then_413() -> None:
    session = H2Session()
    stream_id = session.client.get_next_available_stream_id()
    session.client.send_headers(stream_id, session.request_headers("POST", "/ok"))
    for _ in range(MAX_BODY // 16384 + 1):
        session.client.send_data(stream_id, b"x" * 16384)
        session.pump()
    seen = session.seen[stream_id]
    assert seen.status == 413
    assert seen.data == f"request body exceeds {MAX_BODY} bytes\n".encode()
    assert seen.reset == ErrorCodes.NO_ERROR  # the upload stops there
    assert session.app.requests == []


def test_a_request_that_never_ends_gets_408() -> None:
    session = H2Session()
    stream_id = session.client.get_next_available_stream_id()
    session.client.send_headers(stream_id, session.request_headers("POST", "/ok"))
    session.pump()
    (timer,) = [t for t in session.loop.pending() if t.delay == REQUEST_TIMEOUT]
    timer.fire()
    session.pump()
    seen = session.seen[stream_id]
    assert seen.status == 408
    assert seen.data == f"request not received within {REQUEST_TIMEOUT:g}s\n".encode()


# -- event streams -------------------------------------------------------------------------


def test_an_event_stream_starts_with_its_head_and_its_events_follow() -> None:
    session = H2Session()
    stream_id, stream, _ = open_stream(session)
    stream.write(DATA_FRAMING.frame(b"data:a\n\n"))
    stream.write_events(b"data:b\n\n")
    session.pump()
    seen = session.seen[stream_id]
    assert seen.headers == {
        ":status": "200",
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
    }
    assert seen.data == STREAM_PREAMBLE + b"data:a\n\ndata:b\n\n"
    assert not seen.ended
    stream.end(CloseReason.SHUTDOWN, b":bye\n\n")
    session.pump()
    assert (seen.data[-6:], seen.ended) == (b":bye\n\n", True)


def test_streams_of_one_connection_share_one_write_per_loop_pass() -> None:
    session = H2Session()
    opened = [open_stream(session) for _ in range(10)]
    writes_before = session.transport.writes
    for _, stream, _ in opened:
        stream.write(b"data:x\n\n")
    session.loop.run_soon()
    assert session.transport.writes == writes_before + 1
    session.pump()
    assert all(session.seen[sid].data.endswith(b"data:x\n\n") for sid, _, _ in opened)


def test_a_client_reset_ends_only_that_stream() -> None:
    session = H2Session()
    first, first_stream, first_listener = open_stream(session)
    second, second_stream, second_listener = open_stream(session)
    session.client.reset_stream(first, ErrorCodes.CANCEL)
    session.pump()
    assert first_listener.closed == [CloseReason.CLIENT_CLOSED]
    assert first_stream.closed
    assert second_listener.closed == []
    second_stream.write(b"data:still\n\n")
    session.pump()
    assert session.seen[second].data.endswith(b"data:still\n\n")
    assert session.terminated is None


def test_a_closed_window_holds_the_events_and_counts_them_as_buffered() -> None:
    session = H2Session(client_settings={SettingCodes.INITIAL_WINDOW_SIZE: 4}, auto_window=False)
    stream_id, stream, listener = open_stream(session)
    stream.set_flow_marks(64, 16)
    stream.write(b"data:0123456789\n\n" * 10)
    session.pump()
    assert session.seen[stream_id].data == STREAM_PREAMBLE + b"d"  # the window held 4 bytes
    assert stream.buffered() == 170 - 1
    assert stream.paused
    session.client.increment_flow_control_window(1000, stream_id)
    session.client.increment_flow_control_window(1000)
    session.pump()
    assert session.seen[stream_id].data == STREAM_PREAMBLE + b"data:0123456789\n\n" * 10
    assert stream.buffered() == 0
    assert not stream.paused
    assert listener.writable == 1  # it had found the stream paused


def test_a_stream_that_never_gets_a_window_is_reset_after_its_end() -> None:
    session = H2Session(client_settings={SettingCodes.INITIAL_WINDOW_SIZE: 0}, auto_window=False)
    stream_id, stream, _ = open_stream(session)
    stream.end(CloseReason.SLOW_CLIENT, b"data:last\n\n")
    session.pump()
    assert not session.seen[stream_id].ended
    (timer,) = [t for t in session.loop.pending() if t.delay == END_FLUSH_SECONDS]
    timer.fire()
    session.pump()
    assert session.seen[stream_id].reset == ErrorCodes.CANCEL
    assert not session.protocol.streams


def test_socket_pressure_pauses_every_stream_and_its_drain_resumes_them() -> None:
    session = H2Session()
    streams = [open_stream(session) for _ in range(3)]
    session.transport.buffer_size = 300_000
    session.protocol.pause_writing()
    assert all(stream.paused for _, stream, _ in streams)
    assert all(stream.buffered() >= 300_000 for _, stream, _ in streams)
    session.transport.buffer_size = 0
    session.protocol.resume_writing()
    assert [listener.writable for _, _, listener in streams] == [1, 1, 1]


def test_abort_resets_the_stream_and_the_connection_goes_on() -> None:
    session = H2Session()
    stream_id, stream, _ = open_stream(session)
    stream.abort(CloseReason.ERROR)
    session.pump()
    assert session.seen[stream_id].reset == ErrorCodes.CANCEL
    assert session.get("/ok") in session.seen


def test_connection_loss_tells_every_stream() -> None:
    session = H2Session()
    listeners = [open_stream(session)[2] for _ in range(3)]
    session.protocol.connection_lost(None)
    assert [listener.closed for listener in listeners] == [[CloseReason.CLIENT_CLOSED]] * 3
    assert not session.registry.connections


# -- limits and floods ---------------------------------------------------------------------


def test_settings_advertise_the_stream_and_header_limits() -> None:
    session = H2Session(max_concurrent_streams=7, max_header_bytes=8192)
    remote = session.client.remote_settings
    assert (remote.max_concurrent_streams, remote.max_header_list_size) == (7, 8192)


def test_more_streams_than_allowed_is_a_connection_error() -> None:
    session = H2Session(max_concurrent_streams=2)
    open_stream(session)
    open_stream(session)
    stream_id = session.client.get_next_available_stream_id()
    # The h2 client refuses to exceed the limit itself: write the HEADERS frame by hand.
    block = Encoder().encode(session.request_headers("GET", STREAM_PATH))
    session.send_raw(frame(0x1, 0x5, stream_id, block))
    session.pump()
    assert session.terminated is not None
    assert session.terminated.error_code == ErrorCodes.PROTOCOL_ERROR
    assert session.app.protocol_errors == [("h2", "protocol_error")]


@pytest.mark.parametrize(
    ("flood", "make_frame"),
    [
        (Flood.RAPID_RESET, lambda i: frame(0x3, 0, 2 * i + 1, struct.pack(">I", 8))),
        (Flood.CONTROL_FLOOD, lambda i: frame(0x6, 0, 0, b"12345678")),
        (Flood.CONTROL_FLOOD, lambda i: frame(0x4, 0, 0)),
        (Flood.EMPTY_FRAMES, lambda i: frame(0x0, 0, 1)),
    ],
    ids=["rst_stream", "ping", "settings", "empty_data"],
)
def test_floods_get_goaway_enhance_your_calm(flood: Flood, make_frame: object) -> None:
    session = H2Session()
    if flood is Flood.EMPTY_FRAMES:
        stream_id = session.client.get_next_available_stream_id()
        session.client.send_headers(stream_id, session.request_headers("POST", "/ok"))
        session.pump()
    limit = FLOOD_LIMITS[flood].events
    assert callable(make_frame)
    burst = b"".join(make_frame(i) for i in range(limit + 1))
    session.send_raw(burst)
    assert session.transport.closed
    assert session.app.protocol_errors == [("h2", flood.value)]
    last = bytes(session.transport.written[-17:])
    assert last[3] == 0x7  # GOAWAY
    assert struct.unpack(">I", last[-4:])[0] == ErrorCodes.ENHANCE_YOUR_CALM


def test_the_same_frames_at_a_polite_rate_are_fine() -> None:
    session = H2Session()
    for _ in range(3):
        session.loop.now += FLOOD_LIMITS[Flood.CONTROL_FLOOD].seconds
        for _ in range(FLOOD_LIMITS[Flood.CONTROL_FLOOD].events // 2):
            session.client.ping(b"12345678")
        session.pump()
    assert session.terminated is None
    assert not session.transport.closed


def test_a_continuation_flood_is_cut_off_before_the_block_ends() -> None:
    session = H2Session(max_header_bytes=4096)
    block = Encoder().encode(session.request_headers("GET", "/ok"))
    flood = frame(0x1, 0x1, 1, block) + frame(0x9, 0, 1, b"\x40" + b"a" * 1000) * 20
    session.send_raw(flood)
    assert session.transport.closed
    assert session.app.protocol_errors == [("h2", Flood.HEADER_BLOCK.value)]
    assert session.app.requests == []


def test_an_hpack_bomb_is_refused() -> None:
    session = H2Session(max_header_bytes=4096)
    encoder = Encoder()
    headers = session.request_headers("GET", "/ok", [("x-bomb", "b" * 3000)])
    # Index the big header, then refer to it again and again: 1 byte each, 3 KB decoded.
    stream_id = session.client.get_next_available_stream_id()
    first = encoder.encode(headers)
    again = encoder.encode([(b"x-bomb", b"b" * 3000)]) * 200
    session.send_raw(frame(0x1, 0x5, stream_id, first + again))
    session.pump()
    assert session.transport.closed
    assert session.app.protocol_errors == [("h2", "protocol_error")]  # h2's decoder limit
    assert session.app.requests == []


def test_a_protocol_error_gets_goaway_and_closes() -> None:
    session = H2Session()
    session.send_raw(frame(0x8, 0, 0, struct.pack(">I", 0)))  # WINDOW_UPDATE of 0
    session.pump()
    assert session.transport.closed
    assert session.app.protocol_errors == [("h2", "protocol_error")]


# -- idle and drain ------------------------------------------------------------------------


def test_a_connection_without_streams_closes_when_idle() -> None:
    session = H2Session()
    session.get("/ok")
    (timer,) = session.loop.pending()
    assert timer.delay == KEEPALIVE_TIMEOUT
    timer.fire()
    session.pump()
    assert session.terminated is not None
    assert session.terminated.error_code == ErrorCodes.NO_ERROR
    assert session.transport.closed


def test_shutdown_sends_goaway_refuses_new_streams_and_closes_after_the_last() -> None:
    session = H2Session()
    stream_id, stream, _ = open_stream(session)
    session.protocol.shutdown()
    session.pump()
    assert session.terminated is not None
    assert session.terminated.last_stream_id == stream_id
    assert not session.transport.closed  # its stream is still open
    written = len(session.transport.written)
    stream.end(CloseReason.SHUTDOWN, b"id:x\n\n")
    session.pump()
    # The h2 client stops reading at GOAWAY (a browser does not): read the frames here.
    assert raw_frames(bytes(session.transport.written[written:])) == [
        (0x0, 0, stream_id, b"id:x\n\n"),
        (0x0, 0x1, stream_id, b""),  # END_STREAM
    ]
    assert session.transport.closed


def test_after_goaway_a_new_stream_is_refused() -> None:
    session = H2Session()
    open_stream(session)
    session.protocol.shutdown()
    block = Encoder().encode(session.request_headers("GET", "/ok"))
    written = len(session.transport.written)
    session.send_raw(frame(0x1, 0x5, 3, block))
    tail = bytes(session.transport.written[written:])
    assert tail[3] == 0x3  # RST_STREAM
    assert struct.unpack(">I", tail[9:13])[0] == ErrorCodes.REFUSED_STREAM
    assert len(session.app.requests) == 1


def test_preface_is_skipped_by_the_guard() -> None:
    # The client preface is not a frame: a guard that parsed it as one would misread all.
    session = H2Session()
    assert PREFACE.startswith(b"PRI")
    session.get("/ok")
    assert session.terminated is None


def test_a_client_goaway_lets_its_open_streams_finish_then_closes() -> None:
    session = H2Session()
    stream_id, stream, listener = open_stream(session)
    session.send_raw(frame(0x7, 0, 0, struct.pack(">II", 0, 0)) + frame(0x6, 0, 0, b"pingpong"))
    written = len(session.transport.written)
    stream.write(b"data:after\n\n")
    session.loop.run_soon()
    frames = raw_frames(bytes(session.transport.written[written:]))
    assert (0x0, 0, stream_id, b"data:after\n\n") in frames
    assert listener.closed == []
    assert not session.transport.closed
    stream.end(CloseReason.SHUTDOWN)
    session.loop.run_soon()
    assert session.transport.closed


def test_a_client_goaway_still_gets_its_ping_answered() -> None:
    session = H2Session()
    open_stream(session)
    written = len(session.transport.written)
    session.send_raw(frame(0x7, 0, 0, struct.pack(">II", 0, 0)) + frame(0x6, 0, 0, b"pingpong"))
    assert (0x6, 0x1, 0, b"pingpong") in raw_frames(bytes(session.transport.written[written:]))


def test_a_client_goaway_with_any_error_code_lets_open_streams_finish() -> None:
    # RFC 9113 §7: unknown error codes trigger nothing special; the client closes if it
    # must. The connection half-closes once its last stream has ended.
    session = H2Session()
    _, stream, listener = open_stream(session)
    session.send_raw(frame(0x7, 0, 0, struct.pack(">II", 0, 0xFF)) + frame(0x6, 0, 0, b"pingpong"))
    assert not session.transport.closed
    assert listener.closed == []
    stream.end(CloseReason.SHUTDOWN)
    session.loop.run_soon()
    assert session.transport.eof_written  # a FIN; what still arrives is discarded
    written = len(session.transport.written)
    session.send_raw(frame(0x6, 0, 0, b"pingpong"))
    assert len(session.transport.written) == written
