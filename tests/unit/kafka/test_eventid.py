"""The event id codec: Zilla's vectors as a case table, each rejection with its message.

Vectors come from reference/zilla-sse.md §4.5, §6.3 (SseKafkaIdHelperTest) and §9. Binary
rows are written as hex and turned into text with the standard library's base64, so the
expected texts do not come from the code under test.
"""

from __future__ import annotations

import base64
import json

import pytest

from ssegate.kafka.eventid import (
    MAX_ID_BYTES,
    EventIdError,
    IdForm,
    ParsedId,
    ProgressTracker,
    decode_progress,
    encode_progress,
    format_event_id,
    parse_event_id,
)


def b64(hex_bytes: str) -> str:
    """Padded base64url of the bytes written as hex (spaces allowed)."""
    return base64.urlsafe_b64encode(bytes.fromhex(hex_bytes)).decode("ascii")


# (progress, binary form as hex, text): encoded and decoded both ways.
PROGRESS_CASES: list[tuple[dict[int, int], str, str]] = [
    ({0: 2, 1: 1}, "01 04 00 04 02 02", "AQQABAIC"),  # Zilla server.sent.messages
    ({0: 3, 1: 1}, "01 04 00 06 02 02", "AQQABgIC"),  # Zilla server.sent.messages
    ({0: 1}, "01 02 00 02", "AQIAAg=="),  # Zilla asyncapi.sse.kafka.proxy README
    ({}, "01 00", "AQA="),
    ({0: 0}, "01 02 00 00", "AQIAAA=="),
    ({0: 64}, "01 02 00 80 01", "AQIAgAE="),  # first two-byte varint
    ({5: 1_000_000}, "01 02 0a 80 89 7a", "AQIKgIl6"),
    (
        {2**31 - 1: 2**63 - 1},
        "01 02 fe ff ff ff 0f fe ff ff ff ff ff ff ff ff 01",
        "AQL-____D_7__________wE=",
    ),
]


@pytest.mark.parametrize(("progress", "hex_bytes", "text"), PROGRESS_CASES)
def test_encode_progress(progress: dict[int, int], hex_bytes: str, text: str) -> None:
    assert b64(hex_bytes) == text
    assert encode_progress(progress) == text
    assert ProgressTracker(progress).encoded() == text


@pytest.mark.parametrize(("progress", "hex_bytes", "text"), PROGRESS_CASES)
def test_decode_progress(progress: dict[int, int], hex_bytes: str, text: str) -> None:
    assert decode_progress(text) == progress
    assert parse_event_id(text) == ParsedId(progress, None, None)


def test_entries_are_written_ascending_and_read_in_any_order() -> None:
    assert encode_progress({1: 1, 0: 2}) == "AQQABAIC"
    descending = b64("01 04 02 02 00 04")
    assert list(decode_progress(descending).items()) == [(1, 1), (0, 2)]
    assert encode_progress(decode_progress(descending)) == "AQQABAIC"


def test_lenient_where_protobuf_and_java_are() -> None:
    # Non-minimal varints within their width decode (as protobuf's do).
    assert decode_progress(b64("01 02 80 00 82 00")) == {0: 1}
    # Unused low bits in the last character are ignored (as Java's decoder does).
    assert decode_progress("AQIAAh==") == {0: 1}


