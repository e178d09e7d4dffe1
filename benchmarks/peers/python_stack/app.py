"""The peer a Python developer would write today: Starlette + sse-starlette on uvicorn,
one aiokafka consumer per client.

It runs in its own venv (`benchmarks/.venv-peers`, from `requirements.txt` beside this
file), never in ssegate's. Run by the benchmark as:

    PEER_BOOTSTRAP=127.0.0.1:9092 uvicorn app:app --app-dir benchmarks/peers/python_stack

Routes (what the load generator asks for):

- `GET /topics/{topic}?start=latest|earliest`: every record of the topic.
- `GET /topics/{topic}/keys/{key}?start=...`: only records whose key is `key`.
- `GET /health`: `ok`.

Each event's id is the client's progress, `partition:next_offset` for every partition,
comma-separated; `Last-Event-ID` with that text resumes exactly after it. The idiomatic
shape, without tuning: a consumer started per request, `async for` over its records, one
`ServerSentEvent` per record, sse-starlette's default ping and separator.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

BOOTSTRAP = os.environ.get("PEER_BOOTSTRAP", "127.0.0.1:9092")


def encode_progress(progress: dict[int, int]) -> str:
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(progress.items()))


def decode_progress(text: str) -> dict[int, int]:
    pairs = (item.split(":") for item in text.split(","))
    return {int(partition): int(offset) for partition, offset in pairs}


async def open_consumer(
    topic: str, last_event_id: str | None, start: str
) -> tuple[AIOKafkaConsumer, dict[int, int]]:
    """A consumer of every partition of `topic`, positioned where this client resumes."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset=start
    )
    await consumer.start()  # no group: every partition of the topic is assigned
    try:
        assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        for _ in range(100):
            if assigned:
                break
            await asyncio.sleep(0.05)
            assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        progress: dict[int, int] = {}
        if last_event_id:
            progress = decode_progress(last_event_id)
            for tp in assigned:
                consumer.seek(tp, progress.get(tp.partition, 0))
        elif start == "latest":
            await consumer.seek_to_end(*assigned)
        else:
            await consumer.seek_to_beginning(*assigned)
        for tp in assigned:
            progress.setdefault(tp.partition, await consumer.position(tp))
    except BaseException:
        await consumer.stop()
        raise
    return consumer, progress


async def events(
    consumer: AIOKafkaConsumer, progress: dict[int, int], key: bytes | None
) -> AsyncIterator[ServerSentEvent]:
    try:
        async for record in consumer:
            progress[record.partition] = record.offset + 1
            if key is not None and record.key != key:
                continue
            value = record.value.decode() if record.value is not None else ""
            yield ServerSentEvent(data=value, id=encode_progress(progress))
    finally:
        await consumer.stop()


async def stream(request: Request) -> Response:
    topic = request.path_params["topic"]
    key_text = request.path_params.get("key")
    start = request.query_params.get("start", "latest")
    consumer, progress = await open_consumer(topic, request.headers.get("last-event-id"), start)
    key = key_text.encode() if key_text is not None else None
    return EventSourceResponse(events(consumer, progress, key), ping=15)


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/topics/{topic}", stream),
        Route("/topics/{topic}/keys/{key}", stream),
    ]
)
