"""What every server under test offers the scenarios."""

from __future__ import annotations

import signal
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from benchmarks.producers.pacing import ProducerHandle


@dataclass(frozen=True)
class Feed:
    """A source of events a scenario streams: a Kafka topic (or an nchan channel family)."""

    topic: str
    filtered: bool = False  # streams name one key each and get only its records
    start: str = "latest"  # where a stream without an id begins: latest or earliest
    partitions: int = 1


@dataclass
class Context:
    """What the targets of one benchmark run share."""

    bootstrap: str  # the Kafka broker
    run_dir: Path  # scratch space: configs, logs
    broker_pid: int | None = None


class Target(ABC):
    """A server under test. Subclasses start it for a set of feeds and say how to reach it."""

    name = ""
    label = ""
    id_kind = "ssegate"
    terminator = b"\n\n"
    kafka = True  # records reach it through Kafka (else through its own publisher)
    listen_backlog: int | None = None  # the backlog its listener asks for (None: unknown)
    tls = False  # the streams' port speaks TLS; `control_port` stays plain (health, publish)
    encoding = "json"  # how its producer writes the records: json, or avro (records.py)

    def __init__(self, context: Context) -> None:
        self.context = context
        self.port = 0  # where the load generator opens streams
        self.control_port = 0  # health checks and publishing: `port` unless it speaks TLS
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def available(self) -> str | None:
        """None when the target can run here, else why not (installs happen here)."""
        return None

    @abstractmethod
    def start(self, feeds: list[Feed], workers: int = 1) -> None: ...

    @abstractmethod
    def path(self, feed: Feed, key: str | None = None) -> str: ...

    def producer(
        self, feed: Feed, keys: list[str], rate: float, partitions: list[int] | None
    ) -> ProducerHandle:
        from benchmarks.producers.kafka import kafka_producer

        return kafka_producer(
            self.context.bootstrap, feed.topic, keys, rate, partitions, self.encoding
        )

    def stream_headers(self, index: int) -> str:
        """Extra request header lines stream `index` sends (a guarded target's token)."""
        return ""

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None else []

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
