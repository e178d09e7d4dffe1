"""Any bytes, in any chunking, through HttpProtocol: a clean answer, never an escape.

For every input (invariants):

(a) no exception leaves `data_received`, and nothing is logged at ERROR unless the
    application itself failed;
(b) the transport holds a sequence of well-formed HTTP/1.1 responses (status line with its
    standard reason, headers, exact Content-Length body or chunks), each status in
    `ALLOWED`, each request the application saw answered exactly once; when the connection
    is still open and no stream started, exactly one timer is pending, and firing it closes
    the connection, with exactly a 408 when a request was under way;
(c) after a close, nothing more is written, and a response announcing `Connection: close`
    is the last one;
(d) the chunking does not change the answer, except that a header block already over the
    limit may be refused (431) while it arrives rather than when it ends.

SSEGATE_FUZZ_SCALE=100 runs a hundred times more examples.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ssegate.http.h1 import MAX_BODY
from ssegate.http.request import Request
from ssegate.sse.stream import CloseReason
from tests.unit.http.harness import (
    BOOM_PATH,
    KEEPALIVE_TIMEOUT,
    MISSING_PATH,
    REQUEST_TIMEOUT,
    STREAM_PATH,
    STREAM_PREAMBLE,
    Connection,
    ErrorLog,
    Response,
    request,
)

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SCALE = float(os.environ.get("SSEGATE_FUZZ_SCALE", "1"))
LIMIT = 2048  # max_header_bytes for most cases: floods reach it quickly
ALLOWED = {200, 400, 404, 405, 408, 413, 431, 500}
PROTOCOL_ERRORS = {400, 408, 413, 431}  # answered by the connection, not the application


def _examples(n: int) -> settings:
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# -- running one input ------------------------------------------------------------------------


@contextmanager
def _errors_logged() -> Iterator[ErrorLog]:
    log = ErrorLog()
    logger = logging.getLogger("ssegate.http")
    logger.addHandler(log)
    try:
        yield log
    finally:
        logger.removeHandler(log)


@dataclass
class Outcome:
    output: bytes  # everything written, including what the last timer caused
    responses: list[Response]
    requests: int  # requests the application saw


def _run(chunks: list[bytes], *, max_header_bytes: int = LIMIT) -> Outcome:
    """Feed `chunks`, check invariants (a)-(c), fire the last timer, end the connection."""
    conn = Connection(max_header_bytes=max_header_bytes)
    with _errors_logged() as log:
        conn.feed(*chunks)  # (a): an exception here fails the test
        before = conn.output
        _check(conn, after_timer=False)
        streaming = bool(conn.app.streams)
        if streaming:
            assert conn.loop.pending() == [], "a stream has no request or idle timer"
            assert conn.open
        elif conn.open:
            delay = conn.fire()  # (b): exactly one timer is pending
            assert conn.transport.is_closing()
            added = conn.output[len(before) :]
            if delay == REQUEST_TIMEOUT:
                assert added.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), added
                assert added.endswith(b"\r\n\r\nrequest not received within 10s\n")
            else:
                assert (delay, added) == (KEEPALIVE_TIMEOUT, b"")
            data = b"".join(chunks)
            if not before and data.strip(b"\r\n"):
                assert delay == REQUEST_TIMEOUT, "a request under way must get its 408"
            _check(conn, after_timer=True)
        assert not conn.transport.aborted
        conn.protocol.connection_lost(None)
        assert conn.registry.connections == set()
        for stream, listener in conn.app.streams:
            assert listener.closed == [CloseReason.CLIENT_CLOSED]
            assert stream.closed
        failures = sum(1 for r in conn.app.requests if r.path == BOOM_PATH)
        assert len(log.records) <= failures, [r.getMessage() for r in log.records]
    responses = conn.responses()
    return Outcome(conn.output, responses, len(conn.app.requests))


def _check(conn: Connection, *, after_timer: bool) -> None:
    """(b) and (c) on what has been written so far."""
    responses = conn.responses()  # raises Malformed unless well-formed
    transport = conn.transport
    assert transport.late_writes == [], "written after close"
    assert [r.status for r in responses] == conn.app.statuses
    methods = [request.method for request in conn.app.requests]
    for index, response in enumerate(responses):
        assert response.status in ALLOWED, response
        if response.closes or response.chunked:
            assert index == len(responses) - 1, f"a response after {response}"
        if response.closes:
            assert transport.closed
        _check_body(response, methods[index] if index < len(methods) else "")
    if transport.closed and not after_timer:
        assert responses, "closed without an answer"
        assert responses[-1].closes
    answered_by_app = [r for r in responses if r.status not in PROTOCOL_ERRORS]
    assert len(conn.app.requests) == len(answered_by_app)
    for seen in conn.app.requests:
        _check_request(seen)


def _check_request(request: Request) -> None:
    """What the application is handed is plain: no control bytes, no stray whitespace."""
    assert request.method.isascii()
    assert request.method.isupper() or request.method == "M-SEARCH", request.method
    assert not _CONTROL.search(request.path + request.query)
    for name, value in request.headers:
        assert _TOKEN.fullmatch(name), name
        assert name == name.lower()
        assert not _CONTROL.search(value.replace("\t", "")), value
        assert value == value.strip(" \t"), value


def _check_body(response: Response, method: str) -> None:
    status, body = response.status, response.body
    if method == "HEAD" and status not in PROTOCOL_ERRORS and not response.chunked:
        assert body == b""  # the answer to HEAD has headers only
    elif response.chunked:
        assert status == 200
        assert body == STREAM_PREAMBLE
    elif status == 200:
        assert body == b"ok"
    elif status == 400:
        assert body.startswith(b"malformed HTTP request: "), body
        assert body.endswith(b"\n")
        assert body.count(b"\n") == 1
    elif status == 404:
        assert body.startswith(b"no route for ")
    elif status == 408:
        assert body == b"request not received within 10s\n"
    elif status == 413:
        assert body == b"request body exceeds 65536 bytes\n"
    elif status == 431:
        assert body.startswith(b"request headers exceed ")
    elif status == 500:
        assert body == b"internal error\n"


def _same_answer(whole: Outcome, chunked: Outcome) -> None:
    """(d): the chunking changes nothing, but a header block over the limit may be refused
    as it arrives (431) where the whole input was refused otherwise or timed out."""
    if chunked.output == whole.output:
        return
    last = len(chunked.responses) - 1
    assert last >= 0, (whole.output, chunked.output)
    assert chunked.responses[last].status == 431, (whole.output, chunked.output)
    assert chunked.responses[:last] == whole.responses[:last]
    assert len(whole.responses) == last + 1, (whole.output, chunked.output)
    assert whole.responses[last].status in PROTOCOL_ERRORS


# -- what to feed -------------------------------------------------------------------------------


def _mostly(
    usual: bytes, others: st.SearchStrategy[bytes], weight: int = 9
) -> st.SearchStrategy[bytes]:
    """`usual` about `weight` times in ten, else one of `others`."""
    return st.one_of([st.just(usual)] * weight + [others] * (10 - weight))


EOL = _mostly(b"\r\n", st.sampled_from([b"\n", b"\r", b"\r\n ", b"\r\n\t", b"\n\r", b""]))
METHODS = _mostly(
    b"GET",
    st.one_of(
        st.sampled_from(
            [
                *(b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"PRI", b"PATCH"),
                *(b"get", b"M-SEARCH", b"GE T", b"", b"\x00GET"),
            ]
        ),
        st.binary(max_size=8),
    ),
    weight=6,
)
PATH_BYTES = b"abcxyz019-._~!$&'()*+,;=:@/%?#[] \"<>\\^`{|}\x00\x01\x7f\x80\xc3\xa9\xff"
TARGETS = st.one_of(
    st.sampled_from(
        [
            b"/",
            b"/ok",
            b"/ok?lastEventId=AQIAAg%3D%3D",
            STREAM_PATH.encode(),
            STREAM_PATH.encode() + b"?lastEventId=x",
            BOOM_PATH.encode(),
            MISSING_PATH.encode(),
            b"http://gw/stream",
            b"https://gw:7114/ok?x=1#frag",
            b"http://gw",
            b"HTTP://GW/ok",
            b"*",
            b"gw:443",
            b"/%zz",
            b"/a b",
            b"//",
        ]
    ),
    st.binary(max_size=30).map(lambda b: b"/" + b),
    st.lists(st.sampled_from(list(PATH_BYTES)), max_size=30).map(lambda b: b"/" + bytes(b)),
    st.integers(0, 6000).map(lambda n: b"/" + b"a" * n),  # huge URLs
)
VERSIONS = _mostly(
    b"HTTP/1.1",
    st.sampled_from([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"http/1.1", b""]),
)
NAMES = st.one_of(
    *[
        st.sampled_from(
            [
                b"Host",
                b"Connection",
                b"Upgrade",
                b"Content-Length",
                b"Transfer-Encoding",
                b"Last-Event-ID",
                b"Origin",
                b"HTTP2-Settings",
                b"Expect",
                b"X-A",
            ]
        )
    ]
    * 4,
    st.binary(min_size=0, max_size=12),
    st.text(max_size=8).map(lambda t: t.encode()),
)
VALUES = st.one_of(
    st.sampled_from(
        [
            b"gw",
            b"close",
            b"keep-alive",
            b"upgrade",
            b"Upgrade, HTTP2-Settings",
            b"h2c",
            b"websocket",
            b"chunked",
            b"gzip, chunked",
            b"0",
            b"5",
            b"-1",
            b"99999999999999999999",
            b"AQIAAg==",
            b"100-continue",
            b"",
            b" padded\t",
        ]
    ),
    st.binary(max_size=40),
    st.text(max_size=20).map(lambda t: t.encode()),
    st.integers(0, 5000).map(lambda n: b"v" * n),
)


SEPARATORS = _mostly(b": ", st.sampled_from([b":", b" : ", b":\t", b""]), weight=8)
REPEATS = st.sampled_from([1] * 10 + [2, 50, 1000])
BODY_KINDS = st.sampled_from(["none", "none", "length", "chunked", "huge-chunked", "raw"])
BODY_SIZES = st.sampled_from([0, 1, 10, MAX_BODY, MAX_BODY + 1, 100_000])
LENGTH_ERRORS = st.sampled_from([0, 0, 0, -1, 1])
CHUNK_SIZES = st.lists(st.integers(1, 300), max_size=5)
LAST_CHUNKS = st.sampled_from([b"0\r\n\r\n", b"0\r\n\r\n", b"0\r\nX: t\r\n\r\n", b""])
MUTATION_BYTES = st.sampled_from([0, 9, 10, 13, 32, 58, 127, 255, ord("a")])
MUTATIONS = st.sampled_from(["replace", "insert", "delete"])
MUTATION_COUNTS = st.integers(0, 4)
# Positions are drawn from fixed strategies and reduced modulo the length: strategies built
# per draw cost more than the protocol does.
POSITIONS = st.integers(0, 2**20)
CUTS = st.lists(POSITIONS, max_size=12)
ONE_IN_TEN = st.integers(0, 9).map(lambda n: n == 0)


@st.composite
def header_lines(draw: st.DrawFn) -> bytes:
    name: bytes = draw(NAMES)
    value: bytes = draw(VALUES)
    line = name + draw(SEPARATORS) + value + draw(EOL)
    return line * draw(REPEATS)  # some floods


@st.composite
def bodies(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """Headers declaring a body, and the body (right, wrong or huge)."""
    kind = draw(BODY_KINDS)
    if kind == "length":
        body = b"x" * draw(BODY_SIZES)
        declared = len(body) + draw(LENGTH_ERRORS)
        return [b"Content-Length: %d\r\n" % declared], body
    if kind in ("chunked", "huge-chunked"):
        sizes = draw(CHUNK_SIZES)
        if kind == "huge-chunked":
            sizes = sizes + [0x4000] * draw(st.integers(1, 8))
        body = b"".join(b"%x\r\n%b\r\n" % (n, b"y" * n) for n in sizes)
        ending = draw(LAST_CHUNKS)
        return [b"Transfer-Encoding: chunked\r\n"], body + ending
    if kind == "raw":
        return [], draw(st.binary(max_size=40))
    return [], b""


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    line = draw(METHODS) + b" " + draw(TARGETS) + b" " + draw(VERSIONS) + draw(EOL)
    headers = draw(st.lists(header_lines(), max_size=4))
    if draw(st.booleans()):
        headers.insert(0, b"Host: gw\r\n")
    declared, body = draw(bodies())
    return line + b"".join(headers + declared) + draw(EOL) + body


def _valid(target: str = "/ok") -> st.SearchStrategy[bytes]:
    return st.just(request(target))


PIPELINES = st.lists(
    st.one_of(requests(), _valid(), _valid(STREAM_PATH), _valid(MISSING_PATH)),
    min_size=1,
    max_size=4,
).map(b"".join)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A pipeline with a few bytes replaced, inserted or removed, or cut short."""
    data = bytearray(draw(PIPELINES))
    for _ in range(draw(MUTATION_COUNTS)):
        if not data:
            break
        at = draw(POSITIONS) % len(data)
        byte = draw(MUTATION_BYTES)
        action = draw(MUTATIONS)
        if action == "replace":
            data[at] = byte
        elif action == "insert":
            data.insert(at, byte)
        else:
            del data[at]
    if draw(st.booleans()):
        del data[draw(POSITIONS) % (len(data) + 1) :]
    return bytes(data)


