"""Where records come from, as the fan-out sees it: the `Record`, the source protocol, and
sources over in-memory logs (for tests). Kafka's implementation is `ssegate.kafka.source`.

Imports nothing of ours: the fan-out, Kafka and the proxy all build on it.
"""

from ssegate.sources.protocol import (
    Ack,
    Lookup,
    PartitionStart,
    Source,
    SourceFailure,
    SourceListener,
    Sources,
)
from ssegate.sources.record import Headers, Record

__all__ = [
    "Ack",
    "Headers",
    "Lookup",
    "PartitionStart",
    "Record",
    "Source",
    "SourceFailure",
    "SourceListener",
    "Sources",
]
