"""What a client should receive, computed from the log alone (never from the fan-out).

`stream(records, start)` is the byte stream a client at `start` is owed for `records`: each
record's event carries the progress just after it. `owed(topic, start)` picks the records
after `start` from the topic's log, in append order (the order the in-memory live source
hands them over, hence the ring's order). `blocks(data)` splits what a sink got back into
(id, event type, data) triples, for tests that reason about ids rather than bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping

from ssegate.fanout.subscriber import State, Subscriber
from ssegate.kafka.eventid import encode_progress
from ssegate.sources.memory import MemoryTopic
from ssegate.sources.record import Record
from ssegate.sse.wire import Decoder
from tests.unit.fanout.harness import frame


def owed(topic: MemoryTopic, start: Mapping[int, int]) -> list[Record]:
    """The records of `topic` at or after `start` (per partition), in append order."""
    return [r for r in topic.log if r.offset >= start.get(r.partition, 0)]


def progress_after(topic: MemoryTopic, count: int | None = None) -> dict[int, int]:
    """The progress after the first `count` records of the log (all of it by default),
    over every partition: what a live stream's id carries right after that record."""
    progress = dict.fromkeys(range(len(topic.partitions)), 0)
    for record in topic.log[:count]:
        progress[record.partition] = record.offset + 1
    return progress


def event(record: Record, progress: Mapping[int, int]) -> bytes:
    """One record's event: `frame` for values, Zilla's `event:delete` for tombstones."""
    if record.value is not None:
        return frame(record.value, progress)
    assert record.key is not None
    key = base64.urlsafe_b64encode(record.key)
    return b"id:" + encode_progress(progress).encode() + b"\nevent:delete\ndata:" + key + b"\n\n"


def stream(records: Iterable[Record], start: Mapping[int, int]) -> bytes:
    """The events a client at `start` gets for `records`, each id the progress after it."""
    progress = dict(start)
    out = bytearray()
    for record in records:
        progress[record.partition] = record.offset + 1
        out += event(record, progress)
    return bytes(out)


def gap_frame(
    topic: str, progress: Mapping[int, int], lost: Mapping[int, tuple[int, int]]
) -> bytes:
    """The `event:gap` a resumed client gets once when retention deleted what it had not seen."""
    data = {
        "topic": topic,
        "partitions": [
            {"partition": p, "from": frm, "to": to, "lost": to - frm}
            for p, (frm, to) in sorted(lost.items())
        ],
    }
    return (
        b"id:"
        + encode_progress(progress).encode()
        + b"\nevent:gap\ndata:"
        + json.dumps(data, separators=(",", ":")).encode()
        + b"\n\n"
    )


def reconnected(progress: Mapping[int, int]) -> Decoder:
    """A client's parser after it reconnected with the id carrying `progress`."""
    client = Decoder()
    client.last_event_id = encode_progress(progress)
    client.close()  # the next response starts from that id (its id buffer)
    return client


def state(subscriber: Subscriber) -> State:
    """The subscriber's state now (a call, so a type checker does not narrow it)."""
    return subscriber.state


HEARTBEAT = b":\n\n"  # a comment: keeps the connection open, moves nothing


def blocks(data: bytes) -> list[tuple[str | None, str | None, bytes | None]]:
    """Each event block as (id, event, data); a comment or a `retry:` is (None, None, None).

    Only for the bytes the fan-out writes (one field per line, LF line ends, no BOM).
    """
    assert data.endswith(b"\n\n") or not data, f"an unterminated block: {data[-40:]!r}"
    out: list[tuple[str | None, str | None, bytes | None]] = []
    for block in data.split(b"\n\n")[:-1]:
        ident: str | None = None
        kind: str | None = None
        lines: list[bytes] = []
        for line in block.split(b"\n"):
            name, _, value = line.partition(b":")
            if name == b"id":
                ident = value.decode()
            elif name == b"event":
                kind = value.decode()
            elif name == b"data":
                lines.append(value)
            elif name != b"retry":  # a stream that fell behind the ring ends with one
                assert line.startswith(b":"), f"an unexpected line {line!r}"
        out.append((ident, kind, b"\n".join(lines) if lines else None))
    return out
