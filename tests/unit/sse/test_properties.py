"""Properties of the wire format, checked with Hypothesis.

1. encode -> decode gives back the payload, id and type (CR and CRLF arrive as LF).
2. encode_event output has no CR, and its only blank line is the one that ends it.
3. The decoder never raises, and chunking does not change what it decodes.
4. LF, CRLF and CR line ends decode alike.

SSEGATE_HYPOTHESIS_EXAMPLES sets the example count per property (default 1000, a few seconds
for the file). For style.md's 10**5 fuzz bar, lift pytest-timeout's 120 s limit:
    SSEGATE_HYPOTHESIS_EXAMPLES=100000 pytest tests/unit/sse/test_properties.py --timeout=0
"""

from __future__ import annotations

import os
from itertools import pairwise

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ssegate.sse.wire import Decoder, Event, encode_data, encode_event
from tests.unit.sse.vectors import decode

EXAMPLES = int(os.environ.get("SSEGATE_HYPOTHESIS_EXAMPLES", "1000"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that an id or event type can carry: no CR, LF or NUL (surrogates cannot be UTF-8).
field_text = st.text(st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]))
field_bytes = st.binary().map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"")
)

# Bytes weighted towards what the parser cares about, mixed with plain arbitrary bytes.
# fmt: off
TOKENS = [
    b"data:", b"data", b"id:", b"id", b"event:", b"retry:", b"retry", b":", b" ", b"\t",
    b"\r", b"\n", b"\r\n", b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\xe2\x82", b"\xac",
    b"\xc3", b"\x80", b"7", b"03", b"x", b"\xe2\x80\xa6",
]
# fmt: on
stream_bytes = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join),
    st.binary(max_size=200),
)


def normalised(payload: bytes) -> bytes:
    return payload.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def only(stream: bytes) -> tuple[list[Event], Decoder]:
    decoder = Decoder()
    events = decoder.feed(stream)
    assert decoder.close() == []
    return events, decoder


@fuzz
@given(
    payload=st.text(st.characters(exclude_categories=["Cs"])),
    id=st.none() | field_text,
    event=st.none() | field_text,
)
def test_text_round_trip(payload: str, id: str | None, event: str | None) -> None:
    stream = encode_event(
        payload.encode(),
        id=None if id is None else id.encode(),
        event=None if event is None else event.encode(),
    )
    events, decoder = only(stream)
    expected_data = payload.replace("\r\n", "\n").replace("\r", "\n")
    assert events == [Event(event or "message", expected_data, id or "")]
    assert decoder.last_event_id == (id or "")


@fuzz
@given(
    payload=st.none() | st.binary(),
    id=st.none() | field_bytes,
    event=st.none() | field_bytes,
)
def test_bytes_round_trip(payload: bytes | None, id: bytes | None, event: bytes | None) -> None:
    assume(payload is not None or id is not None)  # else refused (test_encoder)
    stream = encode_event(payload, id=id, event=event)
    assert b"\r" not in stream
    assert stream.endswith(b"\n\n")
    assert stream.find(b"\n\n") == len(stream) - 2  # no early blank line: one block
    events, decoder = only(stream)
    last_id = "" if id is None else id.decode("utf-8", "replace")
    assert decoder.last_event_id == last_id
    if payload is None:
        assert events == []
    else:
        type_ = (event or b"message").decode("utf-8", "replace")
        data = normalised(payload).decode("utf-8", "replace")
        assert events == [Event(type_, data, last_id)]


@fuzz
@given(payload=st.binary())
def test_data_lines(payload: bytes) -> None:
    lines = encode_data(payload)
    breaks = normalised(payload).count(b"\n")
    assert lines.count(b"\n") == breaks + 1
    assert lines.endswith(b"\n")
    assert b"\r" not in lines
    assert all(line.startswith(b"data:") for line in lines.split(b"\n")[:-1])


@fuzz
@given(stream=stream_bytes, data=st.data())
def test_decoder_never_raises_and_chunking_does_not_matter(
    stream: bytes, data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in pairwise(bounds)]
    assert decode(chunks) == decode([stream])


@fuzz
@given(stream=stream_bytes.map(lambda b: b.replace(b"\r", b"")))
def test_line_ends_are_interchangeable(stream: bytes) -> None:
    expected = decode([stream])
    assert decode([stream.replace(b"\n", b"\r\n")]) == expected
    assert decode([stream.replace(b"\n", b"\r")]) == expected
