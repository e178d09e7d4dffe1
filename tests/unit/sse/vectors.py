"""The SSE case tables (h11's SIMPLE_CASES idea), shared by the encoder and decoder tests.

`ENCODED`: Zilla's exact wire vectors (zilla-sse.md §2.3, §6.1, §9) and ssegate's own
encoder rows, each with the call that makes the bytes and what a WHATWG parser dispatches
from them. The encoder tests check call -> bytes; the decoder tests check bytes -> events.

`DECODED`: parser-only rows, one or more per WHATWG rule P-01..P-18 (peers.md §5.1), named
after the rule and the web-platform-tests `eventsource/` file they follow, plus Zilla's
client-side scenarios (§6.1 bom/*, end.of.line/*, comment/*, custom/*, retry/* ...).

Expected events are (type, data, last_event_id) tuples, in dispatch order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ssegate.sse.wire import Decoder

EventTuple = tuple[str, str, str]
Outcome = tuple[tuple[EventTuple, ...], str, int | None, int]
"""What a stream decodes to: events, then the decoder's last_event_id, retry, comments."""

BOM = b"\xef\xbb\xbf"
HELLO = ("message", "Hello, world", "")
CHALLENGE = b'{"method":"POST","headers":{"content-type":"application/x-challenge-response"}}'


@dataclass(frozen=True)
class Case:
    """A parser row: the bytes of a whole response body and what it decodes to."""

    name: str
    wire: bytes
    events: tuple[EventTuple, ...]
    last_event_id: str = ""
    retry: int | None = None
    comments: int = 0

    @property
    def outcome(self) -> Outcome:
        return (self.events, self.last_event_id, self.retry, self.comments)


@dataclass(frozen=True)
class Encoded:
    """An encoder row: encode_event(data, id=id, event=event) == wire, which decodes back."""

    name: str
    data: bytes | None
    wire: bytes
    events: tuple[EventTuple, ...]
    id: bytes | None = None
    event: bytes | None = None
    last_event_id: str = ""

    def as_case(self) -> Case:
        return Case(self.name, self.wire, self.events, self.last_event_id)


def decode(chunks: Iterable[bytes]) -> Outcome:
    """Feed the chunks to a fresh Decoder, close it, and report everything observable."""
    decoder = Decoder()
    events = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    assert decoder.close() == []
    return (
        tuple((e.type, e.data, e.last_event_id) for e in events),
        decoder.last_event_id,
        decoder.retry,
        decoder.comments,
    )


