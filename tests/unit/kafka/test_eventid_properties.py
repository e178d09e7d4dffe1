"""Properties of the event id codec, checked with hypothesis.

Round trips for progress maps and for whole ids, the parser's one invariant (a value or
EventIdError, never anything else, for any text), and the tracker's equivalence with
`encode_progress`. The default example counts keep this file to a few seconds; set
SSEGATE_FUZZ_EXAMPLES (e.g. 100000) for a deep run of the fuzzed invariant.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssegate.kafka.eventid import (
    MAX_ID_BYTES,
    EventIdError,
    IdForm,
    ProgressTracker,
    decode_progress,
    encode_progress,
    format_event_id,
    parse_event_id,
)

FUZZ_EXAMPLES = int(os.environ.get("SSEGATE_FUZZ_EXAMPLES", "1000"))
fuzz = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
roundtrip = settings(max_examples=250, deadline=None)

partitions = st.integers(0, 2**31 - 1) | st.integers(0, 63)
offsets = st.integers(0, 2**63 - 1) | st.integers(0, 10**7)
progress_maps = st.dictionaries(partitions, offsets, max_size=50)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def leb128(raw: int) -> bytes:
    out = bytearray()
    while True:
        out.append((raw & 0x7F) | (0x80 if raw >= 0x80 else 0))
        raw >>= 7
        if not out[-1] & 0x80:
            return bytes(out)


# -- round trips -----------------------------------------------------------------------------


@roundtrip
@given(progress_maps)
def test_progress_round_trip(progress: dict[int, int]) -> None:
    text = encode_progress(progress)
    assert len(text) % 4 == 0
    assert text.rstrip("=").replace("-", "").replace("_", "").isalnum()
    decoded = decode_progress(text)
    assert decoded == progress
    assert list(decoded) == sorted(progress)  # written ascending
    assert base64.urlsafe_b64decode(text)[0] == 1


@roundtrip
@given(progress_maps)
def test_encoding_matches_an_independent_encoder(progress: dict[int, int]) -> None:
    data = b"\x01" + leb128(len(progress) << 1)
    for partition, next_offset in sorted(progress.items()):
        data += leb128(partition << 1) + leb128(next_offset << 1)
    assert encode_progress(progress) == b64(data)


def expected_id(
    progress: str, form: IdForm, etag: bytes | None, key: bytes | None
) -> tuple[str | None, bytes | None]:
    """The (etag, key) that should survive the budget: try the full id, then without the
    etag, then (KEY form) with a null key."""
    wire = None if etag is None else urllib.parse.quote(etag, safe="!#$&'()*+-./:;<=>?@^_`{|}~")
    if form is IdForm.ETAG:
        kept = wire is not None and len(progress) + 1 + len(wire) <= MAX_ID_BYTES
        return (wire if kept else None), None
    key_part = "null" if key is None else f'"{b64(key)}"'
    if wire is not None and len(f'[{key_part},"{progress}/{wire}"]') <= MAX_ID_BYTES:
        return wire, key
    if len(f'[{key_part},"{progress}"]') <= MAX_ID_BYTES:
        return None, key
    return None, None


@roundtrip
@given(
    progress_maps,
    st.sampled_from(IdForm),
    st.none() | st.binary(max_size=300),
    st.none() | st.binary(max_size=200),
)
def test_format_then_parse(
    progress: dict[int, int], form: IdForm, etag: bytes | None, key: bytes | None
) -> None:
    text = encode_progress(progress)
    event_id = format_event_id(text, form=form, etag=etag, key=key)
    assert all(0x21 <= ord(char) <= 0x7E for char in event_id)  # no CR, LF, NUL, space
    if len(text) + len('[null,""]') <= MAX_ID_BYTES:
        assert len(event_id.encode()) <= MAX_ID_BYTES
    parsed = parse_event_id(event_id)
    assert parsed.progress == progress
    assert (parsed.etag, parsed.key) == expected_id(text, form, etag, key)
    if parsed.etag is not None:
        assert urllib.parse.unquote_to_bytes(parsed.etag) == etag
    if form is IdForm.KEY:
        decoded = json.loads(event_id)
        assert decoded[0] == (None if parsed.key is None else b64(parsed.key))


# -- the parser's invariant: a value or EventIdError -----------------------------------------

b64_text = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/^ ",
    max_size=40,
)
varint_bytes = st.integers(0, 2**70).map(leb128) | st.binary(min_size=1, max_size=11)
near_valid_binary = st.builds(
    lambda kind, count, body: bytes([kind]) + count + b"".join(body),
    st.sampled_from([1, 1, 1, 0, 2, 255]),
    st.integers(0, 12).map(lambda n: leb128(n << 1)) | varint_bytes,
    st.lists(varint_bytes, max_size=14),
)
progress_texts = (
    st.text(max_size=60)
    | b64_text
    | st.binary(max_size=48).map(b64)
    | near_valid_binary.map(b64)
    | progress_maps.map(encode_progress)
)


@st.composite
def mutated(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> str:
    """A text with a few characters inserted, deleted or replaced."""
    text = draw(texts)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from('A=_-/,"[]\\n\x00é') | st.characters())
        match draw(st.sampled_from(["insert", "delete", "replace"])):
            case "insert":
                text = text[:at] + char + text[at:]
            case "delete":
                text = text[:at] + text[at + 1 :]
            case _:
                text = text[:at] + char + text[at + 1 :]
    return text


etags = st.text(max_size=12)
key_parts = st.sampled_from(["null", '""', '"a2V5"']) | b64_text.map(lambda t: f'"{t}"')
whole_ids = (
    progress_texts
    | st.builds(lambda p, e: f"{p}/{e}", progress_texts, etags)
    | st.builds(lambda k, p: f'[{k},"{p}"]', key_parts, progress_texts)
    | st.builds(lambda k, p, e: f'[{k},"{p}/{e}"]', key_parts, progress_texts, etags)
)
any_id = whole_ids | mutated(whole_ids)


@fuzz
@given(any_id)
def test_parse_event_id_raises_only_event_id_error(text: str) -> None:
    try:
        parsed = parse_event_id(text)
    except EventIdError:
        return
    for partition, next_offset in parsed.progress.items():
        assert 0 <= partition <= 2**31 - 1
        assert 0 <= next_offset <= 2**63 - 1
    assert decode_progress(encode_progress(parsed.progress)) == parsed.progress


@fuzz
@given(progress_texts | mutated(progress_texts))
def test_decode_progress_raises_only_event_id_error(text: str) -> None:
    try:
        progress = decode_progress(text)
    except EventIdError:
        return
    assert len(progress) <= 100_000
    assert decode_progress(encode_progress(progress)) == progress


# -- the tracker -------------------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, 12) | partitions, offsets),
        st.tuples(st.just("encoded"), st.just(0), st.just(0)),
        st.tuples(st.just("copy"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=250, deadline=None)
@given(progress_maps, operations)
def test_tracker_equals_encode_progress(
    start: dict[int, int], ops: list[tuple[str, int, int]]
) -> None:
    tracker = ProgressTracker(start)
    model = dict(start)
    copies: list[tuple[ProgressTracker, dict[int, int]]] = []
    for name, partition, next_offset in ops:
        if name == "set":
            tracker.set(partition, next_offset)
            model[partition] = next_offset
        elif name == "copy":
            copies.append((tracker.copy(), dict(model)))
        assert tracker.encoded() == encode_progress(model)
    assert tracker.snapshot() == model
    assert list(tracker.snapshot()) == sorted(model)
    assert all(tracker.get(p) == o for p, o in model.items())
    assert len(tracker) == len(model)
    assert decode_progress(tracker.encoded()) == model
    for copy, frozen in copies:  # later set() calls on the original did not leak
        assert copy.snapshot() == frozen
        assert copy.encoded() == encode_progress(frozen)
