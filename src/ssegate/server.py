"""Running the gateway: listeners, the Kafka readiness probe, signals, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from ssegate.app import Gateway, ReadinessSource
from ssegate.config.loader import LoadedConfig
from ssegate.errors import SsegateError
from ssegate.fanout.service import Fanout
from ssegate.http.h1 import ConnectionRegistry, HttpProtocol
from ssegate.kafka.reader import consumer_config
from ssegate.observe.metrics import GatewayMetrics

logger = logging.getLogger("ssegate.server")

PROBE_INTERVAL = 5.0
SHUTDOWN_GRACE = 5.0  # seconds for connections to finish their last response


class KafkaProbe(ReadinessSource):
    """Asks the cluster for metadata every few seconds, on a thread, for `/ready`."""

    def __init__(self, config: dict[str, Any], interval: float = PROBE_INTERVAL) -> None:
        self._config = {k: v for k, v in config.items() if k != "enable.partition.eof"}
        self._interval = interval
        self._stop = threading.Event()
        self._state: tuple[bool, str] = (False, "not checked yet")
        self._thread = threading.Thread(target=self._run, name="ssegate-kafka-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def kafka_status(self) -> tuple[bool, str]:
        return self._state

    def _run(self) -> None:
        from confluent_kafka.admin import AdminClient

        admin_config = {
            k: v
            for k, v in self._config.items()
            if not k.startswith(("group.", "enable.", "auto.", "queued.", "fetch."))
        }
        admin = AdminClient(admin_config)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                metadata = admin.list_topics(timeout=self._interval)
                self._state = (True, f"ok ({len(metadata.brokers)} brokers)")
            except Exception as exc:
                self._state = (False, f"unreachable: {exc}")
            self._stop.wait(max(self._interval - (time.monotonic() - started), 0.5))


async def serve(
    loaded: LoadedConfig,
    stop: asyncio.Event,
    *,
    on_listening: Callable[[list[tuple[str, int]]], None] | None = None,
) -> None:
    """Serve until `stop` is set, then end every stream cleanly and return."""
    loop = asyncio.get_running_loop()
    config = loaded.config
    metrics = GatewayMetrics()
    fanout = Fanout(config, metrics, loop)
    registry = ConnectionRegistry()
    probe = KafkaProbe(consumer_config(config.kafka.bootstrap_servers, config.kafka.properties))
    gateway = Gateway(
        loaded,
        fanout,
        metrics,
        readiness=probe,
        connection_count=lambda: len(registry.connections),
    )
    probe.start()
    fanout.start({r.topic.resolve({}) for r in loaded.routes if r.topic.is_literal})
    limits = config.limits
    servers = []
    addresses: list[tuple[str, int]] = []
    try:
        for listener in config.listeners:
            try:
                server = await loop.create_server(
                    lambda: HttpProtocol(gateway, limits, registry, loop),
                    listener.host,
                    listener.port,
                    backlog=listener.backlog,
                    reuse_address=True,
                )
            except OSError as exc:
                raise SsegateError(
                    f"cannot listen on {listener.host}:{listener.port}: {exc.strerror or exc}"
                ) from exc
            servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                addresses.append((host, port))
                logger.info("listening on http://%s:%d", host, port)
        if on_listening is not None:
            on_listening(addresses)
        await stop.wait()
    finally:
        logger.info("shutting down: ending %d streams", fanout.open_streams)
        registry.accepting = False
        for server in servers:
            server.close()
        fanout.end_all("shutdown")
        for connection in list(registry.connections):
            connection.shutdown()
        if registry.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(registry.drained.wait(), SHUTDOWN_GRACE)
        await fanout.close()
        probe.stop()


def run(loaded: LoadedConfig) -> int:
    """Run one gateway process until SIGINT or SIGTERM."""
    import uvloop

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(loaded, stop)

    uvloop.run(main())
    return 0
