"""The compact progress (kind 2): a time bound and one exact anchor, for any partition count."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssegate.kafka.eventid import (
    MAX_ID_BYTES,
    CompactProgress,
    EventIdError,
    IdForm,
    decode_progress,
    encode_compact,
    format_event_id,
    parse_event_id,
)


def test_round_trip_with_anchor() -> None:
    text = encode_compact(1000, 1_795_920_000_123, (731, 10**12))
    assert len(text) <= 28
    parsed = parse_event_id(text)
    assert parsed.compact == CompactProgress(1000, 1_795_920_000_123, (731, 10**12))
    assert parsed.progress == {731: 10**12}
    assert parsed.etag is None


def test_round_trip_without_anchor_and_in_the_key_form() -> None:
    text = encode_compact(64, 5)
    assert parse_event_id(text).compact == CompactProgress(64, 5, None)
    assert parse_event_id(text).progress == {}
    keyed = format_event_id(text, form=IdForm.KEY, key=b"k", etag=b"e")
    assert keyed == f'["aw==","{text}/e"]'
    parsed = parse_event_id(keyed)
    assert (parsed.compact, parsed.key, parsed.etag) == (CompactProgress(64, 5, None), b"k", "e")


def test_exact_decoder_refuses_the_compact_kind() -> None:
    with pytest.raises(EventIdError, match="kind: 2, expected 1"):
        decode_progress(encode_compact(3, 1))


@pytest.mark.parametrize(
    ("hex_bytes", "message"),
    [
        ("02", "partition count: truncated varint"),
        ("02 04", "time: truncated varint"),
        ("02 04 02 08", "anchor offset: truncated varint"),
        ("02 04 02 04 02", "anchor partition: 2 of 2 partitions"),
        ("02 04 02 00 02 00", "trailing bytes: 1 after the compact progress"),
        ("02 04 03", "time: negative value -2"),
    ],
)
def test_malformed_compact(hex_bytes: str, message: str) -> None:
    import base64

    text = base64.urlsafe_b64encode(bytes.fromhex(hex_bytes)).decode()
    with pytest.raises(EventIdError) as caught:
        parse_event_id(text)
    assert str(caught.value) == message


@given(
    count=st.integers(1, 100_000),
    time_ms=st.integers(0, 2**63 - 1),
    anchor_offset=st.integers(0, 2**63 - 1),
    data=st.data(),
)
def test_any_compact_id_fits_and_round_trips(
    count: int, time_ms: int, anchor_offset: int, data: st.DataObject
) -> None:
    anchor = (data.draw(st.integers(0, count - 1)), anchor_offset)
    text = encode_compact(count, time_ms, anchor)
    assert len(text) <= 36 < MAX_ID_BYTES
    assert parse_event_id(text).compact == CompactProgress(count, time_ms, anchor)
