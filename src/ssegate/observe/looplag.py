"""How late the event loop runs: the gateway's overload signal.

A timer asks to run every `interval` seconds and notes how late it actually ran. Every
stream's writes, every accept and every batch share the one loop, so when the loop runs
late everything does: it is the signal that the process has more work than it can do.
`lag` is the largest lateness seen recently (it decays by half every `half_life`
seconds), so one long callback shows up at once and a calm loop reads 0 again soon.
"""

from __future__ import annotations

import asyncio


class LoopLag:
    """Measures the loop's lateness (see the module docstring)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, interval: float = 0.05, half_life: float = 1.0
    ) -> None:
        self._loop = loop
        self._interval = interval
        self._decay = 0.5 ** (interval / half_life)
        self._due = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._lag = 0.0
        self.worst = 0.0  # since start, for /metrics

    @property
    def lag(self) -> float:
        """Seconds: the recent worst lateness, decayed."""
        return self._lag

    def start(self) -> None:
        self._due = self._loop.time() + self._interval
        self._timer = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        now = self._loop.time()
        late = max(now - self._due, 0.0)
        # Each tick decays the old figure once; a long stall counts in full at once.
        self._lag = max(late, self._lag * self._decay)
        self.worst = max(self.worst, late)
        self._due = now + self._interval
        self._timer = self._loop.call_at(self._due, self._tick)