# (id text, what it parses to): what clients send back as Last-Event-ID.
ID_CASES: list[tuple[str, ParsedId]] = [
    ("AQQABAIC", ParsedId({0: 2, 1: 1}, None, None)),  # handshake.reconnect
    ("AQQABAIC/revision=42", ParsedId({0: 2, 1: 1}, "revision=42", None)),
    ("AQQABgIC/revision=43", ParsedId({0: 3, 1: 1}, "revision=43", None)),
    ('["a2V5","AQQABAIC/revision=42"]', ParsedId({0: 2, 1: 1}, "revision=42", b"key")),
    ('["a2V5","AQQABgIC/revision=43"]', ParsedId({0: 3, 1: 1}, "revision=43", b"key")),
    ('[null,"AQQABAIC"]', ParsedId({0: 2, 1: 1}, None, None)),  # Zilla replays all here
    ('[null,"AQQABgIC"]', ParsedId({0: 3, 1: 1}, None, None)),
    ('["a2V5","AQQABAIC"]', ParsedId({0: 2, 1: 1}, None, b"key")),  # Zilla replays all here
    ('[null,"AQIAAg==/x"]', ParsedId({0: 1}, "x", None)),
    ('["","AQIAAg=="]', ParsedId({0: 1}, None, b"")),  # empty key is not a null key
    ("AQQABAIC/", ParsedId({0: 2, 1: 1}, "", None)),  # empty etag header
    ("AQQABAIC/a/b", ParsedId({0: 2, 1: 1}, "a/b", None)),  # progress ends at the first '/'
    ("AQQABAIC/%0D%0A%25", ParsedId({0: 2, 1: 1}, "%0D%0A%25", None)),  # etag stays wire text
]


@pytest.mark.parametrize(("text", "parsed"), ID_CASES)
def test_parse_event_id(text: str, parsed: ParsedId) -> None:
    assert parse_event_id(text) == parsed


# (progress, form, etag, key, id text): what a record's id looks like on the wire.
FORMAT_CASES: list[tuple[str, IdForm, bytes | None, bytes | None, str]] = [
    ("AQQABAIC", IdForm.ETAG, None, None, "AQQABAIC"),
    ("AQQABAIC", IdForm.ETAG, b"revision=42", None, "AQQABAIC/revision=42"),
    ("AQQABAIC", IdForm.ETAG, b"revision=42", b"key", "AQQABAIC/revision=42"),  # key unused
    ("AQQABAIC", IdForm.KEY, b"revision=42", b"key", '["a2V5","AQQABAIC/revision=42"]'),
    ("AQQABgIC", IdForm.KEY, b"revision=43", b"key", '["a2V5","AQQABgIC/revision=43"]'),
    ("AQQABAIC", IdForm.KEY, None, None, '[null,"AQQABAIC"]'),
    ("AQQABAIC", IdForm.KEY, None, b"key", '["a2V5","AQQABAIC"]'),
    ("AQQABAIC", IdForm.KEY, b"e", None, '[null,"AQQABAIC/e"]'),
    ("AQIAAg==", IdForm.KEY, None, b"", '["","AQIAAg=="]'),
    ("AQIAAg==", IdForm.KEY, None, b"\xfb\xff", '["-_8=","AQIAAg=="]'),  # url alphabet
    ("AQQABAIC", IdForm.ETAG, b"", None, "AQQABAIC/"),
]


@pytest.mark.parametrize(("progress", "form", "etag", "key", "text"), FORMAT_CASES)
def test_format_event_id(
    progress: str, form: IdForm, etag: bytes | None, key: bytes | None, text: str
) -> None:
    assert format_event_id(progress, form=form, etag=etag, key=key) == text
    parsed = parse_event_id(text)
    assert parsed.progress == decode_progress(progress)
    assert parsed.etag == (None if etag is None else etag.decode("ascii"))
    assert parsed.key == (key if form is IdForm.KEY else None)


SHAPE = 'id: not ["<key>","<progress>"] or [null,"<progress>"]'

