"""A record as the fan-out keeps it: plain values, whatever source it came from.

A Kafka record, an upstream SSE event (partition 0, offsets counted by the proxy) or a
test's in-memory record all become a `Record`; the fan-out knows nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

Headers = Sequence[tuple[str, bytes]]

UNDECODED = object()

# Bytes of bookkeeping per record beyond key, value and headers, for ring accounting:
# roughly what CPython spends on the object, its slots and the bytes objects' headers.
RECORD_OVERHEAD = 200


class Record:
    """One record of one partition. `value is None` is a tombstone.

    `seq` orders records of one topic in the order the reader handed them over, across
    partitions. The `cached_*` slots let the fan-out encode a record once per batch however
    many subscription groups deliver it.
    """

    __slots__ = (
        "cached_data",
        "decoded",
        "etag",
        "headers",
        "invalid",
        "key",
        "live_form",
        "live_id",
        "offset",
        "partition",
        "seq",
        "size",
        "timestamp",
        "value",
    )

    def __init__(
        self,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        timestamp: int = 0,
    ) -> None:
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
        self.seq = 0
        self.etag: bytes | None = None
        size = RECORD_OVERHEAD + len(key or b"") + len(value or b"")
        if headers:
            for name, header_value in headers:
                size += len(name) + len(header_value or b"")
                if name == "etag":  # Zilla: the header named exactly `etag`, byte match
                    self.etag = header_value
        self.size = size
        self.cached_data: bytes | None = None
        # Why the route's model refused this record (`ssegate.schemas.sources` rule 4), or
        # None: routes with `on_invalid: skip` pass it without delivering it.
        self.invalid: str | None = None
        self.decoded: object = UNDECODED  # the value as JSON, decoded on first need
        # The `id:` line the live fan-out wrote for this record, in the first id form it
        # wrote (an `IdForm`; untyped here: sources know nothing of ids): a stream that fell
        # behind replays from where the live streams were and writes the same line.
        self.live_form: object = None
        self.live_id: bytes | None = None

    def document(self) -> Any:
        """The value decoded as JSON (None when it is not JSON, or a tombstone), decoded
        once however many value filters ask (`ssegate.routing.filters` rule 4)."""
        decoded = self.decoded
        if decoded is UNDECODED:
            try:
                decoded = msgspec.json.decode(self.value) if self.value is not None else None
            except msgspec.DecodeError:
                decoded = None
            self.decoded = decoded
        return decoded

    def __repr__(self) -> str:
        return f"<Record p{self.partition}@{self.offset} key={self.key!r} seq={self.seq}>"
