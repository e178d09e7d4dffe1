"""The turn pump: queued work runs in FIFO slices, leaving the loop room for I/O."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from ssegate.fanout.pump import TurnPump


class Loop:
    """`call_soon` that queues, and a clock each callback moves by 1 ms."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], None]] = []
        self.now = 0.0

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.soon.append(callback)

    def clock(self) -> float:
        return self.now

    def iteration(self) -> None:
        """One loop iteration: the callbacks that were ready when it began."""
        ready, self.soon = self.soon, []
        for callback in ready:
            callback()


def work(log: list[int], loop: Loop, n: int) -> Callable[[], None]:
    def run() -> None:
        log.append(n)
        loop.now += 0.001

    return run


def test_work_runs_in_slices_of_the_budget_in_order() -> None:
    loop = Loop()
    pump = TurnPump(loop.call_soon, budget=0.003, clock=loop.clock)
    log: list[int] = []
    for n in range(7):
        pump(work(log, loop, n))
    assert len(loop.soon) == 1  # one callback armed, however much is queued
    loop.iteration()
    assert log == [0, 1, 2]
    loop.iteration()
    assert log == [0, 1, 2, 3, 4, 5]
    loop.iteration()
    assert log == list(range(7))
    assert loop.soon == []
    assert len(pump) == 0


def test_work_queued_by_work_waits_for_the_next_iteration() -> None:
    loop = Loop()
    pump = TurnPump(loop.call_soon, budget=1.0, clock=loop.clock)
    log: list[str] = []

    def first() -> None:
        log.append("first")
        pump(lambda: log.append("next chunk"))

    pump(first)
    pump(lambda: log.append("second"))
    loop.iteration()
    assert log == ["first", "second"]
    loop.iteration()
    assert log == ["first", "second", "next chunk"]


def test_a_failing_callback_is_logged_and_the_rest_run(caplog: pytest.LogCaptureFixture) -> None:
    loop = Loop()
    pump = TurnPump(loop.call_soon, budget=1.0, clock=loop.clock)
    log: list[int] = []

    def broken() -> None:
        raise RuntimeError("boom")

    pump(broken)
    pump(lambda: log.append(1))
    with caplog.at_level(logging.ERROR, logger="ssegate.fanout"):
        loop.iteration()
    assert log == [1]
    assert "queued fan-out work failed" in caplog.text
    pump(lambda: log.append(2))  # re-armed afterwards as usual
    loop.iteration()
    assert log == [1, 2]


def test_a_busy_loop_gives_the_queue_as_long_as_the_rest_took() -> None:
    loop = Loop()
    pump = TurnPump(loop.call_soon, budget=0.003, clock=loop.clock)
    log: list[int] = []
    for n in range(40):
        pump(work(log, loop, n))
    loop.iteration()
    assert log == [0, 1, 2]  # the first slice: the budget
    loop.now += 0.010  # the rest of the iteration (live writes, I/O) took 10 ms
    loop.iteration()
    assert log == list(range(13))  # as long again: ten more
    loop.now += 0.5  # a very busy iteration: the slice is capped at 100 ms
    loop.iteration()
    assert log == list(range(40))  # all that was left (27 ms of it)