# (progress text, message): rejected by decode_progress, and by parse_event_id in both forms.
PROGRESS_REJECTIONS: list[tuple[str, str]] = [
    # SseKafkaIdHelperTest
    ("AQQA", "entries: 2 declared but only 1 bytes follow"),
    ("AQQABAIC===", "progress: length 11 is not a multiple of 4"),
    ("AQQABAI^", "progress: character '^' at 7 is not base64url"),
    ("AQQABAIC==^=", "progress: character '^' at 10 is not base64url"),
    # base64 text
    ("", "progress: empty"),
    ("AQIAAg", "progress: length 6 is not a multiple of 4"),  # padding is required
    ("AQQABAI+", "progress: character '+' at 7 is not base64url"),  # standard alphabet
    ("AQQAB AC", "progress: character ' ' at 5 is not base64url"),
    ("AQQABAé=", "progress: character 'é' at 6 is not base64url"),
    ("AQ=A", "progress: '=' before the end"),
    ("AQ==AQ==", "progress: '=' before the end"),
    ("A===", "progress: 3 '=' padding characters, at most 2"),
    ("====", "progress: 4 '=' padding characters, at most 2"),
    # kind
    (b64("03 04 00 04 02 02"), "kind: 3, expected 1"),
    (b64("00 04 00 04 02 02"), "kind: 0, expected 1"),
    # partition count
    (b64("01"), "partition count: truncated varint"),
    (b64("01 80"), "partition count: truncated varint"),
    (b64("01 03"), "partition count: negative value -2"),
    (b64("01 01"), "partition count: negative value -1"),
    (b64("01 c2 9a 0c"), "partition count: 100001, more than 100000"),
    (b64("01 fe ff ff ff 0f"), "partition count: 2147483647, more than 100000"),
    (b64("01 80 80 80 80 10"), "partition count: varint out of range"),
    (b64("01 80 80 80 80 80 00"), "partition count: varint longer than 5 bytes"),
    (b64("01 c0 9a 0c"), "entries: 100000 declared but only 0 bytes follow"),
    # entries
    (b64("01 04 00 04"), "entries: 2 declared but only 2 bytes follow"),
    (b64("01 02 80 80"), "entry 0 partition: truncated varint"),
    (b64("01 02 00 80"), "entry 0 offset: truncated varint"),
    (b64("01 04 00 02 02 80 80"), "entry 1 offset: truncated varint"),
    (b64("01 02 01 02"), "entry 0 partition: negative value -1"),
    (b64("01 02 00 03"), "entry 0 offset: negative value -2"),
    (b64("01 04 00 02 03 02"), "entry 1 partition: negative value -2"),
    (b64("01 02 80 80 80 80 10 00"), "entry 0 partition: varint out of range"),
    (b64("01 02 80 80 80 80 80 00 00"), "entry 0 partition: varint longer than 5 bytes"),
    (b64("01 02 00" + " 80" * 9 + " 02"), "entry 0 offset: varint out of range"),
    (b64("01 02 00" + " 80" * 10 + " 00"), "entry 0 offset: varint longer than 10 bytes"),
    (b64("01 04 00 02 00 04"), "entry 1 partition: duplicate 0"),
    (b64("01 06 00 02 02 02 80 00 04"), "entry 2 partition: duplicate 0"),  # non-minimal 0
    (b64("01 02 00 02 00"), "trailing bytes: 1 after 1 entries"),
    (b64("01 00 00 00"), "trailing bytes: 2 after 0 entries"),
    (b64("01 04 00 04 02 02 00 00 00"), "trailing bytes: 3 after 2 entries"),
    (b64("01 04 00 01 00 04"), "entry 1 partition: duplicate 0"),  # -1, then an offset
    (b64("01 04 00 04 00 01"), "entry 1 partition: duplicate 0"),  # an offset, then -1
]


@pytest.mark.parametrize(("text", "message"), PROGRESS_REJECTIONS)
def test_decode_progress_rejects(text: str, message: str) -> None:
    with pytest.raises(EventIdError) as caught:
        decode_progress(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "message"), PROGRESS_REJECTIONS)
def test_parse_event_id_rejects_progress_in_both_forms(text: str, message: str) -> None:
    for wrapped in (text, f"{text}/revision=42", f'[null,"{text}"]', f'["a2V5","{text}/x"]'):
        with pytest.raises(EventIdError) as caught:
            parse_event_id(wrapped)
        assert str(caught.value) == message, wrapped


def test_slash_ends_the_progress() -> None:
    with pytest.raises(EventIdError, match=r"^progress: character '/' at 7 is not base64url$"):
        decode_progress("AQQABAI/")
    with pytest.raises(EventIdError, match=r"^progress: length 7 is not a multiple of 4$"):
        parse_event_id("AQQABAI/")


