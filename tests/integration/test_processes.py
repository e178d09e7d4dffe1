"""Gateways that die, restart, drain and run as several workers: clients lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable

import psutil
import pytest

from ssegate.kafka.eventid import encode_progress
from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster
from tests.support.quotes import QuoteFeed, assert_exactly, sequences
from tests.support.sse_client import SseStream, metric_value, open_stream, request
from tests.support.waiting import until

pytestmark = pytest.mark.kafka

SYMBOLS = ["AAPL", "MSFT", "IBM"]


class Client:
    """One resilient client: reads, and on a dropped stream reconnects with its last id."""

    def __init__(self, port: int, target: str) -> None:
        self.port, self.target = port, target
        self.events: list = []  # type: ignore[type-arg]
        self.last_id = ""
        self.reconnects = 0
        self.stream: SseStream | None = None

    async def run_until(self, done: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.events)} events after {timeout}s")
            try:
                headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
                self.stream = await open_stream(self.port, self.target, headers=headers)
                if self.stream.response.status != 200:
                    raise ConnectionError(self.stream.response.status)
                while not done():
                    for event in await self.stream.next_events(1, timeout=5):
                        self.events.append(event)
                        self.last_id = event.last_event_id
            except (OSError, EOFError, asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                # The gateway went away (or is not back yet): keep the last id, retry.
                self.reconnects += 1
                if self.stream is not None:
                    # A checkpoint may have moved the resume point past filtered records.
                    self.last_id = self.stream.last_event_id or self.last_id
                # A real client's reconnect delay (its `retry:`), not a wait for a condition.
                await asyncio.sleep(0.2)
            finally:
                if self.stream is not None:
                    await self.stream.close()
                    self.stream = None


async def test_sigkill_with_100_clients_then_resume_on_a_new_instance(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    routes = [{"path": "/p", "topic": topic}]
    gateway = gateways(routes)
    clients = [Client(gateway.port, "/p") for _ in range(100)]
    with QuoteFeed(kafka.bootstrap, topic, SYMBOLS, per_second=20) as feed:
        target = {"n": 10**9}
        tasks = [
            asyncio.create_task(c.run_until(lambda c=c: len(c.events) >= target["n"]))
            for c in clients
        ]
        # Every client is reading when the gateway dies.
        await until(
            lambda: min(len(c.events) for c in clients),
            30,
            message="5 rounds of events at every client",
            accept=lambda fewest: fewest >= 5 * len(SYMBOLS),
        )
        gateway.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        gateway.process.wait()  # type: ignore[union-attr]
        # Records keep coming while no gateway runs.
        killed = feed.produced
        await until(
            lambda: feed.produced,
            30,
            message="5 rounds produced while no gateway runs",
            accept=lambda produced: produced >= killed + 5,
        )
        gateways(routes, port=gateway.port)
        # Every client resumes on the new instance and reads past the restart.
        wanted = (feed.produced + 5) * len(SYMBOLS)
        await until(
            lambda: min(len(c.events) for c in clients),
            60,
            message=f"{wanted} events (5 rounds past the restart) at every client",
            accept=lambda fewest: fewest >= wanted,
        )
        produced = feed.stop()
    target["n"] = produced * len(SYMBOLS)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    for client in clients:
        assert client.reconnects >= 1
        assert_exactly(client.events, {s: range(1, produced + 1) for s in SYMBOLS})


async def test_sigterm_ends_every_stream_with_a_checkpoint_in_time(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=2)
    gateway = gateways(
        [{"path": "/p/{symbol}", "topic": topic, "filters": [{"key": "${params.symbol}"}]}],
        server={"shutdown_timeout": "3s"},
    )
    delivered = kafka.produce(topic, [*_quotes("AAPL", 3), *_quotes("IBM", 5)])
    ends: dict[int, int] = {}
    for d in delivered:
        ends[d.partition] = max(ends.get(d.partition, 0), d.offset + 1)
    streams = [await open_stream(gateway.port, "/p/AAPL") for _ in range(20)]
    for stream in streams:
        assert len(await stream.next_events(3)) == 3
    # The reader has handed over all 8 records (IBM's too) before the shutdown begins.
    await until(
        lambda: metric_value(gateway.port, f'ssegate_kafka_records_read_total{{topic="{topic}"}}'),
        30,
        message="the reader to hand over all 8 records",
        accept=lambda read: read == 8,
    )
    started = time.monotonic()
    assert gateway.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 3 + 2
    for stream in streams:
        assert await stream.read_until_end() == []
        assert stream.ended
        # The final checkpoint covers the IBM records: a reconnect does not re-read them.
        assert bytes(stream.raw).endswith(f"id:{encode_progress(ends)}\n\n".encode())
        await stream.close()
    resumed = gateways(
        [{"path": "/p/{symbol}", "topic": topic, "filters": [{"key": "${params.symbol}"}]}],
        port=gateway.port,
    )
    stream = await open_stream(
        resumed.port, "/p/AAPL", headers={"Last-Event-ID": streams[0].last_event_id}
    )
    kafka.produce(topic, _quotes("AAPL", 4)[3:])
    (event,) = await stream.next_events(1)
    assert sequences([event]) == {"AAPL": [4]}
    await stream.close()


def _quotes(symbol: str, last: int) -> list:  # type: ignore[type-arg]
    from tests.support.quotes import quote

    return [quote(symbol, n) for n in range(1, last + 1)]


def _workers(gateway: GatewayProcess) -> list[psutil.Process]:
    assert gateway.process is not None
    return psutil.Process(gateway.process.pid).children()


def _listening_workers(gateway: GatewayProcess) -> int:
    """Workers with a listening socket on the gateway's port (`/ready` answers as soon as
    one does; the other may still be importing)."""
    listening = 0
    for worker in _workers(gateway):
        with contextlib.suppress(psutil.Error):
            listening += any(
                c.status == psutil.CONN_LISTEN and c.laddr.port == gateway.port
                for c in worker.net_connections(kind="tcp")
            )
    return listening


def _streams_per_worker(gateway: GatewayProcess) -> dict[int, int]:
    counts = {}
    for worker in _workers(gateway):
        with contextlib.suppress(psutil.Error):
            counts[worker.pid] = sum(
                1
                for c in worker.net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == gateway.port
            )
    return counts


async def test_two_workers_share_the_streams_and_drain_on_sigterm(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways(
        [{"path": "/p", "topic": topic}], args=("--workers", "2"), server={"shutdown_timeout": "3s"}
    )
    # Fix: streams opened while the second worker still started all went to the first.
    await until(
        lambda: _listening_workers(gateway), 30, accept=lambda n: n == 2, message="both workers"
    )
    streams = [await open_stream(gateway.port, "/p") for _ in range(60)]
    kafka.produce(topic, _quotes("AAPL", 10))
    for stream in streams:
        assert sequences(await stream.next_events(10)) == {"AAPL": list(range(1, 11))}
    per_worker = _streams_per_worker(gateway)
    assert len(per_worker) == 2
    assert sum(per_worker.values()) == 60
    assert min(per_worker.values()) >= 10, per_worker  # the kernel spreads them
    started = time.monotonic()
    assert gateway.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 3 + 5
    for stream in streams:
        await stream.read_until_end()
        assert stream.ended
        await stream.close()


async def test_a_crashed_worker_is_restarted(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess]
) -> None:
    topic = kafka.new_topic(partitions=1)
    gateway = gateways([{"path": "/p", "topic": topic}], args=("--workers", "2"))
    victim, survivor = _workers(gateway)
    victim.kill()

    def live_workers() -> set[int]:
        return {w.pid for w in _workers(gateway) if w.status() != psutil.STATUS_ZOMBIE}

    pids = await until(
        live_workers,
        30,
        message="a replacement worker",
        accept=lambda pids: len(pids) == 2 and victim.pid not in pids,
        ignoring=(psutil.Error,),  # a worker listed, then gone before its status is read
    )
    assert survivor.pid in pids
    assert f"worker 0 (pid {victim.pid}) exited with status -9; restarting" in gateway.log() or (
        f"worker 1 (pid {victim.pid}) exited with status -9; restarting" in gateway.log()
    )
    for _ in range(10):  # whichever worker answers, streams work
        assert (await request(gateway.port, "/health")).status == 200
