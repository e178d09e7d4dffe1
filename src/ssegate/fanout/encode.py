"""A Kafka record as SSE event bytes (zilla-sse.md §4.4), encoded once per record.

A record's event is `id:<id>` followed by a part that depends only on the record:
`data:` lines of its value, or for a tombstone `event:delete` and the base64url key (Zilla's
format, padded). That part is cached on the record, so however many groups and subscribers
deliver it, its payload is split and encoded once. The `id:` line the live source wrote is
kept too: a stream that fell behind the live source replays the ring along the same
positions (its ids are the live ones), so it writes those lines instead of encoding its own.
"""

from __future__ import annotations

import base64

from ssegate.kafka.eventid import IdForm, format_event_id
from ssegate.sources.record import Record
from ssegate.sse.wire import encode_data

_DELETE = b"event:delete\n"


def record_body(record: Record) -> bytes:
    """Everything after the `id:` line, cached on the record."""
    body = record.cached_data
    if body is None:
        if record.value is not None:
            body = encode_data(record.value) + b"\n"
        elif record.key is not None:
            body = _DELETE + encode_data(base64.urlsafe_b64encode(record.key)) + b"\n"
        else:  # a tombstone without a key: Zilla writes no data line
            body = _DELETE + b"\n"
        record.cached_data = body
    return body


def record_event_id(record: Record, progress: str, form: IdForm) -> bytes:
    """The `id:` value for `record` given the progress after it."""
    return format_event_id(
        progress, form=form, etag=record.etag, key=record.key if form is IdForm.KEY else None
    ).encode("ascii")


def id_line(record: Record, progress: str, form: IdForm) -> bytes:
    """The event's `id:` line for `record` given the progress after it."""
    return b"id:" + record_event_id(record, progress, form) + b"\n"


def encode_record(record: Record, progress: str, form: IdForm) -> bytes:
    """The complete event for `record`."""
    return id_line(record, progress, form) + record_body(record)


def encode_live(record: Record, progress: str, form: IdForm) -> bytes:
    """The complete event for `record` as the live source writes it: its `id:` line is
    kept on the record (the first form written), for streams that fell behind."""
    line = id_line(record, progress, form)
    if record.live_form is None:
        record.live_form = form
        record.live_id = line
    return line + record_body(record)


def encode_on_trail(record: Record, form: IdForm) -> bytes | None:
    """The event the live source wrote for `record` in `form`, if it wrote one."""
    line = record.live_id
    if line is None or record.live_form is not form:
        return None
    return line + record_body(record)


def checkpoint(progress: str, form: IdForm) -> bytes:
    """An id-only event: moves the client's Last-Event-ID without firing an event."""
    return b"id:" + format_event_id(progress, form=form).encode("ascii") + b"\n\n"