# (id text, message): the KEY form's shape and key.
KEY_FORM_REJECTIONS: list[tuple[str, str]] = [
    ("[", SHAPE),
    ("[]", SHAPE),
    ('["a2V5"]', SHAPE),
    ('["a2V5","AQQABAIC"', SHAPE),
    ('["a2V5","AQQABAIC"] ', SHAPE),
    ('["a2V5","AQQABAIC"]\n', SHAPE),
    ('["a2V5", "AQQABAIC"]', SHAPE),  # we write no spaces, so none come back
    ('[ null,"AQQABAIC"]', SHAPE),
    ('[NULL,"AQQABAIC"]', SHAPE),
    ('[null,"AQQABAIC","x"]', SHAPE),
    ('["a2V5",null]', SHAPE),
    ('["a2V5",["AQQABAIC"]]', SHAPE),
    ("[null,'AQQABAIC']", SHAPE),
    ('[null,"AQQABAIC\\"]', SHAPE),  # no JSON escapes: the etag never needs one
    ('["a\\"b","AQQABAIC"]', SHAPE),
    ('{"a2V5":"AQQABAIC"}', "progress: length 19 is not a multiple of 4"),  # ETAG form
    ('{"a":"AQQABAIC"}', "progress: character '{' at 0 is not base64url"),
    ('["a2V","AQQABAIC"]', "key: length 3 is not a multiple of 4"),
    ('["a2V+","AQQABAIC"]', "key: character '+' at 3 is not base64url"),
    ('["a=V5","AQQABAIC"]', "key: '=' before the end"),
    ('["a===","AQQABAIC"]', "key: 3 '=' padding characters, at most 2"),
]


@pytest.mark.parametrize(("text", "message"), KEY_FORM_REJECTIONS)
def test_parse_event_id_rejects_key_form(text: str, message: str) -> None:
    with pytest.raises(EventIdError) as caught:
        parse_event_id(text)
    assert str(caught.value) == message


def test_event_id_error_is_a_value_error() -> None:
    assert issubclass(EventIdError, ValueError)


# -- etag sanitisation ---------------------------------------------------------------------

ETAG_CASES: list[tuple[bytes, str]] = [
    (b"revision=42", "revision=42"),
    (b"a\rb", "a%0Db"),
    (b"a\nb", "a%0Ab"),
    (b"a\r\nb", "a%0D%0Ab"),
    (b"\x00", "%00"),
    (b"caf\xc3\xa9", "caf%C3%A9"),  # non-ASCII, uppercase hex
    (b"\xff\x80\x7f", "%FF%80%7F"),  # DEL is not printable
    (b"100%", "100%25"),  # '%' itself, so the encoding is reversible
    (b'W/"abc"', "W/%22abc%22"),
    (b"a\\b", "a%5Cb"),
    (b"[1,2]", "%5B1%2C2%5D"),
    (b"a b\tc", "a%20b%09c"),
    (b"!~/:?@{}()<>'#&+;=$*^`|", "!~/:?@{}()<>'#&+;=$*^`|"),  # printable and kept
]


@pytest.mark.parametrize(("etag", "wire"), ETAG_CASES)
def test_etag_is_made_wire_safe(etag: bytes, wire: str) -> None:
    text = format_event_id("AQQABAIC", form=IdForm.ETAG, etag=etag)
    assert text == f"AQQABAIC/{wire}"
    assert parse_event_id(text).etag == wire
    in_key_form = format_event_id("AQQABAIC", form=IdForm.KEY, etag=etag, key=b"key")
    assert in_key_form == f'["a2V5","AQQABAIC/{wire}"]'
    assert json.loads(in_key_form) == ["a2V5", f"AQQABAIC/{wire}"]
    assert parse_event_id(in_key_form) == ParsedId({0: 2, 1: 1}, wire, b"key")