INPUTS = st.one_of(st.binary(max_size=300), PIPELINES, mutated())


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    if not data:
        return [data]
    cuts = sorted({1 + cut % max(1, len(data) - 1) for cut in draw(CUTS)})
    if draw(ONE_IN_TEN) and len(data) < 400:
        cuts = list(range(1, len(data)))  # byte by byte
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# -- properties ---------------------------------------------------------------------------------


@_examples(1500)
@given(st.data())
def test_any_bytes_in_any_chunking(data: st.DataObject) -> None:
    raw = data.draw(INPUTS, label="input")
    chunks = data.draw(chunkings(raw), label="chunks")
    whole = _run([raw])
    chunked = _run(chunks)
    _same_answer(whole, chunked)
    event("statuses", str(sorted({r.status for r in whole.responses})))
    event("ends with", "a stream" if whole.responses[-1:] and whole.responses[-1].chunked else "-")


def _answer(chunks: list[bytes], *, max_header_bytes: int = LIMIT) -> tuple[list[int], Outcome]:
    outcome = _run(chunks, max_header_bytes=max_header_bytes)
    return [r.status for r in outcome.responses], outcome


TOKENS = st.text(
    alphabet="!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-",
    min_size=1,
    max_size=20,
)
FIELD_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
    min_size=0,
    max_size=60,
)  # visible ASCII and obs-text, as latin-1


