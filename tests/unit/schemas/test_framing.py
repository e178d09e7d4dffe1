"""Wire framings: schema ids and Protobuf message indexes, against confluent-kafka's own
encoder (its `SchemaId`), and malformed prefixes."""

from __future__ import annotations

import struct

import pytest
from confluent_kafka.schema_registry.common.serde import SchemaId
from hypothesis import given, settings
from hypothesis import strategies as st

from ssegate.schemas.framing import (
    FRAMINGS,
    MAX_MESSAGE_INDEXES,
    read_message_indexes,
    read_schema_id,
    schema_id_reader,
)
from ssegate.schemas.schema import InvalidRecord


def _confluent(schema_id: int, indexes: list[int] | None = None) -> bytes:
    kind = "AVRO" if indexes is None else "PROTOBUF"
    return bytes(SchemaId(kind, schema_id, message_indexes=indexes).id_to_bytes())


@pytest.mark.parametrize("schema_id", [0, 1, 7, 65_536, 2**31 - 1, 2**32 - 1])
def test_confluent_reads_the_four_byte_id(schema_id: int) -> None:
    value = _confluent(schema_id) + b"payload"
    assert read_schema_id(value, "confluent") == (schema_id, 5)
    assert read_schema_id(value, "apicurio-4") == (schema_id, 5)
    assert value[5:] == b"payload"


@pytest.mark.parametrize("schema_id", [0, 1, 2**32, 2**63 - 1, 2**64 - 1])
def test_apicurio_reads_the_eight_byte_id(schema_id: int) -> None:
    value = b"\x00" + struct.pack(">Q", schema_id) + b"payload"
    assert read_schema_id(value, "apicurio") == (schema_id, 9)


def test_a_four_byte_id_read_as_eight_is_a_different_id() -> None:
    # Zilla #1202: the widths must match the producer's; nothing here guesses.
    value = _confluent(7) + b"\x02\x04ab"
    assert read_schema_id(value, "apicurio")[0] != 7


def test_none_has_no_prefix() -> None:
    assert read_schema_id(b"", "none") == (None, 0)
    assert read_schema_id(b"\x01\x02", "none") == (None, 0)


@pytest.mark.parametrize("framing", ["confluent", "apicurio", "apicurio-4"])
@pytest.mark.parametrize("first", [b"\x01", b"{", b"\xff"])
def test_a_wrong_magic_byte_is_rejected(framing: str, first: bytes) -> None:
    for value in (first + b"\x00" * 12, first):
        with pytest.raises(InvalidRecord) as caught:
            read_schema_id(value, framing)  # type: ignore[arg-type]
        assert caught.value.reason == "magic-byte"
        assert f"0x{first[0]:02x}" in str(caught.value)


@pytest.mark.parametrize(("framing", "width"), [("confluent", 5), ("apicurio", 9)])
def test_a_value_shorter_than_the_prefix_is_truncated(framing: str, width: int) -> None:
    for length in range(width):
        with pytest.raises(InvalidRecord) as caught:
            read_schema_id(b"\x00" * length, framing)  # type: ignore[arg-type]
        assert caught.value.reason == "truncated"


def test_the_reader_is_chosen_once() -> None:
    assert set(FRAMINGS) == {"confluent", "apicurio", "apicurio-4", "none"}
    assert schema_id_reader("confluent")(_confluent(9)) == (9, 5)
    with pytest.raises(ValueError, match="unknown framing"):
        schema_id_reader("magic")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "indexes",
    [[0], [1], [0, 0], [1, 2], [3, 0, 5], [63], [64], [1000, 1], list(range(MAX_MESSAGE_INDEXES))],
)
def test_message_indexes_read_what_confluent_writes(indexes: list[int]) -> None:
    value = _confluent(7, indexes) + b"\x08\x01"
    found, offset = read_message_indexes(value, 5)
    assert found == tuple(indexes)
    assert value[offset:] == b"\x08\x01"


def test_the_first_message_is_one_zero_byte() -> None:
    assert _confluent(7, [0])[5:] == b"\x00"
    assert read_message_indexes(b"\x00", 0) == ((0,), 1)
    # a zero count written in two bytes still means the first message
    assert read_message_indexes(b"\x80\x00rest", 0) == ((0,), 2)


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        (b"", "truncated"),  # no count
        (b"\x04\x02", "truncated"),  # two indexes announced, one given
        (b"\x80", "truncated"),  # the count's varint is cut off
        (b"\x02\xff\xff", "truncated"),
        (b"\xff\xff\xff\xff\xff\x01", "truncated"),  # a count longer than 5 bytes
        (b"\x02\xff\xff\xff\xff\xff\x01", "truncated"),  # an index longer than 5 bytes
        (b"\x01", "message-index"),  # count -1
        (b"\x02\x01", "message-index"),  # index -1
        (bytes([0xCA, 0x01]), "message-index"),  # 101 indexes, more than allowed
    ],
)
def test_bad_message_indexes(prefix: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        read_message_indexes(b"\x00\x00\x00\x00\x07" + prefix, 5)
    assert caught.value.reason == reason


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=45))
def test_any_bytes_give_indexes_or_invalid_record(value: bytes, start: int) -> None:
    try:
        indexes, offset = read_message_indexes(value, start)
    except InvalidRecord as exc:
        reason = exc.reason
        assert reason in ("truncated", "message-index")
    else:
        assert 0 < len(indexes) <= MAX_MESSAGE_INDEXES
        assert all(index >= 0 for index in indexes)
        assert start < offset <= len(value)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=12), st.sampled_from(FRAMINGS))
def test_any_bytes_give_an_id_or_invalid_record(value: bytes, framing: str) -> None:
    try:
        schema_id, start = read_schema_id(value, framing)  # type: ignore[arg-type]
    except InvalidRecord as exc:
        reason = exc.reason
        assert reason in ("truncated", "magic-byte")
    else:
        assert start <= len(value)
        assert (schema_id is None) == (framing == "none")


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**31 - 1),
    st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=1, max_size=8),
)
def test_round_trip_with_confluents_encoder(schema_id: int, indexes: list[int]) -> None:
    value = _confluent(schema_id, indexes)
    found_id, start = read_schema_id(value, "confluent")
    assert found_id == schema_id
    assert read_message_indexes(value, start) == (tuple(indexes), len(value))