def test_every_byte_is_kept_or_escaped() -> None:
    for byte in range(256):
        wire = format_event_id("AQA=", form=IdForm.ETAG, etag=bytes((byte,)))[len("AQA=/") :]
        kept = 0x21 <= byte <= 0x7E and chr(byte) not in '%"\\[],'
        assert wire == (chr(byte) if kept else f"%{byte:02X}"), byte


# -- the 254-byte budget ---------------------------------------------------------------------


def test_etag_form_budget() -> None:
    fits = format_event_id("AQQABAIC", form=IdForm.ETAG, etag=b"e" * 245)
    assert len(fits) == MAX_ID_BYTES
    assert fits.endswith("/" + "e" * 245)
    assert format_event_id("AQQABAIC", form=IdForm.ETAG, etag=b"e" * 246) == "AQQABAIC"
    # The escaped length counts: 81 LFs become 243 bytes (fits), 82 become 246 (does not).
    assert len(format_event_id("AQQABAIC", form=IdForm.ETAG, etag=b"\n" * 81)) == 252
    assert format_event_id("AQQABAIC", form=IdForm.ETAG, etag=b"\n" * 82) == "AQQABAIC"
    assert format_event_id("AQQABAIC", form=IdForm.ETAG, etag=b"e" * 100_000) == "AQQABAIC"


def test_key_form_drops_the_etag_first() -> None:
    # '["a2V5","AQQABAIC/' + etag + '"]' is 20 bytes plus the etag.
    fits = format_event_id("AQQABAIC", form=IdForm.KEY, etag=b"e" * 234, key=b"key")
    assert len(fits) == MAX_ID_BYTES
    assert parse_event_id(fits) == ParsedId({0: 2, 1: 1}, "e" * 234, b"key")
    dropped = format_event_id("AQQABAIC", form=IdForm.KEY, etag=b"e" * 235, key=b"key")
    assert dropped == '["a2V5","AQQABAIC"]'


def test_key_form_then_nulls_the_key() -> None:
    # A 177-byte key is 236 base64 characters: 236 + 2 quotes + 8 + 5 = 251 bytes, fits.
    key = bytes(range(177))
    kept = format_event_id("AQQABAIC", form=IdForm.KEY, etag=b"e" * 10, key=key)
    assert len(kept) == 251
    assert parse_event_id(kept) == ParsedId({0: 2, 1: 1}, None, key)
    # 178 bytes are 240 characters: 255 bytes, too long, so the key is null.
    nulled = format_event_id("AQQABAIC", form=IdForm.KEY, etag=b"e", key=bytes(178))
    assert nulled == '[null,"AQQABAIC"]'  # the etag stays dropped, though it would now fit
    huge = format_event_id("AQQABAIC", form=IdForm.KEY, etag=b"e", key=bytes(10**6))
    assert huge == '[null,"AQQABAIC"]'


def test_progress_over_budget_is_returned_anyway() -> None:
    progress = encode_progress(dict.fromkeys(range(40), 10**12))
    assert len(progress) > MAX_ID_BYTES
    assert format_event_id(progress, form=IdForm.ETAG, etag=b"e") == progress
    assert format_event_id(progress, form=IdForm.KEY, etag=b"e", key=b"k") == f'[null,"{progress}"]'
    assert parse_event_id(progress).progress == dict.fromkeys(range(40), 10**12)


