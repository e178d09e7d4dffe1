"""Encode and parse the SSE event ids that carry a reader's Kafka progress (sans-I/O).

An id tells a client where to resume: for every partition of the topic, the next offset to
read. The client hands the last id it saw back as `Last-Event-ID`, and the stream resumes
there, per partition. The format is Zilla's sse-kafka id (reference/zilla-sse.md §4.5,
§4.6), so Zilla's test vectors are ours.

Theory of operation:

1. Binary progress: `uint8 kind = 1`, `varint32 partitionCount`, then `partitionCount`
   entries of `varint32 partitionId, varint64 nextOffset`. Entries are written in ascending
   partition order and read in any order (Zilla writes its fetch order); a partition may
   appear once.
2. Varints are zig-zag then LEB128, i.e. protobuf `sint32`/`sint64`: 7 bits per byte, least
   significant group first, high bit set while more bytes follow. Every value written is
   non-negative, so zig-zag is `v << 1`. A varint32 takes at most 5 bytes, a varint64 at
   most 10; a longer one, a value beyond its width, or a negative value is rejected, with
   one exception: an entry's offset may be -1, which is how Zilla writes a partition it
   has delivered nothing from (its LIVE offset type: `AQYAAQIGBAI=` = {0: -1, 1: 3, 2: 1}).
   Such partitions are returned apart (`ParsedId.live`), not as offsets. Non-minimal
   encodings within those widths (`82 00` for 1) are accepted, as protobuf does.
3. Text: base64url (`-`, `_`) WITH `=` padding, byte for byte Java's
   `Base64.getUrlEncoder()`. `{0: 2, 1: 1}` -> `01 04 00 04 02 02` -> `AQQABAIC`.
   Padding is kept for two reasons. Zilla's parser rejects a length that is not a multiple
   of 4, so with padding our ids and Zilla's are interchangeable both ways and a client
   keeps its position across a move. And `=`, `-`, `_` and alphanumerics are all
   CORS-safelisted header bytes, so an ETAG-form id of at most 128 such bytes reconnects
   cross-origin without a preflight (reference/peers.md §5.2 C-09).
4. Text is parsed by Zilla's rules: length a multiple of 4, only `[A-Za-z0-9_-]`, `=` only
   as trailing padding and at most two of it. Unused low bits of the last character are
   ignored, as Java's decoder ignores them.
5. Two id forms (`IdForm`), chosen per route. ETAG: `<progress>` or `<progress>/<etag>`.
   KEY: `["<base64url key>","<progress>[/<etag>]"]`, or `[null,"..."]` for a null key, with
   no spaces; the key uses the padded alphabet of rule 3. The etag is the value of the
   record's Kafka header named exactly `etag`. The progress ends at the first `/`; the rest
   is the etag.
6. The etag is made wire-safe: every byte outside printable ASCII 0x21-0x7E, and `%` `"`
   `\\` `[` `]` `,`, becomes `%XX` (uppercase hex). So no CR, LF or NUL reaches the `id:`
   line (a browser ignores an id containing NUL, reference/peers.md P-12) and the KEY form
   stays a JSON array. The parser returns the etag as this wire text, not decoded.
7. Size: Zilla answers 400 to a `Last-Event-ID` over `MAX_ID_BYTES` (254) bytes, so a longer
   id would never come back. When an id would be longer, the etag is dropped first, then
   (KEY form) the key becomes `null`. The progress is never cut here; a topic with so many
   partitions that the exact progress would not fit uses the compact form (rule 10).
10. Compact form, kind 2: `uint8 kind = 2`, `varint32 partitionCount`, `varint64 timeMs`,
   then optionally one anchor `varint32 partition, varint64 nextOffset`. It says: the
   anchor partition is exactly at that offset, and on every other partition the stream has
   seen everything stamped before `timeMs`. About 20 characters for any partition count;
   the reader resolves it with Kafka's offsets-for-times (see `ssegate.kafka.position`).
8. Parsing is correct where Zilla's is not. Zilla drops the last character of the progress
   in the KEY form without an etag (zilla-sse.md §4.6 step 5) and silently replays
   everything; here `["a2V5","AQQABAIC"]` resumes at `{0: 2, 1: 1}`. Where Zilla falls back
   silently on anything malformed, `parse_event_id` raises `EventIdError` saying why, so the
   caller applies the route's policy and counts it (DESIGN.md §5 item 3). No other exception
   escapes `parse_event_id` or `decode_progress` for any `str`.
9. Cost: the fan-out computes one id per delivered record. `ProgressTracker` keeps each
   partition's entry bytes and its last text, so `set()` encodes one varint and `encoded()`
   joins and base64-encodes only after a change.

Sans-I/O: no asyncio, no clock, no logging.
"""

