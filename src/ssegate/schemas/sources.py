"""Sources whose records are converted by a model before the fan-out sees them.

1. A route with a value model reads its topic under a *modeled name*, `<topic>|<model>`
   (`ssegate.sources.names`): the fan-out keeps one hub, one ring and one
   reader per name as always, so every stream of the model shares one conversion per
   record, however many streams and groups there are, and a route without a model (or
   with another model) on the same topic has its own.
2. `ModeledSources` opens the underlying topic and puts a `ModelListener` between the
   source and the fan-out. Each record's value is replaced by its JSON text
   (`ssegate.schemas.model`), in the reader's path, once.
3. A batch that names schemas not compiled yet waits while they are fetched, and what the
   source says after it waits behind it, so the fan-out sees everything in the source's
   order. The batch is acknowledged to the source only when the fan-out acknowledges it:
   flow control is unchanged.
4. An invalid record stays in the batch, marked (`Record.invalid`, its reason) with an
   `event:invalid` body whose data names the partition, offset and reason, never the
   value. Routes with `on_invalid: skip` never deliver it but move past it (an id-only
   checkpoint at the next heartbeat), those with `event` deliver that event with its id.
   Each invalid record is counted by topic and reason; one line per reason per topic is
   logged per LOG_INTERVAL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from functools import partial

import msgspec

from ssegate.schemas.model import SchemaKey, ValueModel
from ssegate.schemas.schema import InvalidRecord
from ssegate.sources.names import split_name
from ssegate.sources.protocol import (
    Ack,
    PartitionStart,
    Source,
    SourceFailure,
    SourceListener,
    Sources,
)
from ssegate.sources.record import Record
from ssegate.sse.wire import encode_data

logger = logging.getLogger("ssegate.schemas")

LOG_INTERVAL = 60.0  # seconds between log lines for one topic and reason
_INVALID = b"event:invalid\n"

InvalidCounter = Callable[[str, str], None]  # (topic, reason)


def invalid_body(record: Record, reason: str) -> bytes:
    """What `on_invalid: event` sends for `record` (rule 4), after its `id:` line."""
    data = msgspec.json.encode(
        {"partition": record.partition, "offset": record.offset, "reason": reason}
    )
    return _INVALID + encode_data(data) + b"\n"


class ModelListener:
    """Converts each batch with `model`, then hands everything on to `inner` in order."""

    def __init__(
        self,
        topic: str,
        model: ValueModel,
        inner: SourceListener,
        loop: asyncio.AbstractEventLoop,
        on_invalid: InvalidCounter,
    ) -> None:
        self.topic = topic
        self.model = model
        self.inner = inner
        self._loop = loop
        self._on_invalid = on_invalid
        self._waiting: deque[Callable[[], None]] = deque()  # behind a fetch (rule 3)
        self._fetching: asyncio.Task[None] | None = None
        self._stopped = False
        self._logged: dict[str, float] = {}  # reason -> when last logged

    def stop(self) -> None:
        self._stopped = True
        self._waiting.clear()
        if self._fetching is not None:
            self._fetching.cancel()

    # -- SourceListener --------------------------------------------------------------------

    def on_batch(self, records: list[Record], eofs: dict[int, int], ack: Ack) -> None:
        self._in_order(partial(self._deliver, records, eofs, ack))

    def on_partitions(self, partitions: Mapping[int, PartitionStart]) -> None:
        self._in_order(lambda: self.inner.on_partitions(partitions))

    def on_missing(self) -> None:
        self._in_order(self.inner.on_missing)

    def on_extent(self, ends: Mapping[int, int]) -> None:
        self._in_order(lambda: self.inner.on_extent(ends))

    def on_gap(self, lost: Mapping[int, tuple[int, int]]) -> None:
        self._in_order(lambda: self.inner.on_gap(lost))

    def on_failure(self, failure: SourceFailure) -> None:
        self._in_order(lambda: self.inner.on_failure(failure))

    # -- the order of news (rule 3) --------------------------------------------------------

    def _in_order(self, news: Callable[[], None]) -> None:
        if self._stopped:
            return
        if self._waiting or self._fetching is not None:
            self._waiting.append(news)
        else:
            news()

    def _fetch(self, keys: Iterable[SchemaKey]) -> None:
        logger.debug("topic %s: fetching schemas %s", self.topic, keys)

        async def fetch() -> None:
            try:
                await self.model.fetch(keys)
            except Exception:  # a bug, not a registry's answer: the records go on, invalid
                logger.exception("topic %s: fetching schemas %s failed", self.topic, keys)
            finally:
                self._fetching = None
            self._drain()

        self._fetching = self._loop.create_task(fetch())

    def _drain(self) -> None:
        """Deliver what waited, in order, until a batch needs another fetch."""
        waiting = self._waiting
        while waiting and not self._stopped:
            news = waiting.popleft()
            news()
            if self._fetching is not None:
                return

    def _deliver(
        self, records: list[Record], eofs: dict[int, int], ack: Ack, fetched: bool = False
    ) -> None:
        """Convert `records` and hand them on. Schemas they name that are not compiled yet
        are fetched first, once: what is still missing after that is invalid."""
        if self._stopped:
            return
        if not fetched:
            missing = self.model.missing(record.value for record in records)
            if missing:
                self._waiting.appendleft(partial(self._deliver, records, eofs, ack, True))
                self._fetch(missing)
                return
        self._convert(records)
        self.inner.on_batch(records, eofs, ack)

    def _convert(self, records: list[Record]) -> None:
        convert = self.model.convert
        for record in records:
            value = record.value
            if value is None:
                continue  # a tombstone: a `delete` event (model rule 4)
            try:
                converted = convert(value)
            except InvalidRecord as invalid:
                self._invalid(record, invalid)
                continue
            record.size += len(converted) - len(value)
            record.value = converted

    def _invalid(self, record: Record, invalid: InvalidRecord) -> None:
        record.invalid = invalid.reason
        record.cached_data = invalid_body(record, invalid.reason)
        self._on_invalid(self.topic, invalid.reason)
        now = time.monotonic()
        if now - self._logged.get(invalid.reason, -LOG_INTERVAL) >= LOG_INTERVAL:
            self._logged[invalid.reason] = now
            logger.warning(
                "invalid record in topic %s, partition %d, offset %d: %s (%s; at most one"
                " such line per minute)",
                self.topic,
                record.partition,
                record.offset,
                invalid,
                invalid.reason,
            )


class _ModeledSource:
    """An opened source and the listener in front of its fan-out."""

    def __init__(self, source: Source, listener: ModelListener) -> None:
        self._source = source
        self._listener = listener

    def start(self) -> None:
        self._source.start()

    def stop(self) -> None:
        self._listener.stop()
        self._source.stop()


class ModeledSources:
    """`Sources` that convert records of modeled names (rule 2), and pass others through."""

    def __init__(
        self,
        inner: Sources,
        models: Mapping[str, ValueModel],
        loop: asyncio.AbstractEventLoop,
        on_invalid: InvalidCounter,
    ) -> None:
        self.inner = inner
        self.models = models
        self._loop = loop
        self._on_invalid = on_invalid

    def __repr__(self) -> str:
        return f"<ModeledSources models={len(self.models)} {self.inner!r}>"

    def _wrap(self, name: str, listener: SourceListener) -> tuple[str, ModelListener | None]:
        topic, model = split_name(name)
        if model is None:
            return topic, None
        wrapped = ModelListener(topic, self.models[model], listener, self._loop, self._on_invalid)
        return topic, wrapped

    def open_live(self, name: str, listener: SourceListener, *, prefill: int) -> Source:
        topic, wrapped = self._wrap(name, listener)
        if wrapped is None:
            return self.inner.open_live(topic, listener, prefill=prefill)
        return _ModeledSource(self.inner.open_live(topic, wrapped, prefill=prefill), wrapped)

    def open_catchup(
        self, name: str, positions: Mapping[int, int], listener: SourceListener
    ) -> Source:
        topic, wrapped = self._wrap(name, listener)
        if wrapped is None:
            return self.inner.open_catchup(topic, positions, listener)
        return _ModeledSource(self.inner.open_catchup(topic, positions, wrapped), wrapped)

    def offsets_for_time(
        self, name: str, partitions: Iterable[int], time_ms: int
    ) -> asyncio.Future[dict[int, int]]:
        return self.inner.offsets_for_time(split_name(name)[0], partitions, time_ms)

    def end_offsets(self, name: str, partitions: Iterable[int]) -> asyncio.Future[dict[int, int]]:
        return self.inner.end_offsets(split_name(name)[0], partitions)

    async def close(self, within: float) -> None:
        await self.inner.close(within)
