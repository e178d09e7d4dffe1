"""The session broker works for what the gateway needs: partitions, keys, headers, tombstones."""

from __future__ import annotations

import pytest

from tests.support.kafka import KafkaCluster, Record

pytestmark = pytest.mark.kafka


def test_keyed_records_with_headers_round_trip(kafka: KafkaCluster) -> None:
    topic = kafka.new_topic(partitions=3)
    sent = [
        Record(
            value=f'{{"seq":{i}}}'.encode(),
            key=f"key-{i % 3}".encode(),
            headers=[("exchange", b"nasdaq"), ("etag", f"rev-{i}".encode())],
            partition=i % 3,
        )
        for i in range(30)
    ]
    delivered = kafka.produce(topic, sent)
    assert [(d.partition, d.offset) for d in delivered] == [(i % 3, i // 3) for i in range(30)]

    received = kafka.read_all(topic, expected=30)
    assert len(received) == 30
    by_position = {(r.partition, r.offset): r for r in received}
    for i, record in enumerate(sent):
        got = by_position[(i % 3, i // 3)]
        assert got.key == record.key
        assert got.value == record.value
        assert got.headers == (("exchange", b"nasdaq"), ("etag", f"rev-{i}".encode()))


def test_tombstone_and_compacted_topic(kafka: KafkaCluster) -> None:
    topic = kafka.new_topic(partitions=1, config={"cleanup.policy": "compact"})
    kafka.produce(topic, [Record(b"v1", key=b"a"), Record(None, key=b"a")])
    first, tombstone = kafka.read_all(topic, expected=2)
    assert (first.key, first.value) == (b"a", b"v1")
    assert (tombstone.key, tombstone.value) == (b"a", None)
