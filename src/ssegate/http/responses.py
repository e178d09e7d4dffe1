"""HTTP/1.1 response bytes, with status lines built once at import."""

from __future__ import annotations

from http import HTTPStatus

STATUS_LINES: dict[int, bytes] = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii")
    for status in HTTPStatus
}

STREAM_HEADERS = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"X-Accel-Buffering: no\r\n"
    b"Transfer-Encoding: chunked\r\n"
)

CHUNKED_END = b"0\r\n\r\n"


def response_bytes(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    keep_alive: bool,
    head: bool = False,
) -> bytes:
    """A complete response with Content-Length; `head` omits the body."""
    parts = [STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()]
    for name, value in headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    parts.append(b"Content-Length: %d\r\n" % len(body))
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    if not head:
        parts.append(body)
    return b"".join(parts)


def stream_head(headers: list[tuple[str, str]]) -> bytes:
    """The header block of an event stream (chunked)."""
    extra = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)
    return STREAM_HEADERS + extra + b"\r\n"


class Chunked:
    """HTTP/1.1 chunked framing: one chunk per write."""

    __slots__ = ()

    def frame(self, payload: bytes) -> bytes:
        if not payload:
            return b""  # a zero-length chunk would end the response
        return b"%x\r\n%b\r\n" % (len(payload), payload)

    def __repr__(self) -> str:
        return "Chunked()"


CHUNKED = Chunked()