# -- encoder input and the tracker -----------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "message"),
    [
        ({-1: 0}, "partition -1 is outside 0..2147483647"),
        ({2**31: 0}, "partition 2147483648 is outside 0..2147483647"),
        ({0: -1}, "next offset -1 of partition 0 is outside 0..9223372036854775807"),
        ({0: 2**63}, "next offset 9223372036854775808 of partition 0 is outside"),
        (dict.fromkeys(range(100_001), 0), "100001 partitions, more than 100000"),
    ],
)
def test_encoder_rejects_what_the_decoder_would(progress: dict[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}") as caught:
        encode_progress(progress)
    assert not isinstance(caught.value, EventIdError)
    with pytest.raises(ValueError, match=f"^{message}"):
        ProgressTracker(progress)


def test_tracker_basics() -> None:
    tracker = ProgressTracker()
    assert tracker.encoded() == "AQA="
    assert tracker.get(0) is None
    assert len(tracker) == 0
    tracker.set(1, 1)
    tracker.set(0, 2)  # inserted before partition 1: entries stay ascending
    assert tracker.encoded() == "AQQABAIC"
    assert tracker.snapshot() == {0: 2, 1: 1}
    assert list(tracker.snapshot()) == [0, 1]
    assert tracker.get(0) == 2
    assert len(tracker) == 2
    assert repr(tracker) == "ProgressTracker({0: 2, 1: 1})"
    tracker.set(0, 3)
    assert tracker.encoded() == "AQQABgIC"
    tracker.set(0, 2)  # a seek backwards is allowed
    assert tracker.encoded() == "AQQABAIC"


def test_tracker_caches_until_a_change() -> None:
    tracker = ProgressTracker({0: 2, 1: 1})
    first = tracker.encoded()
    assert tracker.encoded() is first
    tracker.set(0, 2)  # no change
    assert tracker.encoded() is first
    tracker.set(0, 3)
    assert tracker.encoded() == "AQQABgIC"


def test_tracker_copy_is_independent() -> None:
    tracker = ProgressTracker({0: 2, 1: 1})
    other = tracker.copy()
    assert other.encoded() == tracker.encoded()
    other.set(0, 3)
    other.set(7, 1)
    assert tracker.snapshot() == {0: 2, 1: 1}
    assert tracker.encoded() == "AQQABAIC"
    assert other.snapshot() == {0: 3, 1: 1, 7: 1}


def test_tracker_snapshot_is_a_copy() -> None:
    tracker = ProgressTracker({0: 2})
    tracker.snapshot()[0] = 99
    assert tracker.get(0) == 2


@pytest.mark.parametrize(
    ("partition", "next_offset", "message"),
    [
        (-1, 0, "partition -1 is outside"),
        (2**31, 0, "partition 2147483648 is outside"),
        (0, -1, "next offset -1 of partition 0 is outside"),
        (1, 2**63, "next offset 9223372036854775808 of partition 1 is outside"),
    ],
)
def test_tracker_rejects_out_of_range(partition: int, next_offset: int, message: str) -> None:
    tracker = ProgressTracker({1: 5})
    with pytest.raises(ValueError, match=f"^{message}"):
        tracker.set(partition, next_offset)
    assert tracker.snapshot() == {1: 5}
    assert tracker.encoded() == encode_progress({1: 5})


# Zilla's ids, taken from real Zilla on the same records (issue 14): it writes -1 for a
# partition it has delivered nothing from, and lists entries in its fetch order.
ZILLA_IDS = [
    ("AQYAAQIGBAI=", {1: 3, 2: 1}, {0}),  # {p0: -1, p1: 3, p2: 1}
    ("AQYCBgABBAQ=", {1: 3, 2: 2}, {0}),  # p1, p0, p2: entries in any order
    ("AQYAAAIIBAI=", {0: 0, 1: 4, 2: 1}, set()),  # ssegate's id for the same event
    (b64("01 06 00 01 02 01 04 01"), {}, {0, 1, 2}),  # nothing delivered from any
]


@pytest.mark.parametrize(("text", "progress", "live"), ZILLA_IDS)
def test_zilla_ids_with_minus_one_are_accepted(
    text: str, progress: dict[int, int], live: set[int]
) -> None:
    parsed = parse_event_id(text)
    assert (parsed.progress, parsed.live) == (progress, live)
    assert decode_progress(text) == progress  # the -1 partitions are left out
    keyed = parse_event_id(f'["a2V5","{text}/rev7"]')
    assert (keyed.progress, keyed.live, keyed.etag, keyed.key) == (progress, live, "rev7", b"key")
