"""Clients that come from Zilla keep their place: ids in Zilla's form (offset -1 for a
partition it delivered nothing from, an offset one lower for a partition whose records were
all filtered out, entries in fetch order) resume with no gap and no duplicate."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.kafka import KafkaCluster, Record
from tests.support.sse_client import metric_value, open_stream
from tests.support.waiting import until

pytestmark = pytest.mark.kafka


def zilla_id(entries: list[tuple[int, int]], count: int) -> str:
    """Zilla's binary progress: kind 1, count, then (partition, offset) zig-zag varints
    (all values here fit one byte), in the order given."""
    raw = bytes([1, count << 1])
    for partition, offset in entries:
        raw += bytes([partition << 1, (offset << 1) if offset >= 0 else 1])
    return base64.urlsafe_b64encode(raw).decode()


def test_the_helper_writes_zillas_bytes() -> None:
    assert zilla_id([(0, -1), (1, 3), (2, 1)], 3) == "AQYAAQIGBAI="
    assert zilla_id([(1, 3), (0, -1), (2, 2)], 3) == "AQYCBgABBAQ="


@pytest.mark.parametrize("start", ["earliest", "latest"])
async def test_a_zilla_id_resumes_with_no_gap_and_no_duplicate(
    kafka: KafkaCluster, gateways: Callable[..., GatewayProcess], start: str
) -> None:
    topic = kafka.new_topic(partitions=3)
    gateway = gateways(
        [
            {
                "path": "/k/{key}",
                "topic": topic,
                "filters": [{"key": "${params.key}"}],
                "start": start,
            }
        ]
    )
    # Zilla's run: partition 1 holds only other keys, then key A's first record on
    # partition 2, while partition 0 is empty. Zilla's id for it: {p0: -1, p1: 3, p2: 1}.
    kafka.produce(topic, [Record(b"b%d" % n, key=b"B", partition=1) for n in range(4)])
    kafka.produce(topic, [Record(b"a1", key=b"A", partition=2)])
    last_id = zilla_id([(1, 3), (0, -1), (2, 1)], 3)  # in Zilla's fetch order
    # While the client is away: A on every partition, and more B.
    kafka.produce(
        topic,
        [
            Record(b"a2", key=b"A", partition=0),
            Record(b"b4", key=b"B", partition=1),
            Record(b"a3", key=b"A", partition=1),
            Record(b"a4", key=b"A", partition=2),
        ],
    )
    # `latest` means records after the reconnect as the gateway knows it: let its reader
    # see the nine records first.
    read = f'ssegate_kafka_records_read_total{{topic="{topic}"}}'
    await until(lambda: metric_value(gateway.port, read), 20, accept=lambda n: n == 9)
    stream = await open_stream(gateway.port, "/k/A", headers={"Last-Event-ID": last_id})
    assert stream.response.status == 200
    # Earliest: everything after a1, with a2 from the partition Zilla listed at -1 (read
    # from its beginning); a1 is not sent again. Latest, as Zilla: the -1 partition starts
    # at its end, so a2 (produced there before the reconnect) is not owed; the listed
    # partitions resume exactly.
    owed = [b"a2", b"a3", b"a4"] if start == "earliest" else [b"a3", b"a4"]
    got = await stream.next_events(len(owed), timeout=20)
    assert sorted(e.data.encode() for e in got) == owed
    assert await stream.quiet_for(0.5) == []
    kafka.produce(topic, [Record(b"a5", key=b"A", partition=0)])
    assert [e.data for e in await stream.next_events(1, timeout=20)] == ["a5"]
    outcome = 'ssegate_resume_total{route="/k/{key}",outcome="ring"}'
    assert await metric_value(gateway.port, outcome) == 1  # a valid id, not "invalid"
    await stream.close()
