"""Clients no one here wrote: httpx with httpx-sse, and curl."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record

pytestmark = pytest.mark.kafka


async def test_httpx_sse(kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways([{"path": "/q/{k}", "topic": topic, "filters": [{"key": "${params.k}"}]}])
    kafka.produce(
        topic,
        [
            Record(b'{"n":1}', key=b"a"),
            Record(b'{"n":2}', key=b"b"),
            Record(b"line 1\nline 2", key=b"a"),
            Record(None, key=b"a"),
        ],
    )
    async with (
        httpx.AsyncClient(timeout=10) as client,
        aconnect_sse(client, "GET", f"{gateway.base}/q/a") as source,
    ):
        assert source.response.status_code == 200
        assert source.response.headers["content-type"] == "text/event-stream"
        got = []
        async for event in source.aiter_sse():
            got.append((event.event, event.data, event.id))
            if len(got) == 3:
                break
    assert got == [
        ("message", '{"n":1}', "AQIAAg=="),
        ("message", "line 1\nline 2", "AQIABg=="),
        ("delete", "YQ==", "AQIACA=="),
    ]
    # Resume with httpx from the middle.
    async with (
        httpx.AsyncClient(timeout=10) as client,
        aconnect_sse(
            client, "GET", f"{gateway.base}/q/a", headers={"Last-Event-ID": "AQIAAg=="}
        ) as source,
    ):
        first = await anext(source.aiter_sse())
    assert (first.data, first.id) == ("line 1\nline 2", "AQIABg==")


async def test_curl(kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways(
        [
            {
                "path": "/events/{symbol}/{exchange}",
                "topic": topic,
                "filters": [
                    {"key": "${params.symbol}", "headers": {"exchange": "${params.exchange}"}}
                ],
            }
        ]
    )
    kafka.produce(
        topic,
        [
            Record(b'{"price":1}', key=b"AAPL", headers=[("exchange", b"nasdaq")]),
            Record(b'{"price":2}', key=b"MSFT", headers=[("exchange", b"nasdaq")]),
            Record(b'{"price":3}', key=b"AAPL", headers=[("exchange", b"nyse")]),
            Record(b'{"price":4}', key=b"AAPL", headers=[("exchange", b"nasdaq")]),
        ],
    )
    result = await asyncio.to_thread(
        subprocess.run,
        ["curl", "-sN", "--max-time", "2", f"{gateway.base}/events/AAPL/nasdaq"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 28  # curl's "operation timed out": the stream stays open
    assert result.stdout == (
        b':\n\nid:AQIAAg==\ndata:{"price":1}\n\nid:AQIACA==\ndata:{"price":4}\n\n'
    )
