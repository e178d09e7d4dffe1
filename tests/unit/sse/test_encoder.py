"""The event-stream encoder: Zilla's exact bytes, CR handling, and what it refuses."""

from __future__ import annotations

import pytest

import ssegate.sse
from ssegate.sse import wire
from ssegate.sse.wire import (
    COMMENT,
    encode_comment,
    encode_data,
    encode_event,
    encode_retry,
)
from tests.unit.sse.vectors import ENCODED, Encoded, decode


@pytest.mark.parametrize("row", ENCODED, ids=[row.name for row in ENCODED])
def test_encoded_rows(row: Encoded) -> None:
    # The decoder direction of the same rows runs in test_decoder.test_case_table.
    assert encode_event(row.data, id=row.id, event=row.event) == row.wire


@pytest.mark.parametrize(
    ("payload", "lines"),
    [
        (b"", b"data:\n"),
        (b"Hello, world", b"data:Hello, world\n"),
        (b"Hello\nworld\n", b"data:Hello\ndata:world\ndata:\n"),
        (b"\n", b"data:\ndata:\n"),
        (b"\n\n", b"data:\ndata:\ndata:\n"),
        (b"a\rb", b"data:a\ndata:b\n"),
        (b"a\r\nb", b"data:a\ndata:b\n"),
        (b"a\r", b"data:a\ndata:\n"),
        (b"\r\n", b"data:\ndata:\n"),
        (b"\r\r\n\n", b"data:\ndata:\ndata:\ndata:\n"),
        (b" ", b"data:  \n"),
        (b"\n ", b"data:\ndata:  \n"),
        (b"\r x", b"data:\ndata:  x\n"),
        (b"data:x", b"data:data:x\n"),
        (b"\xc3\x28\xff", b"data:\xc3\x28\xff\n"),
    ],
)
def test_encode_data(payload: bytes, lines: bytes) -> None:
    assert encode_data(payload) == lines


def test_comment_and_heartbeat() -> None:
    assert COMMENT == b":\n\n"
    assert encode_comment() == COMMENT
    assert encode_comment(b"keep-alive") == b":keep-alive\n\n"
    assert encode_comment(b" x\x00") == b": x\x00\n\n"
    assert decode([COMMENT, encode_comment(b"keep-alive")]) == ((), "", None, 2)


@pytest.mark.parametrize(
    ("milliseconds", "block"),
    [(2000, b"retry:2000\n\n"), (0, b"retry:0\n\n"), (2**63 - 1, b"retry:9223372036854775807\n\n")],
)
def test_encode_retry(milliseconds: int, block: bytes) -> None:
    assert encode_retry(milliseconds) == block
    assert decode([block]) == ((), "", milliseconds, 0)


def test_public_names() -> None:
    assert sorted(wire.__all__) == [
        "COMMENT",
        "Decoder",
        "Event",
        "encode_comment",
        "encode_data",
        "encode_event",
        "encode_retry",
    ]
    assert all(getattr(ssegate.sse, name) is getattr(wire, name) for name in wire.__all__)
    assert sorted(ssegate.sse.__all__) == sorted(wire.__all__)


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [b"1\n2", b"1\r", b"\r\n", b"\n", b"\x00", b"a\x00b"])
def test_id_that_cannot_be_carried(bad: bytes) -> None:
    with pytest.raises(ValueError, match=r"^an SSE id must not contain CR, LF or NUL: b'"):
        encode_event(b"x", id=bad)
    with pytest.raises(ValueError, match=r"^an SSE id must not contain CR, LF or NUL: b'"):
        encode_event(None, id=bad)


@pytest.mark.parametrize("bad", [b"a\nb", b"\r", b"\x00x"])
def test_event_type_that_cannot_be_carried(bad: bytes) -> None:
    with pytest.raises(ValueError, match=r"^an SSE event must not contain CR, LF or NUL: b'"):
        encode_event(b"x", event=bad)


def test_long_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(ValueError, match=r"NUL: b'x{64}'$"):
        encode_event(b"x", id=b"x" * 100 + b"\n")


def test_event_without_data_or_id() -> None:
    with pytest.raises(ValueError, match=r"^an SSE event needs data, an id, or both$"):
        encode_event(None)
    with pytest.raises(ValueError, match=r"^an SSE event needs data, an id, or both$"):
        encode_event(None, event=b"x")


@pytest.mark.parametrize("bad", [b"a\nb", b"\r", b"x\r\n"])
def test_comment_that_cannot_be_carried(bad: bytes) -> None:
    with pytest.raises(ValueError, match=r"^an SSE comment must not contain CR or LF: b'"):
        encode_comment(bad)


def test_retry_refusals() -> None:
    with pytest.raises(ValueError, match=r"^retry must be 0 or more milliseconds, not -1$"):
        encode_retry(-1)
    with pytest.raises(TypeError):
        encode_retry(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_retry("2000")  # type: ignore[arg-type]
