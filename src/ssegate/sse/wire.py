"""The text/event-stream wire format: bytes for the gateway to write, and a parser for clients.

Sans-I/O: no asyncio, sockets, clocks or logging. The encoder functions return the bytes of
one field block; the `Decoder` is fed response-body bytes in any chunking plus an explicit
end of stream, and returns the events a browser's `EventSource` would fire.

Encoder: Zilla's byte format (zilla-sse.md §2.3): no space after the colon, field order
`id`, `event`, `data`, one `data:` line per payload line, a blank line to end the event.
Two deliberate differences from Zilla, both for payloads Zilla would corrupt:

* CR and CRLF in a payload are line breaks, as LF is (Zilla passes CR through, and a client
  reads a raw CR as a line end, so a payload could inject fields such as `id:` or `retry:`).
* A line, id or event type that begins with U+0020 gets one extra space after the colon,
  because a parser removes exactly one (WHATWG §9.2.6 "If value starts with a U+0020 SPACE
  character, remove it from value"). Every other output is byte-identical to Zilla's.

Decoder: WHATWG HTML §9.2.6 "Interpreting an event stream", rules P-01..P-18 of
peers.md §5.1.
"""

from __future__ import annotations

import codecs
import operator
from dataclasses import dataclass

__all__ = [
    "COMMENT",
    "Decoder",
    "Event",
    "encode_comment",
    "encode_data",
    "encode_event",
    "encode_retry",
]

COMMENT: bytes = b":\n\n"
"""The empty comment: Zilla's heartbeat and initial comment. Dispatches nothing."""

# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------


def encode_data(data: bytes) -> bytes:
    """The `data:` lines for a payload, each ending in LF (no final blank line).

    Zilla's format: no space after the colon. A payload is split into lines at LF, CRLF and
    lone CR (each one line break): the SSE format cannot carry a CR, and a raw CR on the wire
    would be read by clients as a line end, letting a payload inject fields. So CR/CRLF are
    delivered as LF. k line breaks -> k+1 data lines; trailing LF -> a final empty `data:`
    line; b"" -> b"data:\\n". A line beginning with a space is written `data:  <line>`, so
    the space the parser removes is not the payload's.
    """
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"\n " in data:
        data = data.replace(b"\n ", b"\n  ")
    head = b"data: " if data[:1] == b" " else b"data:"
    return head + data.replace(b"\n", b"\ndata:") + b"\n"


def _field(name: bytes, value: bytes) -> bytes:
    """`name:value\\n` for an id or event type, refusing what cannot be carried."""
    if b"\n" in value or b"\r" in value or b"\0" in value:
        field = name[:-1].decode()
        raise ValueError(f"an SSE {field} must not contain CR, LF or NUL: {value[:64]!r}")
    if value[:1] == b" ":
        return name + b" " + value + b"\n"
    return name + value + b"\n"


def encode_event(
    data: bytes | None, *, id: bytes | None = None, event: bytes | None = None
) -> bytes:
    """One complete event in Zilla's byte format and field order.

    `[id:<id>\\n][event:<event>\\n]`, then `encode_data(data)` if data is not None, then the
    blank line b"\\n". data None with an id gives b"id:<id>\\n\\n", an id-only checkpoint: it
    moves the client's Last-Event-ID without firing an event. An empty id (b"id:\\n") resets
    the client's Last-Event-ID.

    Raises ValueError if id or event contains CR, LF or NUL (callers sanitize; a browser
    ignores an id with NUL, WHATWG P-12), and if both data and id are None: such a block
    would change nothing on the client, so asking for one is a bug.
    """
    if data is None and id is None:
        raise ValueError("an SSE event needs data, an id, or both")
    parts: list[bytes] = []
    if id is not None:
        parts.append(_field(b"id:", id))
    if event is not None:
        parts.append(_field(b"event:", event))
    if data is not None:
        parts.append(encode_data(data))
    parts.append(b"\n")
    return b"".join(parts)


def encode_retry(milliseconds: int) -> bytes:
    """The block that sets the client's reconnection time: b"retry:2000\\n\\n".

    Raises ValueError if negative and TypeError if not an integer (a float would otherwise
    be truncated silently; clients ignore anything but ASCII digits, P-13).
    """
    value = operator.index(milliseconds)
    if value < 0:
        raise ValueError(f"retry must be 0 or more milliseconds, not {value}")
    return b"retry:%d\n\n" % value


