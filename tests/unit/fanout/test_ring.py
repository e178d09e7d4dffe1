"""The ring's promise: what it covers, what it evicts, and the order it replays in."""

from __future__ import annotations

import pytest

from ssegate.fanout.ring import TopicRing
from ssegate.sources.record import RECORD_OVERHEAD, Record


def record(partition: int, offset: int, value: bytes = b"v") -> Record:
    return Record(partition, offset, None, value)


def positions(records: list[Record]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in records]


def test_covers_from_where_the_reader_started() -> None:
    ring = TopicRing(10, 1 << 20)
    ring.start_partition(0, 100, log_start=False)
    ring.start_partition(1, 5, log_start=True)
    assert not ring.covers(0, 99)
    assert ring.covers(0, 100)
    assert ring.covers(1, 0), "the log start: nothing older exists"
    assert not ring.covers(2, 0), "a partition never started is not covered"
    assert (ring.gap(1, 0), ring.gap(1, 3), ring.gap(1, 5), ring.gap(0, 99)) == (5, 2, 0, 0)


def two_partitions(order: list[tuple[int, int]]) -> TopicRing:
    """A ring of partitions 0 and 1 from their log start, holding `order` in that order."""
    ring = TopicRing(100, 1 << 20)
    ring.start_partition(0, 0, log_start=True)
    ring.start_partition(1, 0, log_start=True)
    for partition, offset in order:
        ring.append(record(partition, offset))
    return ring


def test_replay_in_reader_order_from_each_partition_position() -> None:
    order = [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (1, 2)]
    ring = two_partitions(order)
    assert positions(list(ring.replay({}))) == order
    assert positions(list(ring.replay({0: 1, 1: 2}))) == [(0, 1), (0, 2), (1, 2)]
    assert positions(list(ring.replay({0: 3, 1: 3}))) == []


def test_replay_with_a_limit_is_right_for_that_many() -> None:
    ring = two_partitions([(0, 0), (0, 1), (0, 2), (1, 0), (0, 3), (1, 1)])
    assert positions(list(ring.replay({}, limit=3))) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert positions(list(ring.replay({0: 1}, limit=2))[:2]) == [(0, 1), (0, 2)]


def test_eviction_by_count_moves_coverage() -> None:
    ring = TopicRing(3, 1 << 20)
    ring.start_partition(0, 0, log_start=True)
    ring.start_partition(1, 0, log_start=True)
    for partition, offset in [(0, 0), (1, 0), (0, 1), (0, 2)]:
        ring.append(record(partition, offset))
    assert len(ring) == 3
    assert not ring.covers(0, 0)
    assert ring.covers(0, 1)
    assert ring.covers(1, 0)
    ring.append(record(1, 1))  # evicts (1, 0)
    assert not ring.covers(1, 0)
    assert ring.covers(1, 1)
    assert ring.gap(1, 0) == 0, "evicted, not deleted: a catch-up reader finds it in Kafka"
    assert positions(list(ring.replay({0: 1, 1: 1}))) == [(0, 1), (0, 2), (1, 1)]
    assert ring.statistics().evicted == 2


def test_eviction_by_bytes_keeps_at_least_one() -> None:
    ring = TopicRing(100, 2 * (RECORD_OVERHEAD + 10))
    ring.start_partition(0, 0, log_start=True)
    for offset in range(3):
        ring.append(record(0, offset, b"x" * 10))
    assert positions(list(ring.replay({}))) == [(0, 1), (0, 2)]
    ring.append(record(0, 3, b"x" * 10_000))  # larger than the whole budget
    assert positions(list(ring.replay({}))) == [(0, 3)]
    assert ring.statistics().bytes == RECORD_OVERHEAD + 10_000


def test_replay_is_a_snapshot() -> None:
    ring = TopicRing(2, 1 << 20)
    ring.start_partition(0, 0, log_start=True)
    ring.append(record(0, 0))
    ring.append(record(0, 1))
    replay = ring.replay({})
    ring.append(record(0, 2))  # evicts offset 0 while a replay is under way
    assert positions(list(replay)) == [(0, 0), (0, 1)]


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one record and one byte"):
        TopicRing(0, 10)