ENCODED: list[Encoded] = [
    # Zilla's vectors, byte for byte (zilla-sse.md §9 "Quick test vectors" and §6.1).
    Encoded(
        "zilla data/multi.line",
        b"Hello\nworld\n",
        b"data:Hello\ndata:world\ndata:\n\n",
        (("message", "Hello\nworld\n", ""),),
    ),
    Encoded(
        "zilla reconnect/request.header.last.event.id.and.data",
        b"Hello, world",
        b"id:105\ndata:Hello, world\n\n",
        (("message", "Hello, world", "105"),),
        id=b"105",
        last_event_id="105",
    ),
    Encoded(
        "zilla type/non.empty",
        b"Hello, world",
        b"event:one\ndata:Hello, world\n\n",
        (("one", "Hello, world", ""),),
        event=b"one",
    ),
    Encoded(
        "zilla reconnect/last.event.id.end (id-only checkpoint)",
        None,
        b"id:105\n\n",
        (),
        id=b"105",
        last_event_id="105",
    ),
    Encoded("zilla data/empty", b"", b"data:\n\n", (("message", "", ""),)),
    Encoded("zilla data/non.empty", b"Hello, world", b"data:Hello, world\n\n", (HELLO,)),
    Encoded(
        "zilla type/empty",
        b"Hello, world",
        b"event:\ndata:Hello, world\n\n",
        (HELLO,),
        event=b"",
    ),
    Encoded(
        "zilla id/empty",
        b"Hello, world",
        b"id:\ndata:Hello, world\n\n",
        (HELLO,),
        id=b"",
    ),
    Encoded(
        "zilla order id, event, data",
        b"Hello, world",
        b"id:105\nevent:one\ndata:Hello, world\n\n",
        (("one", "Hello, world", "105"),),
        id=b"105",
        event=b"one",
        last_event_id="105",
    ),
    Encoded(
        "zilla challenge/respond.to.challenge",
        CHALLENGE,
        b"event:challenge\ndata:" + CHALLENGE + b"\n\n",
        (("challenge", CHALLENGE.decode(), ""),),
        event=b"challenge",
    ),
    Encoded(
        "zilla sse-kafka tombstone",
        b"a2V5",
        b"id:AQQABAIC\nevent:delete\ndata:a2V5\n\n",
        (("delete", "a2V5", "AQQABAIC"),),
        id=b"AQQABAIC",
        event=b"delete",
        last_event_id="AQQABAIC",
    ),
    Encoded(
        "zilla data/fragmented.10k",
        b"A" * 10240,
        b"data:" + b"A" * 10240 + b"\n\n",
        (("message", "A" * 10240, ""),),
    ),
    # ssegate: CR and CRLF are line breaks too (Zilla passes CR through, which a client reads
    # as a line end: field injection).
    Encoded("ssegate lone CR", b"a\rb", b"data:a\ndata:b\n\n", (("message", "a\nb", ""),)),
    Encoded("ssegate CRLF", b"a\r\nb", b"data:a\ndata:b\n\n", (("message", "a\nb", ""),)),
    Encoded("ssegate trailing CR", b"a\r", b"data:a\ndata:\n\n", (("message", "a\n", ""),)),
    Encoded(
        "ssegate CR then CRLF is two breaks",
        b"a\r\r\nb",
        b"data:a\ndata:\ndata:b\n\n",
        (("message", "a\n\nb", ""),),
    ),
    Encoded(
        "ssegate LF then CR is two breaks",
        b"a\n\rb",
        b"data:a\ndata:\ndata:b\n\n",
        (("message", "a\n\nb", ""),),
    ),
    Encoded(
        "ssegate payload cannot inject fields",
        b"x\r\nid:evil\rretry:1\r\r",
        b"data:x\ndata:id:evil\ndata:retry:1\ndata:\ndata:\n\n",
        (("message", "x\nid:evil\nretry:1\n\n", ""),),
    ),
    # ssegate: a value starting with a space gets a second one, as the parser removes one.
    Encoded(
        "ssegate leading space in data lines",
        b" a\nb\n  c",
        b"data:  a\ndata:b\ndata:   c\n\n",
        (("message", " a\nb\n  c", ""),),
    ),
    Encoded(
        "ssegate leading space in id and event",
        b"x",
        b"id:  7\nevent:  t\ndata:x\n\n",
        ((" t", "x", " 7"),),
        id=b" 7",
        event=b" t",
        last_event_id=" 7",
    ),
    Encoded(
        "ssegate inner spaces and colons verbatim",
        b"a: b :c",
        b"id:1 2\nevent:a b\ndata:a: b :c\n\n",
        (("a b", "a: b :c", "1 2"),),
        id=b"1 2",
        event=b"a b",
        last_event_id="1 2",
    ),
    Encoded("ssegate NUL in data", b"\x00", b"data:\x00\n\n", (("message", "\x00", ""),)),
    Encoded(
        "ssegate checkpoint with event line",
        None,
        b"id:9\nevent:x\n\n",
        (),
        id=b"9",
        event=b"x",
        last_event_id="9",
    ),
]