def encode_comment(text: bytes = b"") -> bytes:
    """A comment block, b":" + text + b"\\n\\n"; encode_comment() == COMMENT.

    Raises ValueError if text contains CR or LF (it would end the comment early and the rest
    would be parsed as a field).
    """
    if b"\n" in text or b"\r" in text:
        raise ValueError(f"an SSE comment must not contain CR or LF: {text[:64]!r}")
    return b":" + text + b"\n\n"


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event, as a browser's MessageEvent would carry it."""

    type: str
    """The event type: "message" when there was no `event` field or it was empty."""
    data: str
    """The data buffer without its final LF."""
    last_event_id: str
    """The source's last event id at dispatch (persists across events without `id`, P-15)."""


# The decoder builds Events through the slot descriptors: a frozen dataclass's __init__ sets
# each field with object.__setattr__, which makes it about half the decoder's time per event.
# Same object, same fields (tests check that fields(Event) is exactly these three).
_new_event = object.__new__
_set_type = Event.__dict__["type"].__set__
_set_data = Event.__dict__["data"].__set__
_set_last_event_id = Event.__dict__["last_event_id"].__set__

# retry values beyond a signed 64-bit integer are ignored, like non-digits (our choice: the
# spec sets no bound; this keeps the value usable by timers and int() inside its digit limit).
_RETRY_MAX = 2**63 - 1
_RETRY_MAX_DIGITS = len(str(_RETRY_MAX))


def _retry_value(value: str) -> int | None:
    """The milliseconds a `retry` value sets, or None to ignore it (P-13): ASCII digits only,
    base ten (so "03000" is 3000), at most _RETRY_MAX."""
    if not (value.isascii() and value.isdigit()):  # isdigit() on ASCII: 0-9 only, not ""
        return None
    digits = value.lstrip("0") or "0"
    if len(digits) > _RETRY_MAX_DIGITS:  # also keeps int() inside its 4300-digit limit
        return None
    number = int(digits)
    return number if number <= _RETRY_MAX else None