@st.composite
def floods(draw: st.DrawFn) -> tuple[list[tuple[str, str]], int]:
    """Many headers (up to thousands), and a limit they may or may not pass."""
    count = draw(st.sampled_from([1, 10, 100, 1000, 3000]) | st.integers(1, 4000))
    name, value = draw(TOKENS), draw(FIELD_TEXT)
    if draw(st.booleans()):
        headers = [(f"{name}{i}", value) for i in range(count)]
    else:
        headers = [(name, value)] * count
    limit = draw(st.sampled_from([1024, 16 * 1024, 64 * 1024, 1024 * 1024]))
    return headers, limit


@_examples(150)
@given(flood=floods(), data=st.data())
def test_header_floods_are_counted_exactly(
    flood: tuple[list[tuple[str, str]], int], data: st.DataObject
) -> None:
    headers, limit = flood
    raw = request("/ok", headers=headers)
    counted = len("/ok") + sum(len(n) + len(v) + 4 for n, v in headers)
    statuses, outcome = _answer(data.draw(chunkings(raw)), max_header_bytes=limit)
    if counted > limit:
        assert statuses == [431]
        assert outcome.responses[0].body == f"request headers exceed {limit} bytes\n".encode()
        assert outcome.requests == 0
    else:
        assert statuses == [200]
    event("outcome", str(statuses))


