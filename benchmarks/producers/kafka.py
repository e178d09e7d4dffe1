"""Records into Kafka: paced (a producer process) or in bulk (catch-up's history)."""

from __future__ import annotations

import time
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Event
from typing import Any

from benchmarks.producers.pacing import Paced, ProducerHandle
from benchmarks.records import record_encoder


def producer_config(bootstrap: str) -> dict[str, Any]:
    # linger.ms 1: a record waits at most 1 ms to share a request (librdkafka's default
    # is 5 ms, which would count against every server's latency alike). Idempotence (fix):
    # on a starved machine librdkafka retried timed-out requests and wrote some records
    # twice (a quick catch-up saw 3,689 repeats, the same for every server); it needs
    # acks=all, which on the one-broker cluster waits for no more than acks=1 did.
    return {
        "bootstrap.servers": bootstrap,
        "linger.ms": 1,
        "acks": "all",
        "enable.idempotence": True,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    }


def _paced_main(
    *,
    bootstrap: str,
    topic: str,
    rate: float,
    partitions: list[int] | None,
    keys: list[str],
    stop: Event,
    ready: Event,
    last_seq: SynchronizedArray[int],
    sent: Synchronized[int],
    errors: Synchronized[int],
    shared_rate: Synchronized[float],
    encoding: str = "json",
) -> None:
    from confluent_kafka import Producer

    producer = Producer(producer_config(bootstrap))
    producer.list_topics(topic, timeout=30)
    encoded_keys = [key.encode() for key in keys]
    make_record = record_encoder(encoding)
    seqs = [0] * len(keys)
    failed = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    paced = Paced(rate, shared_rate)
    ready.set()
    index = 0
    count_keys = len(keys)
    while True:
        due = paced.due(stop)
        if not due:
            break
        for _ in range(due):
            slot = index % count_keys
            seq = seqs[slot]
            seqs[slot] = seq + 1
            value = make_record(keys[slot], seq, time.time_ns())
            if partitions is None:
                producer.produce(topic, value, encoded_keys[slot], on_delivery=on_delivery)
            else:
                producer.produce(
                    topic,
                    value,
                    encoded_keys[slot],
                    partition=partitions[slot],
                    on_delivery=on_delivery,
                )
            last_seq[slot] = seq
            index += 1
        sent.value = index
        producer.poll(0)
    producer.flush(60)
    errors.value = failed


def kafka_producer(
    bootstrap: str,
    topic: str,
    keys: list[str],
    rate: float,
    partitions: list[int] | None = None,
    encoding: str = "json",
) -> ProducerHandle:
    """A paced producer; `partitions[i]` pins key i to a partition (None: by key hash).
    `encoding`: the records as JSON, or as Avro (records.py)."""
    return ProducerHandle(
        _paced_main,
        keys,
        {
            "bootstrap": bootstrap,
            "topic": topic,
            "rate": rate,
            "partitions": partitions,
            "encoding": encoding,
        },
    )


def produce_bulk(
    bootstrap: str, topic: str, keys: list[str], count: int, encoding: str = "json"
) -> dict[str, int]:
    """Produce `count` records as fast as librdkafka takes them; the last seq per key."""
    from confluent_kafka import Producer

    config = producer_config(bootstrap)
    config["linger.ms"] = 20
    config["batch.size"] = 1_000_000
    producer = Producer(config)
    encoded_keys = [key.encode() for key in keys]
    make_record = record_encoder(encoding)
    seqs = [0] * len(keys)
    for index in range(count):
        slot = index % len(keys)
        seq = seqs[slot]
        seqs[slot] = seq + 1
        value = make_record(keys[slot], seq, time.time_ns())
        while True:
            try:
                producer.produce(topic, value, encoded_keys[slot], partition=slot)
                break
            except BufferError:
                producer.poll(0.05)
        if index % 10000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} records were not delivered to {topic}")
    return {key: seq - 1 for key, seq in zip(keys, seqs, strict=True) if seq}
