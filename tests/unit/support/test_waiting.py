"""`until` and `until_sync`: return the accepted value, fail saying what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.support.waiting import WaitTimeout, until, until_sync

FAST = 0.001  # poll interval for these tests: they count polls, not seconds


def flips_after(calls: int) -> Callable[[], int]:
    """A predicate that returns 0 for its first `calls - 1` calls, then the call number."""
    seen = 0

    def predicate() -> int:
        nonlocal seen
        seen += 1
        return seen if seen >= calls else 0

    return predicate


async def test_returns_the_first_truthy_value_of_a_sync_predicate() -> None:
    assert await until(flips_after(5), 5, interval=FAST) == 5


async def test_returns_the_first_truthy_value_of_an_async_predicate() -> None:
    sync = flips_after(3)

    async def predicate() -> int:
        await asyncio.sleep(0)
        return sync()

    assert await until(predicate, 5, interval=FAST) == 3


async def test_accept_decides_and_the_whole_value_is_returned() -> None:
    statuses = iter([200, 200, 503])
    got = await until(
        lambda: {"status": next(statuses)}, 5, interval=FAST, accept=lambda r: r["status"] == 503
    )
    assert got == {"status": 503}


async def test_a_true_first_poll_returns_at_once_without_sleeping() -> None:
    started = time.monotonic()
    assert await until(lambda: "ready", 5, interval=10) == "ready"
    assert time.monotonic() - started < 1


async def test_timeout_names_what_was_awaited_and_the_last_value() -> None:
    counter = iter(range(1000))
    with pytest.raises(WaitTimeout) as caught:
        await until(lambda: [next(counter)] * 0, 0.05, interval=FAST, message="events to arrive")
    text = str(caught.value)
    assert text.startswith("waited 0.05 s for events to arrive (")
    assert text.endswith("polls); last value: []")
    assert isinstance(caught.value, AssertionError)  # pytest reports it as a failed check


async def test_without_a_message_the_predicate_is_named() -> None:
    def gateway_answers() -> bool:
        return False

    with pytest.raises(WaitTimeout, match=r"for .*gateway_answers .*last value: False$"):
        await until(gateway_answers, 0.02, interval=FAST)


async def test_ignored_exceptions_mean_not_yet_and_are_reported() -> None:
    attempts = iter([ConnectionRefusedError("refused"), ConnectionRefusedError("refused"), 7])

    def connect() -> int:
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, int)
        return outcome

    assert await until(connect, 5, interval=FAST, ignoring=(OSError,)) == 7

    def refuse() -> int:
        raise ConnectionRefusedError("refused")

    with pytest.raises(WaitTimeout, match=r"last value: ConnectionRefusedError\('refused'\)$"):
        await until(refuse, 0.02, interval=FAST, ignoring=(OSError,))


async def test_other_exceptions_propagate_at_once() -> None:
    def broken() -> bool:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await until(broken, 5, interval=FAST, ignoring=(OSError,))


async def test_a_hung_async_poll_is_cancelled_at_the_deadline() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(60)
        return True

    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"last value: no poll finished$"):
        await until(hangs, 0.05, message="an answer")
    assert time.monotonic() - started < 1


async def test_the_predicates_own_timeout_is_an_error_not_a_wait() -> None:
    async def times_out() -> bool:
        await asyncio.wait_for(asyncio.sleep(60), 0.001)
        return True

    with pytest.raises(TimeoutError) as caught:
        await until(times_out, 5, interval=FAST)
    assert not isinstance(caught.value, WaitTimeout)


async def test_a_long_last_value_is_shortened() -> None:
    with pytest.raises(WaitTimeout, match=r"\.\.\. \(10002 characters\)$"):
        await until(lambda: "x" * 10_000, 0.02, interval=FAST, accept=lambda v: False)


def test_sync_twin_returns_the_accepted_value() -> None:
    assert until_sync(flips_after(4), 5, interval=FAST) == 4
    assert until_sync(lambda: 503, 5, interval=FAST, accept=lambda s: s == 503) == 503


def test_sync_twin_times_out_with_the_same_message() -> None:
    def refuse() -> int:
        raise ConnectionRefusedError("refused")

    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        until_sync(refuse, 0.05, interval=FAST, message="/ready", ignoring=(OSError,))
    assert time.monotonic() - started < 1
    assert str(caught.value).startswith("waited 0.05 s for /ready (")
    assert str(caught.value).endswith("polls); last value: ConnectionRefusedError('refused')")
