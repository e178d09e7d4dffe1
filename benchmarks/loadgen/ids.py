"""Event-id checks, one per server kind: each peer writes its own id format.

A checker decodes an id and compares it with the previous one it decoded on the same stream,
given how many events arrived in between. It is applied to the last id of each read on the
streams that sample latency, and to the last id of every stream at the end, never to every
event (decoding costs microseconds; counting costs nanoseconds).

- `ssegate`: `ssegate.kafka.eventid.parse_event_id`; progress (partition -> next offset)
  never moves back, and on an unfiltered route it advances by exactly the events between.
- `offsets`: the Python stack's `p:o,p:o` (partition:next offset), checked the same way.
- `nchan`: `time:tag`, strictly increasing when events arrived in between.
"""

from __future__ import annotations

from collections.abc import Callable

from ssegate.kafka.eventid import EventIdError, parse_event_id

Decoded = dict[int, int] | tuple[int, int]


class IdError(ValueError):
    """An id that does not decode or does not follow from the previous one."""


def decode_ssegate(text: str) -> Decoded:
    try:
        return parse_event_id(text).progress
    except EventIdError as exc:
        raise IdError(f"ssegate id {text!r}: {exc}") from exc


def decode_offsets(text: str) -> Decoded:
    try:
        pairs = (item.split(":") for item in text.split(","))
        return {int(p): int(o) for p, o in pairs}
    except ValueError as exc:
        raise IdError(f"offsets id {text!r}: {exc}") from exc


def decode_nchan(text: str) -> Decoded:
    time_text, _, tag = text.partition(":")
    try:
        return (int(time_text), int(tag.strip("[]").split(",")[0]))
    except ValueError as exc:
        raise IdError(f"nchan id {text!r}: {exc}") from exc


DECODERS: dict[str, Callable[[str], Decoded]] = {
    "ssegate": decode_ssegate,
    "offsets": decode_offsets,
    "nchan": decode_nchan,
}


def check_step(previous: Decoded | None, current: Decoded, events: int, exact: bool) -> None:
    """Raise IdError unless `current` can follow `previous` after `events` events."""
    if previous is None:
        return
    if isinstance(current, tuple):
        if events and not (isinstance(previous, tuple) and current > previous):
            raise IdError(f"nchan id {current} does not follow {previous}")
        return
    assert isinstance(previous, dict)
    for partition, offset in previous.items():
        if current.get(partition, -1) < offset:
            raise IdError(f"progress moved back on partition {partition}: {previous} -> {current}")
    advance = sum(current.values()) - sum(previous.values())
    if advance < events or (exact and advance != events):
        raise IdError(f"progress advanced {advance} for {events} events: {previous} -> {current}")