from __future__ import annotations

import binascii
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ssegate.errors import RequestError

__all__ = [
    "MAX_ID_BYTES",
    "MAX_PARTITIONS",
    "CompactProgress",
    "EventIdError",
    "IdForm",
    "ParsedId",
    "ProgressTracker",
    "decode_progress",
    "encode_compact",
    "encode_progress",
    "format_event_id",
    "parse_event_id",
]

MAX_ID_BYTES = 254  # Zilla rejects a Last-Event-ID longer than this with 400
"""The longest id written (rule 7); the HTTP layer rejects a longer `Last-Event-ID`."""

MAX_PARTITIONS = 100_000
"""A decoded partition count above this is absurd and rejected (no topic comes close)."""

KIND_V1 = 1
"""The first byte of every progress: Zilla's `SseKafkaEventId` kind V1."""

KIND_COMPACT = 2
"""The first byte of a compact progress (rule 10)."""

_MAX_PARTITION = 2**31 - 1  # int32, as Kafka's partition id
_MAX_OFFSET = 2**63 - 1  # int64, as Kafka's offset
_MAX_RAW32 = 2**32 - 1  # largest zig-zagged varint32
_MAX_RAW64 = 2**64 - 1  # largest zig-zagged varint64
_VARINT32_BYTES = 5
_VARINT64_BYTES = 10

_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_B64_TEXT = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?")
_KEY_FORM = re.compile(r'\[(?:null|"([^"\\]*)"),"([^"\\]*)"\]')

_SMALL_VARINTS = tuple(bytes((value,)) for value in range(0x80))
_HEADERS: dict[int, bytes] = {}  # partition count -> kind byte + count varint

_ETAG_SAFE = bytes(b for b in range(0x21, 0x7F) if b not in b'%"\\[],')
_ETAG_ESCAPES = tuple(chr(b) if b in _ETAG_SAFE else f"%{b:02X}" for b in range(256))


class EventIdError(RequestError):
    """An id that does not decode; the message says why (for logs/metrics, never shown raw
    to clients)."""


class IdForm(enum.Enum):
    """How a route writes its ids (rule 5)."""

    ETAG = "etag"  # "<progress>" or "<progress>/<etag>"
    KEY = "key"  # '["<base64url key>","<progress>[/<etag>]"]' or '[null,"…"]'


@dataclass(frozen=True, slots=True)
class ParsedId:
    """What a client sent back as `Last-Event-ID`."""

    progress: dict[int, int]
    """Partition -> next offset to read, in the order the id lists them."""
    etag: str | None
    """The etag as written on the wire (percent-encoded, rule 6), or None if there was none."""
    key: bytes | None
    """The record key, only in the KEY form; None for `null` and in the ETAG form."""
    compact: CompactProgress | None = None
    """For a compact progress (rule 10): its time bound; `progress` then holds the anchor."""
    live: frozenset[int] = frozenset()
    """Partitions the id lists at offset -1 (Zilla: nothing delivered from them yet, rule 2);
    they are not in `progress`."""


@dataclass(frozen=True, slots=True)
class CompactProgress:
    """A compact progress (rule 10): everything before `time_ms` on `partition_count`
    partitions, and the anchor partition exactly."""

    partition_count: int
    time_ms: int
    anchor: tuple[int, int] | None


# -- encoding ------------------------------------------------------------------------------


def _varint(raw: int) -> bytes:
    """LEB128 of a non-negative (already zig-zagged) value.

    Unrolled up to 4 bytes (offsets below 2**27), which halves the cost on the hot path.
    """
    if raw < 0x80:
        return _SMALL_VARINTS[raw]
    if raw < 0x4000:
        return bytes((raw & 0x7F | 0x80, raw >> 7))
    if raw < 0x20_0000:
        return bytes((raw & 0x7F | 0x80, raw >> 7 & 0x7F | 0x80, raw >> 14))
    if raw < 0x1000_0000:
        return bytes(
            (raw & 0x7F | 0x80, raw >> 7 & 0x7F | 0x80, raw >> 14 & 0x7F | 0x80, raw >> 21)
        )
    out = bytearray()
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


