"""Running the gateway: listeners, the Kafka readiness probe, signals, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import resource
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from joserfc.jwk import KeySet

from ssegate.admission import Admission, AdmissionLimits
from ssegate.app import Gateway, ReadinessSource
from ssegate.errors import SsegateError
from ssegate.fanout.context import FanoutOptions
from ssegate.fanout.service import Fanout
from ssegate.http.exchange import ConnectionRegistry
from ssegate.http.negotiate import protocol_factory
from ssegate.http.tls import ServerTls, TlsConfigError
from ssegate.kafka.source import KafkaSources
from ssegate.observe.looplag import LoopLag
from ssegate.observe.metrics import GatewayMetrics
from ssegate.schemas.model import ValueModel
from ssegate.schemas.sources import ModeledSources
from ssegate.sources.protocol import Sources
from ssegate.sse.stream import CloseReason
from ssegate.wiring import CompiledConfig

logger = logging.getLogger("ssegate.server")

# Seconds a client has to finish the TLS handshake (Zilla: 10 s); then it is dropped.
TLS_HANDSHAKE_TIMEOUT = 10.0
# /ready notices an outage within PROBE_INTERVAL + PROBE_TIMEOUT seconds.
PROBE_INTERVAL = 2.0
PROBE_TIMEOUT = 2.0


class KafkaProbe(ReadinessSource):
    """Asks the cluster for metadata every few seconds, on a thread, for `/ready`."""

    def __init__(self, bootstrap_servers: str, properties: Mapping[str, Any]) -> None:
        # The user's librdkafka properties (SASL, SSL) apply to the probe too.
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            **properties,
            "logger": logging.getLogger("ssegate.kafka.librdkafka"),
        }
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

        admin = AdminClient(self._config)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                metadata = admin.list_topics(timeout=PROBE_TIMEOUT)
                self._state = (True, f"ok ({len(metadata.brokers)} brokers)")
            except Exception as exc:
                self._state = (False, f"unreachable: {exc}")
            self._stop.wait(max(PROBE_INTERVAL - (time.monotonic() - started), 0.5))


def raise_fd_limit() -> None:
    """Lift the soft limit on open files to the hard one: every stream is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logger.debug("open files limit: %d", max(soft, hard))


