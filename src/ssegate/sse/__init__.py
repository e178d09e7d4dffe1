"""Server-Sent Events: the text/event-stream wire format (encoder and WHATWG decoder)."""

from ssegate.sse.wire import (
    COMMENT,
    Decoder,
    Event,
    encode_comment,
    encode_data,
    encode_event,
    encode_retry,
)

__all__ = [
    "COMMENT",
    "Decoder",
    "Event",
    "encode_comment",
    "encode_data",
    "encode_event",
    "encode_retry",
]