def _header(count: int) -> bytes:
    header = _HEADERS.get(count)
    if header is None:
        header = bytes((KIND_V1,)) + _varint(count << 1)
        if count <= 1024:  # bounded memo: one entry per partition count seen
            _HEADERS[count] = header
    return header


def _check_partition(partition: int) -> None:
    if not 0 <= partition <= _MAX_PARTITION:
        raise ValueError(f"partition {partition} is outside 0..{_MAX_PARTITION}")


def _check_offset(partition: int, next_offset: int) -> None:
    if not 0 <= next_offset <= _MAX_OFFSET:
        raise ValueError(
            f"next offset {next_offset} of partition {partition} is outside 0..{_MAX_OFFSET}"
        )


def _check_count(count: int) -> None:
    if count > MAX_PARTITIONS:
        raise ValueError(f"{count} partitions, more than {MAX_PARTITIONS}")


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).decode("ascii")


def encode_progress(progress: Mapping[int, int]) -> str:
    """The text form of `progress` (partition -> next offset to read), entries ascending.

    Raises ValueError for a partition outside 0..2**31-1, an offset outside 0..2**63-1 or
    more than `MAX_PARTITIONS` partitions: values the decoder would reject.
    """
    _check_count(len(progress))
    parts = [_header(len(progress))]
    for partition, next_offset in sorted(progress.items()):
        _check_partition(partition)
        _check_offset(partition, next_offset)
        parts.append(_varint(partition << 1) + _varint(next_offset << 1))
    return _b64encode(b"".join(parts))


def encode_compact(
    partition_count: int, time_ms: int, anchor: tuple[int, int] | None = None
) -> str:
    """The compact progress text (rule 10)."""
    _check_count(partition_count)
    if time_ms < 0 or time_ms > _MAX_OFFSET:
        raise ValueError(f"time {time_ms} outside 0..2**63-1")
    parts = [bytes((KIND_COMPACT,)), _varint(partition_count << 1), _varint(time_ms << 1)]
    if anchor is not None:
        partition, next_offset = anchor
        _check_partition(partition)
        _check_offset(partition, next_offset)
        parts += [_varint(partition << 1), _varint(next_offset << 1)]
    return _b64encode(b"".join(parts))


class ProgressTracker:
    """Incremental encoder for the hot path: a reader's position per partition, re-encoded
    only when it changed. The fan-out computes one id per delivered record, so encoding must
    be cheap: each partition's varint bytes are cached, and `encoded()` returns the cached
    base64 text until a `set()` changes something.

    Always `encoded() == encode_progress(snapshot())`.
    """

    __slots__ = ("_entries", "_offsets", "_text")

    def __init__(self, progress: Mapping[int, int] | None = None) -> None:
        self._offsets: dict[int, int] = {}  # ascending partition order
        self._entries: dict[int, bytes] = {}  # same order; varint(partition) + varint(offset)
        self._text: str | None = None
        if progress:
            _check_count(len(progress))
            for partition, next_offset in sorted(progress.items()):
                _check_partition(partition)
                _check_offset(partition, next_offset)
                self._offsets[partition] = next_offset
                self._entries[partition] = _varint(partition << 1) + _varint(next_offset << 1)

    def set(self, partition: int, next_offset: int) -> None:
        """Record that `partition` is next read at `next_offset` (record offset + 1).

        Moving backwards is allowed (a seek). Raises ValueError for values out of range.
        """
        previous = self._offsets.get(partition)
        if previous == next_offset:
            return
        _check_offset(partition, next_offset)
        if previous is None:
            _check_partition(partition)
            _check_count(len(self._offsets) + 1)
            self._add(partition, next_offset)
        else:
            self._offsets[partition] = next_offset
            self._entries[partition] = _varint(partition << 1) + _varint(next_offset << 1)
        self._text = None

    def _add(self, partition: int, next_offset: int) -> None:
        entry = _varint(partition << 1) + _varint(next_offset << 1)
        if self._offsets and partition < next(reversed(self._offsets)):
            offsets = dict(self._offsets)
            offsets[partition] = next_offset
            order = sorted(offsets)
            self._offsets = {p: offsets[p] for p in order}
            entries = self._entries
            entries[partition] = entry
            self._entries = {p: entries[p] for p in order}
        else:
            self._offsets[partition] = next_offset
            self._entries[partition] = entry

    def get(self, partition: int) -> int | None:
        """The next offset to read on `partition`, or None if it was never set."""
        return self._offsets.get(partition)

    def snapshot(self) -> dict[int, int]:
        """A copy of the position, partitions ascending."""
        return dict(self._offsets)

    def encoded(self) -> str:
        """The position as id text (`encode_progress(self.snapshot())`), cached."""
        text = self._text
        if text is None:
            body = b"".join(self._entries.values())
            text = self._text = _b64encode(_header(len(self._entries)) + body)
        return text

    def copy(self) -> ProgressTracker:
        """An independent tracker at the same position (sharing the cached text)."""
        other = ProgressTracker.__new__(ProgressTracker)
        other._offsets = dict(self._offsets)
        other._entries = dict(self._entries)
        other._text = self._text
        return other

    def __len__(self) -> int:
        return len(self._offsets)

    def __repr__(self) -> str:
        return f"ProgressTracker({self._offsets!r})"