async def serve(
    compiled: CompiledConfig,
    stop: asyncio.Event,
    *,
    on_listening: Callable[[list[tuple[str, int]]], None] | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve until `stop` is set, then end every stream cleanly and return."""
    loop = asyncio.get_running_loop()
    config = compiled.config
    metrics = GatewayMetrics()
    kafka_sources = KafkaSources.from_config(config.kafka, config.sse, loop)
    sources: Sources = kafka_sources
    if compiled.models:
        models = {key: ValueModel(spec) for key, spec in compiled.models.items()}
        invalid = metrics.invalid_records

        def count_invalid(topic: str, reason: str) -> None:
            invalid.labels(topic, reason).inc()

        sources = ModeledSources(kafka_sources, models, loop, count_invalid)
    fanout = Fanout(FanoutOptions.from_config(config), metrics, sources, loop)
    loop_lag = LoopLag(loop)
    metrics.registry.on_collect(lambda: metrics.loop_lag.labels().set(loop_lag.lag))
    limits = config.limits
    admission = Admission(
        AdmissionLimits(
            max_streams=limits.max_streams,
            max_streams_per_ip=limits.max_streams_per_ip,
            max_topics=limits.max_topics,
            max_loop_lag=float(limits.max_loop_lag),
            reconnect_budget=limits.reconnect_budget,
        ),
        fanout,
        loop_lag,
    )
    registry = ConnectionRegistry()
    probe = KafkaProbe(config.kafka.bootstrap_servers, config.kafka.properties)
    gateway = Gateway(
        compiled,
        fanout,
        admission,
        metrics,
        readiness=probe,
        connection_count=lambda: len(registry.connections),
    )
    remote_keys = {n: g.remote for n, g in compiled.guards.items() if g.remote is not None}
    for name, guard in compiled.guards.items():
        inline = guard.keys if guard.remote is None else None
        metrics.guard_keys.labels(name).set(len(inline.keys) if isinstance(inline, KeySet) else 0)

    def guard_gauges() -> None:
        for name, remote in remote_keys.items():
            metrics.guard_keys.labels(name).set(len(remote.keys.keys) if remote.keys else 0)
            metrics.guard_keys_failing.labels(name).set(1 if remote.error else 0)

    metrics.registry.on_collect(guard_gauges)
    catalogs = compiled.catalogs

    def catalog_gauges() -> None:
        for name, catalog in catalogs.items():
            metrics.catalog_available.labels(name).set(1 if catalog.state == "ok" else 0)
            metrics.catalog_fetches.labels(name, "sent").set(catalog.fetches)
            metrics.catalog_fetches.labels(name, "failed").set(catalog.failures)

    metrics.registry.on_collect(catalog_gauges)
    for catalog in catalogs.values():
        await catalog.start()
    for remote in remote_keys.values():
        remote.start()
    probe.start()
    loop_lag.start()
    fanout.start(gateway.literal_topics)
    servers = []
    addresses: list[tuple[str, int]] = []
    watchers: list[asyncio.Task[None]] = []
    try:
        for index, (listener, tls) in enumerate(zip(config.listeners, compiled.tls, strict=True)):
            scheme = "http" if tls is None else "https"
            try:
                server = await loop.create_server(
                    protocol_factory(gateway, limits, listener, registry, loop),
                    listener.host,
                    listener.port,
                    backlog=listener.backlog,
                    reuse_address=True,
                    reuse_port=reuse_port,
                    ssl=tls.context if tls is not None else None,
                    ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if tls is not None else None,
                )
            except OSError as exc:
                raise SsegateError(
                    f"cannot listen on {listener.host}:{listener.port}: {exc.strerror or exc}"
                ) from exc
            servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                addresses.append((host, port))
                logger.info("listening on %s://%s:%d", scheme, host, port)
            if tls is not None:
                log_validity(tls, f"listeners[{index}]")
                if tls.settings.reload_check > 0:
                    watchers.append(loop.create_task(_watch_tls(tls, f"listeners[{index}]")))
        if on_listening is not None:
            on_listening(addresses)
        await stop.wait()
    finally:
        for watcher in watchers:
            watcher.cancel()
        for remote in remote_keys.values():
            remote.stop()
        await _drain(servers, registry, fanout, float(config.server.shutdown_timeout))
        for catalog in catalogs.values():
            await catalog.stop()
        loop_lag.stop()
        probe.stop()


async def _watch_tls(tls: ServerTls, name: str) -> None:
    """Reload a listener's certificates when their files change (`http.tls` rule 6)."""
    while True:
        await asyncio.sleep(tls.settings.reload_check)
        if tls.changed():
            reload_tls(tls, name)


def reload_tls(tls: ServerTls, name: str) -> None:
    """Load a listener's certificates again; a problem is logged and changes nothing."""
    try:
        tls.reload()
    except TlsConfigError as exc:
        logger.error("%s: certificates not reloaded, the previous ones stay: %s", name, exc)
        return
    logger.info("%s: certificates reloaded; new connections get them", name)
    log_validity(tls, name)


def log_validity(tls: ServerTls, name: str) -> None:
    """Warn of certificates clients will refuse, or soon will (`http.tls` EXPIRY_WARNING)."""
    for notice in tls.validity(datetime.datetime.now(datetime.UTC)):
        logger.warning("%s: %s", name, notice.message)


async def _drain(
    servers: list[asyncio.Server],
    registry: ConnectionRegistry,
    fanout: Fanout,
    within: float,
) -> None:
    """Stop accepting, end every stream with a checkpoint, wait for the connections to go.

    Everything happens within `within` seconds; connections still open then are dropped.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    logger.info("shutting down: ending %d streams", fanout.open_streams)
    registry.accepting = False
    for server in servers:
        server.close()
    fanout.end_all(CloseReason.SHUTDOWN)
    for connection in list(registry.connections):
        connection.shutdown()
    if registry.connections:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(registry.drained.wait(), max(deadline - loop.time(), 0))
    for connection in list(registry.connections):
        connection.abort()
    await fanout.close(max(deadline - loop.time(), 0.1))


def _reload_all_tls(compiled: CompiledConfig) -> None:
    """SIGHUP: every TLS listener loads its certificates again, changed or not."""
    for index, tls in enumerate(compiled.tls):
        if tls is not None:
            reload_tls(tls, f"listeners[{index}]")


def run(
    compiled: CompiledConfig,
    *,
    reuse_port: bool = False,
    on_listening: Callable[[list[tuple[str, int]]], None] | None = None,
) -> int:
    """Run one gateway process until SIGINT or SIGTERM; SIGHUP reloads certificates."""
    import uvloop

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, _reload_all_tls, compiled)
        await serve(compiled, stop, reuse_port=reuse_port, on_listening=on_listening)

    uvloop.run(main())
    return 0