@_examples(100)
@given(
    size=st.integers(1, 600_000),
    piece=st.sampled_from([1, 512, 4096, 65536, 262144]),
    where=st.sampled_from(["name", "value", "url"]),
)
def test_a_head_that_never_ends_is_refused_as_it_arrives(size: int, piece: int, where: str) -> None:
    """However a flood arrives, an unfinished head is refused (431) by the read that takes
    it over the limit (the URL, counted exactly) or over twice the limit (a header line,
    which httptools holds until it ends); a shorter one gets 408 when its timer fires.
    So the gateway never holds more than that plus one read of it."""
    start = {"name": b"GET / HTTP/1.1\r\nX", "value": b"GET / HTTP/1.1\r\nX: ", "url": b"GET /"}
    bound = 1024 - 1 if where == "url" else 2 * 1024  # "/" is the URL's first byte
    conn = Connection(max_header_bytes=1024).feed(start[where])
    fed = 0
    while fed < size and conn.open:
        conn.feed(b"a" * min(piece, size - fed))
        fed += min(piece, size - fed)
    if size > bound:
        assert conn.statuses() == [431]
        assert fed - piece <= bound < fed  # refused by the read that passed the bound
    else:
        assert conn.open
        conn.fire()
        assert conn.statuses() == [408]
    assert conn.app.requests == []