def _wire_etag(etag: bytes) -> str:
    """Rule 6: percent-encode every byte that is not safe on the `id:` line and in JSON."""
    if not etag.translate(None, _ETAG_SAFE):  # nothing left once safe bytes are removed
        return etag.decode("ascii")
    return "".join([_ETAG_ESCAPES[b] for b in etag])


def format_event_id(
    progress: str,
    *,
    form: IdForm,
    etag: bytes | None = None,
    key: bytes | None = None,
) -> str:
    """The id text for one record.

    `progress` is `encode_progress()` / `ProgressTracker.encoded()` output (ASCII, so its
    length is its byte count). `etag` is the value of the record's Kafka header named
    exactly `etag`, or None; it is made wire-safe (rule 6). `key` is used only in the KEY
    form; None writes `null`. If the whole id would exceed `MAX_ID_BYTES`, the etag is
    dropped first, then in the KEY form the key becomes `null`; a progress longer than
    `MAX_ID_BYTES` on its own is returned anyway (rule 7). Never raises for valid input.
    """
    with_etag = progress
    # Escaping never shortens an etag, so a raw etag that cannot fit is not escaped at all.
    if etag is not None and len(progress) + 1 + len(etag) <= MAX_ID_BYTES:
        with_etag = f"{progress}/{_wire_etag(etag)}"
    if form is IdForm.ETAG:
        return with_etag if len(with_etag) <= MAX_ID_BYTES else progress
    # KEY form: '[' + key_part + ',"' + body + '"]' is len(key_part) + len(body) + 5 bytes.
    if key is None:
        key_part = "null"
    elif 4 * ((len(key) + 2) // 3) + 2 + len(progress) + 5 <= MAX_ID_BYTES:
        key_part = f'"{_b64encode(key)}"'
    else:  # too long even without the etag: the etag is dropped, then the key
        return f'[null,"{progress}"]'
    if len(key_part) + len(with_etag) + 5 <= MAX_ID_BYTES:
        return f'[{key_part},"{with_etag}"]'
    return f'[{key_part},"{progress}"]'


# -- decoding ------------------------------------------------------------------------------


def _b64_problem(text: str, subject: str) -> str:
    """Why `text` is not padded base64url (called only once the pattern did not match)."""
    if len(text) % 4:
        return f"{subject}: length {len(text)} is not a multiple of 4"
    for index, char in enumerate(text):
        if char != "=" and char not in _B64_ALPHABET:
            return f"{subject}: character {char!r} at {index} is not base64url"
    unpadded = text.rstrip("=")
    if "=" in unpadded:
        return f"{subject}: '=' before the end"
    return f"{subject}: {len(text) - len(unpadded)} '=' padding characters, at most 2"


def _b64decode(text: str, subject: str) -> bytes:
    if _B64_TEXT.fullmatch(text) is None:
        raise EventIdError(_b64_problem(text, subject))
    try:
        return binascii.a2b_base64(text.encode("ascii").translate(_FROM_URLSAFE))
    except binascii.Error as error:  # pragma: no cover - the pattern admits only valid text
        raise EventIdError(f"{subject}: {error}") from error


def _field(name: str, entry: int) -> str:
    return name if entry < 0 else f"entry {entry} {name}"


def _read_varint(
    data: bytes, pos: int, width: int, limit: int, name: str, entry: int, *, minimum: int = 0
) -> tuple[int, int]:
    """Read one zig-zag LEB128 varint of at most `width` bytes at `pos`.

    Returns (value, position after it); the value is at least `minimum` (0 or -1) or this
    raises.
    """
    raw = 0
    shift = 0
    end = len(data)
    for _ in range(width):
        if pos >= end:
            raise EventIdError(f"{_field(name, entry)}: truncated varint")
        byte = data[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            if raw > limit:
                raise EventIdError(f"{_field(name, entry)}: varint out of range")
            if raw & 1:
                value = -((raw + 1) >> 1)
                if value < minimum:
                    raise EventIdError(f"{_field(name, entry)}: negative value {value}")
                return value, pos
            return raw >> 1, pos
        shift += 7
    raise EventIdError(f"{_field(name, entry)}: varint longer than {width} bytes")


def _decode_compact(data: bytes) -> CompactProgress:
    end = len(data)
    count, pos = _read_varint(data, 1, _VARINT32_BYTES, _MAX_RAW32, "partition count", -1)
    if count > MAX_PARTITIONS:
        raise EventIdError(f"partition count: {count}, more than {MAX_PARTITIONS}")
    time_ms, pos = _read_varint(data, pos, _VARINT64_BYTES, _MAX_RAW64, "time", -1)
    anchor = None
    if pos < end:
        partition, pos = _read_varint(
            data, pos, _VARINT32_BYTES, _MAX_RAW32, "anchor partition", -1
        )
        offset, pos = _read_varint(data, pos, _VARINT64_BYTES, _MAX_RAW64, "anchor offset", -1)
        if partition >= count:
            raise EventIdError(f"anchor partition: {partition} of {count} partitions")
        anchor = (partition, offset)
    if pos != end:
        raise EventIdError(f"trailing bytes: {end - pos} after the compact progress")
    return CompactProgress(count, time_ms, anchor)


def _decode_binary(data: bytes) -> tuple[dict[int, int], frozenset[int]]:
    """Partition -> next offset, and the partitions listed at -1 (rule 2)."""
    end = len(data)
    if end == 0:
        raise EventIdError("progress: empty")
    if data[0] != KIND_V1:
        raise EventIdError(f"kind: {data[0]}, expected {KIND_V1}")
    count, pos = _read_varint(data, 1, _VARINT32_BYTES, _MAX_RAW32, "partition count", -1)
    if count > MAX_PARTITIONS:
        raise EventIdError(f"partition count: {count}, more than {MAX_PARTITIONS}")
    if end - pos < 2 * count:  # every entry takes at least two bytes
        raise EventIdError(f"entries: {count} declared but only {end - pos} bytes follow")
    progress: dict[int, int] = {}
    live: set[int] = set()
    for entry in range(count):
        partition, pos = _read_varint(data, pos, _VARINT32_BYTES, _MAX_RAW32, "partition", entry)
        next_offset, pos = _read_varint(
            data, pos, _VARINT64_BYTES, _MAX_RAW64, "offset", entry, minimum=-1
        )
        if partition in progress or partition in live:
            raise EventIdError(f"entry {entry} partition: duplicate {partition}")
        if next_offset < 0:
            live.add(partition)
        else:
            progress[partition] = next_offset
    if pos != end:
        raise EventIdError(f"trailing bytes: {end - pos} after {count} entries")
    return progress, frozenset(live)


def decode_progress(text: str) -> dict[int, int]:
    """Partition -> next offset from a progress text (no etag, no key form); partitions
    listed at -1 (Zilla's, rule 2) are left out.

    Raises EventIdError, and nothing else, for any text that is not a valid progress.
    """
    return _decode_binary(_b64decode(text, "progress"))[0]


def parse_event_id(text: str) -> ParsedId:
    """Parse what a client sends back as `Last-Event-ID`, in either form (rule 5).

    Text starting with `[` must be exactly the KEY form; anything else is the ETAG form.
    Correct where Zilla is not (rule 8): `["a2V5","AQQABAIC"]` resumes at `{0: 2, 1: 1}`.
    Raises EventIdError, and nothing else, for anything malformed.
    """
    key: bytes | None = None
    if text.startswith("["):
        match = _KEY_FORM.fullmatch(text)
        if match is None:
            raise EventIdError('id: not ["<key>","<progress>"] or [null,"<progress>"]')
        key_text, body = match.group(1, 2)
        if key_text is not None:
            key = _b64decode(key_text, "key")
    else:
        body = text
    progress_text, slash, etag = body.partition("/")
    data = _b64decode(progress_text, "progress")
    if data[:1] == bytes((KIND_COMPACT,)):
        compact = _decode_compact(data)
        anchor = dict([compact.anchor]) if compact.anchor is not None else {}
        return ParsedId(anchor, etag if slash else None, key, compact)
    progress, live = _decode_binary(data)
    return ParsedId(progress, etag if slash else None, key, live=live)
