"""FrameGuard: the same verdict however a client's bytes are split into reads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ssegate.http.h2frames import (
    FLOOD_LIMITS,
    MAX_CONTINUATIONS,
    PREFACE,
    Flood,
    FrameGuard,
    data_frame_head,
    goaway_frame,
)
from tests.support.h2_client import frame


def guard() -> FrameGuard:
    return FrameGuard(max_header_block=1000, clock=lambda: 0.0)


def feed_split(data: bytes, cuts: list[int]) -> Flood | None:
    subject = guard()
    verdict = None
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        verdict = subject.feed(data[start:cut]) or verdict
        start = cut
    return verdict


PINGS = PREFACE + frame(0x6, 0, 0, b"8 bytes!") * (FLOOD_LIMITS[Flood.CONTROL_FLOOD].events + 1)
QUIET = PREFACE + frame(0x4, 0, 0) + frame(0x1, 0x5, 1, b"h" * 900) + frame(0x0, 0x1, 1, b"x")


@given(st.lists(st.integers(min_value=0, max_value=len(PINGS))))
def test_a_flood_is_seen_however_the_reads_split_it(cuts: list[int]) -> None:
    assert feed_split(PINGS, cuts) is Flood.CONTROL_FLOOD


@given(st.lists(st.integers(min_value=0, max_value=len(QUIET))))
def test_ordinary_frames_pass_however_the_reads_split_them(cuts: list[int]) -> None:
    assert feed_split(QUIET, cuts) is None


def test_acks_are_not_counted() -> None:
    acks = frame(0x6, 0x1, 0, b"8 bytes!") * 1000 + frame(0x4, 0x1, 0) * 1000
    assert guard().feed(PREFACE + acks) is None


def test_a_header_block_is_bounded_in_bytes_and_frames() -> None:
    too_big = PREFACE + frame(0x1, 0, 1, b"h" * 600) + frame(0x9, 0x4, 1, b"h" * 401)
    assert guard().feed(too_big) is Flood.HEADER_BLOCK
    many = PREFACE + frame(0x1, 0, 1, b"h") + frame(0x9, 0, 1, b"h") * (MAX_CONTINUATIONS + 1)
    assert guard().feed(many) is Flood.HEADER_BLOCK
    ends = PREFACE + frame(0x1, 0, 1, b"h" * 600) + frame(0x9, 0x4, 1, b"h" * 400)
    again = frame(0x1, 0x4, 3, b"h" * 999)  # a new block counts from zero
    assert guard().feed(ends + again) is None


def test_the_window_restarts() -> None:
    now = [0.0]
    subject = FrameGuard(max_header_block=1000, clock=lambda: now[0])
    limit = FLOOD_LIMITS[Flood.RAPID_RESET]
    resets = frame(0x3, 0, 1, b"\0\0\0\x08") * limit.events
    assert subject.feed(PREFACE + resets) is None
    now[0] += limit.seconds
    assert subject.feed(resets) is None
    assert subject.feed(frame(0x3, 0, 1, b"\0\0\0\x08")) is Flood.RAPID_RESET
    assert subject.feed(b"anything") is Flood.RAPID_RESET  # stopped for good


def test_frames_we_write() -> None:
    assert data_frame_head(5, 70000) == b"\x01\x11\x70\x00\x00\x00\x00\x00\x05"
    assert goaway_frame(7, 0xB) == frame(0x7, 0, 0, b"\0\0\0\x07\0\0\0\x0b")


def test_goaway_ends_are_reported_where_the_frame_ends() -> None:
    goaway = frame(0x7, 0, 0, b"\0\0\0\0\0\0\0\0")
    ping = frame(0x6, 0, 0, b"8 bytes!")
    subject = guard()
    assert subject.feed(PREFACE + goaway + ping) is None
    assert subject.goaway_ends == [len(PREFACE) + len(goaway)]
    split = guard()
    split.feed(PREFACE + goaway[:12])
    assert split.goaway_ends == []
    split.feed(goaway[12:] + ping)
    assert split.goaway_ends == [len(goaway) - 12]
