"""The WHATWG event-stream decoder: the case table in every chunking, then the edges."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from ssegate.sse.wire import COMMENT, Decoder, Event, encode_event
from tests.unit.sse.vectors import ALL_CASES, BOM, Case, decode

TRAILING = b"data:pending\nid:unapplied\ndata:x"
"""An unterminated event: appended to a row that ends with a line end, it changes nothing
(P-16)."""


def line_end_variants(wire: bytes) -> Iterator[tuple[str, bytes]]:
    """The row as written and, if it has no CR of its own, with every LF as CRLF and as CR.

    A row containing CR is about line ends itself, so it is used as written only."""
    yield "LF", wire
    if b"\r" not in wire:
        yield "CRLF", wire.replace(b"\n", b"\r\n")
        yield "CR", wire.replace(b"\n", b"\r")


def chunkings(wire: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """Whole, one byte at a time, and split in two at every position."""
    yield "whole", [wire]
    yield "bytewise", [wire[i : i + 1] for i in range(len(wire))]
    for cut in range(len(wire) + 1):
        yield f"split@{cut}", [wire[:cut], wire[cut:]]


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.name for case in ALL_CASES])
def test_case_table(case: Case) -> None:
    for ending, wire in line_end_variants(case.wire):
        for how, chunks in chunkings(wire):
            assert decode(chunks) == case.outcome, f"{ending} {how}"
        if wire.endswith((b"\n", b"\r")):
            assert decode([wire + TRAILING]) == case.outcome, f"{ending} with trailing bytes"


def test_case_names_are_unique() -> None:
    names = [case.name for case in ALL_CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("rule", [f"P-{n:02d}" for n in range(1, 19)])
def test_every_whatwg_rule_has_a_row(rule: str) -> None:
    assert any(case.name.startswith(rule + " ") for case in ALL_CASES)


# ---------------------------------------------------------------------------------------------
# Events and what each feed returns
# ---------------------------------------------------------------------------------------------


def test_event_is_a_frozen_value() -> None:
    # The decoder fills these three slots directly (wire.py); a new field would be left unset.
    assert [field.name for field in dataclasses.fields(Event)] == ["type", "data", "last_event_id"]
    (event,) = Decoder().feed(b"id:1\nevent:t\ndata:x\n\n")
    assert event == Event("t", "x", "1")
    assert hash(event) == hash(Event("t", "x", "1"))
    assert repr(event) == "Event(type='t', data='x', last_event_id='1')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "y"  # type: ignore[misc]


def test_feed_returns_the_events_this_chunk_completes() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data:a\n") == []
    assert decoder.feed(b"\ndata:b\n\ndata:c\n") == [
        Event("message", "a", ""),
        Event("message", "b", ""),
    ]
    assert decoder.feed(b"\n") == [Event("message", "c", "")]
    assert decoder.feed(b"") == []


def test_lone_cr_dispatches_without_waiting_for_the_next_byte() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data:a\r\r") == [Event("message", "a", "")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data:a\r") == []
    # Were this LF a second line end, it would be the blank line and dispatch "a" here.
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data:b\r") == []
    assert decoder.feed(b"\n\r") == [Event("message", "a\nb", "")]
    assert decoder.feed(b"\ndata:c\r\n\r\n") == [Event("message", "c", "")]


def test_cr_at_chunk_end_then_crlf_is_two_line_ends() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data:a\r") == []
    assert decoder.feed(b"\r\n") == [Event("message", "a", "")]


def test_multibyte_character_split_across_feeds() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data:\xe2") == []
    assert decoder.feed(b"\x82") == []
    assert decoder.feed(b"\xac\n\n") == [Event("message", "\u20ac", "")]


def test_bom_split_across_feeds_is_stripped() -> None:
    decoder = Decoder()
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"\xbb") == []
    assert decoder.feed(b"\xbfdata:1\n\n") == [Event("message", "1", "")]


def test_bom_in_a_later_chunk_is_content() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data:1\n\n") == [Event("message", "1", "")]
    assert decoder.feed(BOM + b"data:2\n\n") == []
    assert decoder.feed(b"data:3\n\n") == [Event("message", "3", "")]


# ---------------------------------------------------------------------------------------------
# Observable state: last_event_id, retry, comments
# ---------------------------------------------------------------------------------------------


def test_last_event_id_is_the_buffer_at_the_last_blank_line() -> None:
    decoder = Decoder()
    assert decoder.feed(b"id:1\n\nid:2\n") == []
    assert decoder.last_event_id == "1"
    assert decoder.feed(b"\n") == []
    assert decoder.last_event_id == "2"


def test_id_only_checkpoint_then_event() -> None:
    decoder = Decoder()
    assert decoder.feed(encode_event(None, id=b"105")) == []
    assert decoder.last_event_id == "105"
    assert decoder.feed(b"data:x\n\n") == [Event("message", "x", "105")]


def test_heartbeats_are_counted() -> None:
    decoder = Decoder()
    assert decoder.feed(COMMENT * 3) == []
    assert decoder.comments == 3
    assert decoder.feed(b": keep-alive\n") == []
    assert decoder.comments == 4


def test_retry_beyond_int_digit_limit_is_ignored_not_raised() -> None:
    # int() refuses strings over 4300 digits; the decoder must not pass them on (or raise).
    decoder = Decoder()
    assert decoder.feed(b"retry:7\nretry:" + b"9" * 5000 + b"\n") == []
    assert decoder.retry == 7
    assert decoder.feed(b"retry:" + b"0" * 5000 + b"12\n") == []
    assert decoder.retry == 12


def test_initial_state() -> None:
    decoder = Decoder()
    assert (decoder.last_event_id, decoder.retry, decoder.comments) == ("", None, 0)


# ---------------------------------------------------------------------------------------------
# End of stream and the next response of the same source
# ---------------------------------------------------------------------------------------------


def test_close_discards_the_pending_event_and_its_id() -> None:
    decoder = Decoder()
    assert decoder.feed(b"id:1\n\nid:7\nevent:t\ndata:x\n") == []
    assert decoder.close() == []
    assert decoder.last_event_id == "1"
    # Neither the id, type nor data of the discarded event leaks into the next response.
    assert decoder.feed(b"data:y\n\n") == [Event("message", "y", "1")]


def test_close_discards_a_partial_line() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data:par") == []
    assert decoder.close() == []
    # Kept, "par" would make this "data:partial"; alone, "tial" is an unknown field.
    assert decoder.feed(b"tial\n\ndata:b\n\n") == [Event("message", "b", "")]


def test_next_response_keeps_last_event_id_retry_and_comments() -> None:
    decoder = Decoder()
    assert decoder.feed(b":\nretry:5\nid:7\ndata:x\n\n") == [Event("message", "x", "7")]
    assert decoder.close() == []
    # The new response's own BOM is stripped; an event without id keeps the resume position.
    assert decoder.feed(BOM + b"data:y\n\n") == [Event("message", "y", "7")]
    assert (decoder.last_event_id, decoder.retry, decoder.comments) == ("7", 5, 1)


# ---------------------------------------------------------------------------------------------
# Size and speed: lines, not bytes
# ---------------------------------------------------------------------------------------------


def test_long_line_in_many_chunks() -> None:
    decoder = Decoder()
    payload = b"x" * 1_000_000
    assert decoder.feed(b"data:") == []
    for start in range(0, len(payload), 1000):
        assert decoder.feed(payload[start : start + 1000]) == []
    assert decoder.feed(b"\n\n") == [Event("message", "x" * 1_000_000, "")]


def test_many_events_across_chunk_boundaries() -> None:
    # Events split anywhere by 64 KiB chunks, as a busy stream arrives. (Decoder speed is
    # measured in benchmarks/, never asserted here.)
    count = 100_000
    stream = encode_event(b'{"k":"some value here","n":12345}', id=b"AQQABAIC") * count
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    decoder = Decoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    assert len(events) == count
    assert set(events) == {Event("message", '{"k":"some value here","n":12345}', "AQQABAIC")}
    assert decoder.last_event_id == "AQQABAIC"