DECODED: list[Case] = [
    # P-01: always UTF-8, invalid bytes -> U+FFFD.
    Case("P-01 format-utf-8", b"data:ok\xe2\x80\xa6\n\n", (("message", "ok\u2026", ""),)),
    Case("P-01 invalid byte", b"data:\xc3\x28\n\n", (("message", "\ufffd(", ""),)),
    Case("P-01 truncated sequence", b"data:\xe2\x82\n\n", (("message", "\ufffd", ""),)),
    Case(
        "P-01 four-byte character",
        b"data:\xf0\x9f\x98\x80\n\n",
        (("message", "\U0001f600", ""),),
    ),
    # P-02: exactly one leading BOM is stripped; any other is content.
    Case(
        "P-02 format-bom",
        BOM + b"data:1\n\n" + BOM + b"data:2\n\ndata:3\n\n",
        (("message", "1", ""), ("message", "3", "")),
    ),
    Case(
        "P-02 format-bom-2",
        BOM + BOM + b"data:1\n\ndata:2\n\ndata:3\n\n",
        (("message", "2", ""), ("message", "3", "")),
    ),
    Case("P-02 BOM in a value is content", b"data:" + BOM + b"\n\n", (("message", "\ufeff", ""),)),
    # P-03: UTF-16 BOMs are two invalid bytes, so the first field name is unknown.
    Case("P-03 format-bom-utf-16 LE", b"\xff\xfedata:1\n\ndata:2\n\n", (("message", "2", ""),)),
    Case("P-03 format-bom-utf-16 BE", b"\xfe\xffdata:1\n\ndata:2\n\n", (("message", "2", ""),)),
    # P-04: CRLF, LF and CR each end a line (rows with CR are not converted by the helper).
    Case(
        "P-04 format-newlines",
        b"data:test\r\ndata\ndata:test\r\n\r",
        (("message", "test\n\ntest", ""),),
    ),
    Case(
        "P-04 LF then CR is two line ends",
        b"data:a\n\rdata:b\r\n\r\n",
        (("message", "a", ""), ("message", "b", "")),
    ),
    Case(
        "P-04 CR then CRLF is two line ends",
        b"data:a\r\r\ndata:b\r\r",
        (("message", "a", ""), ("message", "b", "")),
    ),
    Case(
        "P-04 mixed ends inside one event",
        b"data:a\rdata:b\r\ndata:c\ndata:d\r\n\n",
        (("message", "a\nb\nc\nd", ""),),
    ),
    # P-05: a blank line dispatches.
    Case("P-05 blank line", b"data:a\n\ndata:b\n\n", (("message", "a", ""), ("message", "b", ""))),
    Case("P-05 extra blank lines fire nothing", b"\n\n\ndata:a\n\n\n\n", (("message", "a", ""),)),
    # P-06: comments.
    Case(
        "P-06 format-comments",
        b"data:1\r:\x00\n:\r\ndata:2\n:"
        + b"x" * 2049
        + b"\rdata:3\n:data:fail\r:"
        + b"y" * 2049
        + b"\ndata:4\n\n",
        (("message", "1\n2\n3\n4", ""),),
        comments=5,
    ),
    Case(
        "P-06 event-data comment line",
        b"data:msg\n:\ndata:msg2\n\n",
        (("message", "msg\nmsg2", ""),),
        comments=1,
    ),
    # P-07: field/value split at the first colon, one leading space removed, tabs kept.
    Case(
        "P-07 format-leading-space",
        b"data:\ttest\rdata: \rdata:test\n\n",
        (("message", "\ttest\n\ntest", ""),),
    ),
    Case("P-07 only one space removed", b"data:  2\n\n", (("message", " 2", ""),)),
    Case("P-07 first colon splits", b"data:a:b: c\n\n", (("message", "a:b: c", ""),)),
    Case("P-07 trailing space kept", b"data:a \n\n", (("message", "a ", ""),)),
    # P-08: no colon -> whole line is the name, value "".
    Case(
        "P-08 format-field-data",
        b"data:\n\ndata\ndata\n\ndata:test\n\n",
        (("message", "", ""), ("message", "\n", ""), ("message", "test", "")),
    ),
    Case(
        "P-08 bare id resets the id",
        b"id:1\ndata:a\n\nid\ndata:b\n\n",
        (("message", "a", "1"), ("message", "b", "")),
    ),
    Case(
        "P-08 bare event means message",
        b"event\ndata:Hello, world\n\n",
        (HELLO,),
    ),
    # P-09: names are exact and case-sensitive.
    Case(
        "P-09 format-field-parsing",
        b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\n"
        b"data:3\rdata:\r\n data:32\ndata:4\n\n",
        (("message", "\x00\n 2\n1\n3\n\n4", ""),),
    ),
    Case(
        "P-09 event-data Data: and other casings",
        b"Data:data\n\nEvent:x\nID:5\nRetry:1\nDATA:z\ndata:y\n\n",
        (("message", "y", ""),),
    ),
    # P-10: data appends value + LF; the final LF is removed at dispatch.
    Case("P-10 event-data", b"data:msg\ndata: msg\n\n", (("message", "msg\nmsg", ""),)),
    Case("P-10 empty lines in data", b"data\ndata\ndata\n\n", (("message", "\n\n", ""),)),
    # P-11: event sets the type; empty -> "message"; the type resets after each dispatch.
    Case(
        "P-11 format-field-event",
        b"event:test\ndata:x\n\ndata:x\n\n",
        (("test", "x", ""), ("message", "x", "")),
    ),
    Case("P-11 format-field-event-empty", b"event: \ndata:data\n\n", (("message", "data", ""),)),
    Case(
        "P-11 last event line wins",
        b"event:a\nevent:b\ndata:x\n\n",
        (("b", "x", ""),),
    ),
    Case(
        "P-11 type kept verbatim",
        b"event:  two words \ndata:x\n\n",
        ((" two words ", "x", ""),),
    ),
    # P-12: an id with NUL is ignored; otherwise it sets the buffer ("" resets).
    Case(
        "P-12 format-field-id-null",
        b"id:1\n\nid:\x00\x00\ndata:a\n\nid:x\x00\ndata:b\n\nid:\x00x\ndata:c\n\n"
        b"id:x\x00x\ndata:d\n\nid: \x00\ndata:e\n\n",
        (
            ("message", "a", "1"),
            ("message", "b", "1"),
            ("message", "c", "1"),
            ("message", "d", "1"),
            ("message", "e", "1"),
        ),
        last_event_id="1",
    ),
    Case(
        "P-12 format-field-id-3 persists and resets",
        b"id:1\ndata:a\n\ndata:b\n\nid:\ndata:c\n\nid:2\n\nid\ndata:d\n\nid:3\ndata:e\n\n",
        (
            ("message", "a", "1"),
            ("message", "b", "1"),
            ("message", "c", ""),
            ("message", "d", ""),
            ("message", "e", "3"),
        ),
        last_event_id="3",
    ),
    Case(
        "P-12 id after data counts for that event",
        b"data:Hello, world\nid:105\n\n",
        (("message", "Hello, world", "105"),),
        last_event_id="105",
    ),
    # P-13: retry only if all ASCII digits, base 10.
    Case(
        "P-13 format-field-retry",
        b"retry:03000\ndata:x\n\n",
        (("message", "x", ""),),
        retry=3000,
    ),
    Case(
        "P-13 format-field-retry-bogus",
        b"retry:3000\ndata:1\n\nretry:1000x\ndata:2\n\n",
        (("message", "1", ""), ("message", "2", "")),
        retry=3000,
    ),
    Case(
        "P-13 format-field-retry-empty",
        b"retry\ndata:test\n\n",
        (("message", "test", ""),),
    ),
    Case(
        "P-13 invalid forms keep the last valid value",
        b"retry:1000\nretry:-1\nretry:1.5\nretry:+2\nretry:2 \nretry:  3\nretry:0x10\n"
        b"retry:\xd9\xa3\nretry:\xc2\xb2\nretry:\xef\xbc\x94\nretry:\n",
        (),
        retry=1000,
    ),
    Case("P-13 last valid value wins", b"retry:5\nretry:0\n", (), retry=0),
    Case(
        "P-13 retry needs no dispatch",
        b"retry:250\ndata:pending",
        (),
        retry=250,
    ),
    Case(
        "ssegate retry above 2**63-1 is ignored",
        b"retry:7\nretry:9223372036854775808\nretry:" + b"9" * 30 + b"\n",
        (),
        retry=7,
    ),
    Case(
        "ssegate retry with many leading zeros",
        b"retry:9223372036854775807\n\nretry:" + b"0" * 30 + b"12\n",
        (),
        retry=12,
    ),
    Case("ssegate retry maximum", b"retry:9223372036854775807\n", (), retry=2**63 - 1),
    # P-14: unknown fields are ignored.
    Case(
        "P-14 format-field-unknown",
        b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n",
        (("message", "test\n\ntest", ""),),
        comments=1,
    ),
    Case("P-14 event-data falsefield", b"falsefield:msg\n\n", ()),
    # P-15: dispatch.
    Case("P-15 id-only block moves last_event_id", b"id:105\n\n", (), last_event_id="105"),
    Case(
        "P-15 id persists across events",
        b"id:7\n\ndata:a\n\ndata:b\n\n",
        (("message", "a", "7"), ("message", "b", "7")),
        last_event_id="7",
    ),
    Case(
        "P-15 type reset by an empty dispatch",
        b"event:a\n\ndata:b\n\n",
        (("message", "b", ""),),
    ),
    Case(
        "P-15 data reset after dispatch",
        b"data:a\n\ndata:b\n\n",
        (("message", "a", ""), ("message", "b", "")),
    ),
    # P-16: at end of stream, an unterminated event is discarded with its id.
    Case(
        "P-16 format-data-before-final-empty-line",
        b"retry:1000\ndata:test1\n\nid:test\ndata:test2",
        (("message", "test1", ""),),
        retry=1000,
    ),
    Case(
        "P-16 terminated lines without blank line",
        b"data:a\n\nid:2\ndata:b\n",
        (("message", "a", ""),),
    ),
    Case("P-16 unterminated comment not counted", b":\n:x", (), comments=1),
    # P-17: NUL in data is data.
    Case("P-17 format-null-character", b"data:\x00\n\n", (("message", "\x00", ""),)),
    # P-18: ids are UTF-8 text, non-ASCII allowed.
    Case(
        "P-18 format-field-id",
        b"id:\xe2\x80\xa6\ndata:x\n\n",
        (("message", "x", "\u2026"),),
        last_event_id="\u2026",
    ),
    # Zilla client-side scenarios (zilla-sse.md §6.1), WHATWG semantics where they differ
    # (Zilla's */invalid.utf8 expect an abort; a browser decodes U+FFFD, P-01).
    Case(
        "zilla data/multiple",
        b"data:Hello, world\n\ndata:Hello, world\n\n",
        (HELLO, HELLO),
    ),
    Case("zilla data/name.only", b"data\n\n", (("message", "", ""),)),
    Case("zilla data/initial.whitespace", b"data: Hello, world\n\n", (HELLO,)),
    Case("zilla data/invalid.utf8", b"data:\xc3\x28\n\n", (("message", "\ufffd(", ""),)),
    Case("zilla type/name.only", b"event\ndata:Hello, world\n\n", (HELLO,)),
    Case(
        "zilla type/non.empty.trailing",
        b"data:Hello, world\nevent:one\n\n",
        (("one", "Hello, world", ""),),
    ),
    Case(
        "zilla type/non.empty.interleaved",
        b"data:Hello\nevent:one\ndata:world\n\n",
        (("one", "Hello\nworld", ""),),
    ),
    Case(
        "zilla type/initial.whitespace",
        b"event: one\ndata:Hello, world\n\n",
        (("one", "Hello, world", ""),),
    ),
    Case(
        "zilla type/invalid.utf8",
        b"event:\xc3\x28\ndata:Hello, world\n\n",
        (("\ufffd(", "Hello, world", ""),),
    ),
    Case("zilla id/name.only", b"id\ndata:Hello, world\n\n", (HELLO,)),
    Case(
        "zilla id/initial.whitespace",
        b"id: 105\ndata:Hello, world\n\n",
        (("message", "Hello, world", "105"),),
        last_event_id="105",
    ),
    Case(
        "zilla id/invalid.utf8",
        b"id:\xc3\x28\ndata:Hello, world\n\n",
        (("message", "Hello, world", "\ufffd("),),
        last_event_id="\ufffd(",
    ),
    Case("zilla bom/empty", BOM + b"data:\n\n", (("message", "", ""),)),
    Case("zilla bom/non.empty", BOM + b"data:Hello, world\n\n", (HELLO,)),
    Case("zilla end.of.line/line.feed", b"data:Hello, world\n\n", (HELLO,)),
    Case("zilla end.of.line/carriage.return", b"data:Hello, world\r\r", (HELLO,)),
    Case(
        "zilla end.of.line/carriage.return.line.feed(.fragmented)",
        b"data:Hello, world\r\n\r\n",
        (HELLO,),
    ),
    Case("zilla comment/empty", b":\ndata:Hello, world\n\n", (HELLO,), comments=1),
    Case("zilla comment/non.empty", b":comment\ndata:Hello, world\n\n", (HELLO,), comments=1),
    Case(
        "zilla comment/multi.line",
        b":comment1\n:comment2\ndata:Hello, world\n\n",
        (HELLO,),
        comments=2,
    ),
    Case("zilla idle/comment heartbeats", b":\n\n:\n\n:\n\n", (), comments=3),
    Case("zilla custom/empty", b"custom:\ndata:Hello, world\n\n", (HELLO,)),
    Case("zilla custom/non.empty", b"custom:field\ndata:Hello, world\n\n", (HELLO,)),
    Case("zilla custom/name.only", b"custom\ndata:Hello, world\n\n", (HELLO,)),
    Case("zilla custom/initial.whitespace", b"custom:  field\ndata:Hello, world\n\n", (HELLO,)),
    Case("zilla custom/invalid.utf8", b"custom:\xc3\x28\ndata:Hello, world\n\n", (HELLO,)),
    Case("zilla retry/numeric", b"retry:10\ndata:Hello, world\n\n", (HELLO,), retry=10),
    Case("zilla retry/non.numeric", b"retry:non-numeric\ndata:Hello, world\n\n", (HELLO,)),
    Case("zilla retry/name.only", b"retry\ndata:Hello, world\n\n", (HELLO,)),
    Case(
        "zilla retry/initial.whitespace one space",
        b"retry: 10\ndata:Hello, world\n\n",
        (HELLO,),
        retry=10,
    ),
    Case(
        "zilla retry/initial.whitespace two spaces",
        b"retry:  10\ndata:Hello, world\n\n",
        (HELLO,),
    ),
    Case("zilla retry/invalid.utf8", b"retry:\xc3\x28\ndata:Hello, world\n\n", (HELLO,)),
    Case(
        "zilla timestamp/non.empty.with.type (unknown field)",
        b"timestamp:0x161e350a495\nevent:one\ndata:Hello, world\n\n",
        (("one", "Hello, world", ""),),
    ),
]

ALL_CASES: list[Case] = [row.as_case() for row in ENCODED] + DECODED