HOSTILE = st.binary(max_size=40) | st.lists(
    st.sampled_from(b"\x00\x01\t\n\r \x7f\x80\xff:aZ-"), max_size=12
).map(bytes)


@_examples(500)
@given(name=HOSTILE, value=HOSTILE, data=st.data())
def test_hostile_bytes_in_a_header(name: bytes, value: bytes, data: st.DataObject) -> None:
    """A header is accepted exactly when its name is a token and its value holds only
    visible bytes, obs-text, spaces and tabs; then the application sees it as sent (value
    trimmed, latin-1). NUL, DEL and other controls are always 400. (CR and LF re-frame the
    head; whatever they make of it, `_run` checks no header the application sees holds one.)
    """
    raw = b"GET /ok HTTP/1.1\r\n" + name + b": " + value + b"\r\n\r\n"
    statuses, outcome = _answer(data.draw(chunkings(raw)), max_header_bytes=16 * 1024)
    if b"\r" in name + value or b"\n" in name + value:
        event("line breaks")
        return
    field_name, _, field_value = (name + b": " + value).partition(b":")
    if field_name.lower() in (b"content-length", b"transfer-encoding"):
        event("framing header")  # its value frames the body: llhttp checks it (400)
        return
    valid_name = _TOKEN.fullmatch(field_name.decode("latin-1").lower()) is not None
    valid_value = all(b in (9, 32) or (0x21 <= b <= 0xFF and b != 0x7F) for b in field_value)
    if valid_name and valid_value:
        assert statuses == [200]
        conn = Connection().feed(raw)
        assert conn.app.requests[0].headers == [
            (field_name.decode("latin-1").lower(), field_value.strip(b" \t").decode("latin-1"))
        ]
    else:
        assert statuses == [400]
        assert outcome.requests == 0
    event("accepted" if statuses == [200] else "refused")


@_examples(200)
@given(
    sizes=st.lists(st.integers(1, 40_000), max_size=12),
    extension=st.sampled_from([b"", b";x=y", b";name"]),
    data=st.data(),
)
def test_chunked_bodies_of_any_size(
    sizes: list[int], extension: bytes, data: st.DataObject
) -> None:
    chunks = b"".join(b"%x%b\r\n%b\r\n" % (n, extension, b"z" * n) for n in sizes)
    raw = (
        b"POST /ok HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
        + request("/ok")
    )
    statuses, _ = _answer(data.draw(chunkings(raw)))
    assert statuses == ([413] if sum(sizes) > MAX_BODY else [200, 200])


@_examples(100)
@given(size=st.integers(0, 3 * MAX_BODY), data=st.data())
def test_content_length_bodies_of_any_size(size: int, data: st.DataObject) -> None:
    raw = request("/ok", method="POST", body=b"b" * size) + request("/ok")
    statuses, _ = _answer(data.draw(chunkings(raw)))
    assert statuses == ([413] if size > MAX_BODY else [200, 200])


@_examples(300)
@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "Https"]),
    host=st.sampled_from(["gw", "gw:7114", "127.0.0.1:1", "[::1]:7114", "a.example"]),
    path=st.lists(st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@%", max_size=8), max_size=4),
    query=st.none() | st.text(alphabet="abc=&%/?:@", max_size=12),
)
def test_absolute_form_targets(scheme: str, host: str, path: list[str], query: str | None) -> None:
    target = f"{scheme}://{host}" + "".join("/" + segment for segment in path)
    if query is not None:
        target += "?" + query
    conn = Connection().feed(request(target))
    assert conn.statuses() == [200]
    (seen,) = conn.app.requests
    assert seen.path == ("".join("/" + segment for segment in path) or "/")
    assert seen.query == (query or "")