class Decoder:
    """Incremental WHATWG event-stream parser (HTML §9.2.6), one response body at a time.

    feed() takes bytes in any chunking and returns the events dispatched by this chunk.
    close() signals end of stream: an unterminated event is discarded, including its id
    (P-16), and returns []. After close() the decoder is ready for the next response of the
    same source (a reconnect): last_event_id, retry and comments persist, the rest restarts.

    Attributes:
        last_event_id: the source's last event ID string, set by each dispatch, including
            an id-only block with empty data (P-15 step 1); "" until then.
        retry: the last valid `retry` value in milliseconds, or None if none was seen.
        comments: how many comment lines were seen (lets tests observe heartbeats).

    The decoder never raises on any input bytes. It keeps an unterminated line and the
    current event in memory without bound: a caller reading an untrusted stream limits the
    bytes it feeds between events.
    """

    # Theory of operation.
    #
    # 1. Bytes become text through an incremental UTF-8 decoder with U+FFFD replacement
    #    (WHATWG: "decoded using UTF-8 decode"), which holds back a multi-byte sequence split
    #    across feeds. The first character decoded from a response, whenever it arrives, is
    #    dropped if it is U+FEFF: exactly one leading BOM (P-02). UTF-16 BOMs are just two
    #    invalid bytes, hence two U+FFFD (P-03).
    # 2. Text is cut after its last CR or LF. Everything before the cut is complete lines; the
    #    remainder is an unterminated line, kept (as pieces, to stay linear) until a later
    #    chunk ends it. Each CR is a line end as soon as it is seen, so a stream using lone CR
    #    dispatches without waiting for the next byte. If a chunk ends right after a CR, the
    #    next chunk's leading LF belongs to that CR (CRLF split across chunks is one line end,
    #    P-04) and is dropped: `_after_cr`.
    # 3. Within the complete lines, CRLF and then lone CR are rewritten as LF and the text is
    #    split at LF: one pass per step in C, then a Python loop per line, never per byte.
    # 4. Each line is processed by §9.2.6 (comment, field/value split at the first colon,
    #    one leading space removed) and a blank line dispatches (§9.2.6 "Dispatch the event").
    #    The data buffer is a list of values; joining it with LF equals "append value + LF,
    #    then remove the last LF" (P-10, P-15 step 3), and an empty list is an empty buffer.

    __slots__ = (
        "_after_cr",
        "_at_start",
        "_data",
        "_id_buffer",
        "_partial",
        "_type",
        "_utf8",
        "comments",
        "last_event_id",
        "retry",
    )

    last_event_id: str
    retry: int | None
    comments: int
    _utf8: codecs.IncrementalDecoder
    _at_start: bool
    _after_cr: bool
    _partial: list[str]
    _data: list[str]
    _type: str
    _id_buffer: str

    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry = None
        self.comments = 0
        self._reset_response()

    def _reset_response(self) -> None:
        """Forget everything that belongs to one response body."""
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._at_start = True
        self._after_cr = False
        self._partial = []
        self._data = []
        self._type = ""
        # The last event ID buffer restarts as the source's last event ID (not ""), so a
        # reconnected stream whose first event has no `id` keeps the resume position, and an
        # `id` seen in a discarded, unterminated event is forgotten (P-16).
        self._id_buffer = self.last_event_id

    def close(self) -> list[Event]:
        """End of stream. §9.2.6: "Once the end of the file is reached, any pending data must
        be discarded. (If the file ends in the middle of an event, before the final empty
        line, the incomplete event is not dispatched.)" Its `id` is discarded too (P-16)."""
        self._reset_response()
        return []

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse a chunk of the response body; return the events it completed, in order."""
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if self._at_start:
            # §9.2.6: "One leading U+FEFF BYTE ORDER MARK character must be ignored if any
            # are present." (Rule 1 above.)
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return []
        if self._after_cr:
            # The LF of a CRLF whose CR ended the previous chunk (rule 2).
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []

        cut = max(text.rfind("\n"), text.rfind("\r")) + 1
        if not cut:
            self._partial.append(text)
            return []
        if cut == len(text):
            block = text
            self._after_cr = text[-1] == "\r"
        else:
            block = text[:cut]
        if self._partial:
            self._partial.append(block)
            block = "".join(self._partial)
        self._partial = [] if cut == len(text) else [text[cut:]]

        # §9.2.4 ABNF: end-of-line = ( cr lf / cr / lf ). CRLF first, so it stays one end.
        if "\r" in block:
            block = block.replace("\r\n", "\n").replace("\r", "\n")
        lines = block.split("\n")
        lines.pop()  # block ends with a line end: the last piece is always ""
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> list[Event]:
        """§9.2.6 for each complete line; state lives in locals for the loop's sake."""
        events: list[Event] = []
        events_append = events.append
        data = self._data
        type_ = self._type
        id_buffer = self._id_buffer
        last_id = self.last_event_id
        comments = self.comments
        for line in lines:
            if not line:
                # "If the line is empty (a blank line): Dispatch the event."
                # Step 1: "Set the last event ID string of the event source to the value of
                # the last event ID buffer." Happens even when no event fires (P-15).
                last_id = id_buffer
                # Step 2: an empty data buffer resets data and type and fires nothing.
                if data:
                    # Steps 3-5: drop the final LF (the join), fire, reset the buffers.
                    event = _new_event(Event)
                    _set_type(event, type_ or "message")
                    _set_data(event, data[0] if len(data) == 1 else "\n".join(data))
                    _set_last_event_id(event, id_buffer)
                    events_append(event)
                    data = []
                type_ = ""
                continue
            # "Collect the characters on the line before the first U+003A COLON character (:),
            # and let field be that string. Collect the characters on the line after the first
            # U+003A COLON character (:), and let value be that string." Without a colon,
            # partition() gives the whole line as field and "" as value, as the spec says.
            name, _, value = line.partition(":")
            if not name:
                # "If the line starts with a U+003A COLON character (:): Ignore the line."
                comments += 1
                continue
            if value and value[0] == " ":
                # "If value starts with a U+0020 SPACE character, remove it from value."
                value = value[1:]
            # "Process the field": names are compared exactly, case-sensitively (P-09).
            if name == "data":
                # "Append the field value to the data buffer, then append a single U+000A
                # LINE FEED (LF) character to the data buffer."
                data.append(value)
            elif name == "event":
                # "Set the event type buffer to the field value."
                type_ = value
            elif name == "id":
                # "If the field value does not contain U+0000 NULL, then set the last event ID
                # buffer to the field value. Otherwise, ignore the field."
                if "\0" not in value:
                    id_buffer = value
            elif name == "retry":
                # "If the field value consists of only ASCII digits, then interpret the field
                # value as an integer in base ten, and set the event stream's reconnection
                # time to that integer. Otherwise, ignore the field."
                retry = _retry_value(value)
                if retry is not None:
                    self.retry = retry
            # "Otherwise: The field is ignored." (P-14)
        self._data = data
        self._type = type_
        self._id_buffer = id_buffer
        self.comments = comments
        self.last_event_id = last_id
        return events
