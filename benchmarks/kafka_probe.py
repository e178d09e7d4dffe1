"""Kafka's own share of the latency: a plain consumer timing the same records.

During a Kafka target's window, a thread in the harness reads the feed's topic the way
ssegate's reader does (librdkafka, every partition assigned, `consume(1, timeout)` then
drain, default fetch settings) and records `receive - t` for every record. What a server
adds to the produce-to-receive latency is its figure minus this one.
"""

from __future__ import annotations

import re
import threading
import time
from array import array
from typing import Any

from benchmarks.records import avro_timestamp
from benchmarks.stats import percentiles_ms

TIMESTAMP = re.compile(rb',"t":(\d+)')


class KafkaLatencyProbe:
    """A consumer thread measuring produce-to-consume latency on one topic."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, encoding: str = "json") -> None:
        self.bootstrap = bootstrap
        self.avro = encoding == "avro"  # records.py: `t` is the third Avro field
        self.topic = topic
        self.partitions = partitions
        self.samples: array[int] = array("q")
        self._recording = False
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-probe", daemon=True)

    def start(self) -> KafkaLatencyProbe:
        self._thread.start()
        self._ready.wait(30)
        return self

    def record(self, on: bool) -> None:
        if on:
            self.samples = array("q")
        self._recording = on

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(10)
        return percentiles_ms(self.samples)

    def _run(self) -> None:
        from confluent_kafka import OFFSET_END, Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "bench-kafka-probe",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(self.topic, p, OFFSET_END) for p in range(self.partitions)])
        self._ready.set()
        try:
            while not self._stop.is_set():
                messages = consumer.consume(1, 0.2)
                if not messages:
                    continue
                messages.extend(consumer.consume(2000, 0))
                now = time.time_ns()
                if not self._recording:
                    continue
                for message in messages:
                    value = message.value()
                    if message.error() is None and value:
                        if self.avro:
                            sent = avro_timestamp(value)
                            if sent is not None:
                                self.samples.append(now - sent)
                            continue
                        found = TIMESTAMP.search(value, 0, 80)
                        if found:
                            self.samples.append(now - int(found[1]))
        finally:
            consumer.close()
