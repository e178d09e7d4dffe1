"""Replay work in time slices, so the loop keeps accepting and reading between them.

Every resuming stream replays from the ring in chunks. Scheduled one `call_soon` each, a
storm of 10,000 resumes put 10,000 chunks in one loop iteration: the loop polled its
sockets again only after all of them ran, accepts waited, and the kernel's listen queue
overflowed (clients then wait for SYN retries: 1, 3, 7 s). The pump runs queued work in
FIFO order in one slice per loop iteration, then yields to I/O; what is left runs in the
next iteration. A slice lasts `budget` seconds, or as long as the rest of the previous
iteration took, up to `MAX_SLICE` (docs/decisions/0007-sources-and-overload.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

logger = logging.getLogger("ssegate.fanout")

# Seconds of queued work per loop iteration: a few batches' worth of writes. The loop polls
# its sockets at least this often while work is queued.
DEFAULT_BUDGET = 0.005
MAX_SLICE = 0.1  # the longest slice: the loop polls its sockets at least this often


class TurnPump:
    """A FIFO of callbacks run in slices of at most `budget` seconds per loop iteration."""

    __slots__ = ("_armed", "_budget", "_call_soon", "_clock", "_last_end", "_queue")

    def __init__(
        self,
        call_soon: Callable[[Callable[[], None]], object],
        *,
        budget: float = DEFAULT_BUDGET,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._call_soon = call_soon
        self._budget = budget
        self._clock = clock
        self._queue: deque[Callable[[], None]] = deque()
        self._armed = False
        self._last_end: float | None = None  # when the last slice ended

    @classmethod
    def on(cls, loop: asyncio.AbstractEventLoop, budget: float = DEFAULT_BUDGET) -> TurnPump:
        return cls(loop.call_soon, budget=budget)

    def __repr__(self) -> str:
        return f"<TurnPump queued={len(self._queue)}>"

    def __len__(self) -> int:
        return len(self._queue)

    def __call__(self, callback: Callable[[], None]) -> None:
        """Queue `callback` to run on a later loop iteration (the `schedule` of a context)."""
        self._queue.append(callback)
        if not self._armed:
            self._armed = True
            self._call_soon(self._run)

    def _run(self) -> None:
        queue = self._queue
        now = self._clock()
        # At least `budget`, and as long as the rest of the loop took since the last slice
        # (capped): queued work gets about half the loop while the loop is busy with live
        # writes too, instead of 5 ms in every 75 ms iteration (a resume storm under load
        # then took minutes), and the loop still polls its sockets every iteration.
        since = now - self._last_end if self._last_end is not None else 0.0
        deadline = now + min(max(self._budget, since), MAX_SLICE)
        # Only what was queued before this slice began: work that queues more work (a
        # replay's next chunk) waits for the next iteration, after the loop polled.
        for _ in range(len(queue)):
            callback = queue.popleft()
            try:
                callback()
            except Exception:  # one stream's failure must not stall the others' replays
                logger.exception("queued fan-out work failed")
            if self._clock() >= deadline:
                break
        if queue:
            self._last_end = self._clock()
            self._call_soon(self._run)
        else:
            self._last_end = None
            self._armed = False
