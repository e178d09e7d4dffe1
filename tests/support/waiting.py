"""Wait for a condition instead of sleeping for a guessed time.

`until` polls a callable until its value is accepted and returns that value; on timeout it
fails with what was awaited and the last value seen, so a failing test says what it waited
for and how far it got. `until_sync` is the same for code that runs outside an event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

DEFAULT_INTERVAL = 0.05  # seconds between polls: short next to any wait these tests make
_REPR_LIMIT = 2000  # a stream's raw bytes or a /metrics body can be long; the start suffices


class WaitTimeout(AssertionError):
    """The awaited condition did not hold in time (an assertion failure for pytest)."""


class _NothingYet:
    """The last value before any poll finished (e.g. every poll timed out)."""

    def __repr__(self) -> str:
        return "no poll finished"


_NOTHING_YET = _NothingYet()


@overload
async def until(
    predicate: Callable[[], Awaitable[T]],
    timeout: float,
    *,
    interval: float = ...,
    message: str | None = ...,
    accept: Callable[[T], object] = ...,
    ignoring: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def until(
    predicate: Callable[[], T],
    timeout: float,
    *,
    interval: float = ...,
    message: str | None = ...,
    accept: Callable[[T], object] = ...,
    ignoring: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def until(
    predicate: Callable[[], Any],
    timeout: float,
    *,
    interval: float = DEFAULT_INTERVAL,
    message: str | None = None,
    accept: Callable[[Any], object] = bool,
    ignoring: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll `predicate` (sync or async) until `accept` holds for its value; return the value.

    `accept` defaults to truthiness. `message` says what is awaited; without it the
    predicate's name is used.
    Exceptions of the `ignoring` types count as "not yet" (a server still restarting);
    any other exception propagates at once. A poll still running at the deadline is
    cancelled. Raises `WaitTimeout` naming the condition and the last value or exception.
    """
    last: object = _NOTHING_YET
    polls = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # The deadline bounds the polls too: a hung predicate must not outlast the timeout.
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            while True:
                polls += 1
                try:
                    value = predicate()
                    if inspect.isawaitable(value):
                        value = await value
                except ignoring as exc:
                    last = exc
                else:
                    if accept(value):
                        return value
                    last = value
                await asyncio.sleep(min(interval, max(deadline - loop.time(), 0)))
    except TimeoutError:
        if not scope.expired():
            raise  # the predicate's own timeout, not ours: a real error
    raise WaitTimeout(_failure(predicate, message, timeout, polls, last))


def until_sync(
    predicate: Callable[[], T],
    timeout: float,
    *,
    interval: float = DEFAULT_INTERVAL,
    message: str | None = None,
    accept: Callable[[T], object] = bool,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """`until` for blocking code: the same contract, except that a poll cannot be cancelled,
    so `predicate` must bound its own blocking (e.g. a socket timeout)."""
    last: object = _NOTHING_YET
    polls = 0
    deadline = time.monotonic() + timeout
    while True:
        polls += 1
        try:
            value = predicate()
        except ignoring as exc:
            last = exc
        else:
            if accept(value):
                return value
            last = value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(_failure(predicate, message, timeout, polls, last))
        time.sleep(min(interval, remaining))


def _failure(
    predicate: Callable[[], Any],
    message: str | None,
    timeout: float,
    polls: int,
    last: object,
) -> str:
    what = message or getattr(predicate, "__qualname__", repr(predicate))
    shown = repr(last)
    if len(shown) > _REPR_LIMIT:
        shown = f"{shown[:_REPR_LIMIT]}... ({len(shown)} characters)"
    return f"waited {timeout:g} s for {what} ({polls} polls); last value: {shown}"
