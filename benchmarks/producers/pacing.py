"""What every producer shares: the process handle, the shared counters, the pacing rule.

A producer runs in its own process (so its CPU is neither the server's nor the clients')
and sends `rate` records per second, spread evenly: each record is due at
`start + i / rate`, and when the process falls behind it sends everything due at once.
Keys take turns; record `i` has key `keys[i % len(keys)]` and that key's next sequence.
The last sequence sent per key is published in shared memory, so the harness can say
"every stream must reach these" (resume-storm) and check the tail at the end. The rate is
shared too: `set_rate` changes it in a running producer (overload), whose sequences carry on.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Event
from typing import Any

MAX_BURST = 5000  # records sent in one go when the producer fell behind


class Paced:
    """Yields how many records are due now, sleeping until at least one is.

    `shared_rate`, when given, is read on every call: a new value restarts the pacing at
    that rate from now (nothing is owed for the time before the change)."""

    def __init__(self, rate: float, shared_rate: Synchronized[float] | None = None) -> None:
        self.rate = rate
        self.interval = 1.0 / rate
        self.next_due = time.monotonic()
        self.shared_rate = shared_rate

    def due(self, stop: Event) -> int:
        while not stop.is_set():
            if self.shared_rate is not None and self.shared_rate.value != self.rate:
                self.rate = self.shared_rate.value
                self.interval = 1.0 / self.rate
                self.next_due = time.monotonic()
            now = time.monotonic()
            if now >= self.next_due:
                count = min(int((now - self.next_due) / self.interval) + 1, MAX_BURST)
                self.next_due += count * self.interval
                return count
            time.sleep(min(self.next_due - now, 0.02))
        return 0


class ProducerHandle:
    """A producer process: start, stop, and what it has sent so far."""

    def __init__(
        self, target: Callable[..., None], keys: list[str], kwargs: dict[str, Any]
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.keys = keys
        self._stop: Event = context.Event()
        self._ready: Event = context.Event()
        self._last: SynchronizedArray[int] = context.Array("q", [-1] * len(keys))
        self._sent: Synchronized[int] = context.Value("q", 0)
        self._errors: Synchronized[int] = context.Value("q", 0)
        self._rate: Synchronized[float] = context.Value("d", float(kwargs["rate"]))
        self._process: BaseProcess = context.Process(
            target=target,
            kwargs={
                **kwargs,
                "keys": keys,
                "stop": self._stop,
                "ready": self._ready,
                "last_seq": self._last,
                "sent": self._sent,
                "errors": self._errors,
                "shared_rate": self._rate,
            },
            daemon=True,
        )
        self.started_at = 0.0
        self.stopped_at = 0.0

    def start(self, timeout: float = 30.0) -> ProducerHandle:
        self._process.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the producer did not start")
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def sent(self) -> int:
        return int(self._sent.value)

    @property
    def errors(self) -> int:
        return int(self._errors.value)

    def set_rate(self, rate: float) -> None:
        """Change the rate of the running producer (paced from now at `rate`)."""
        self._rate.value = float(rate)

    @property
    def rate(self) -> float:
        return float(self._rate.value)

    def last_seq(self) -> dict[str, int]:
        """The last sequence sent per key (keys not sent yet are left out)."""
        values = list(self._last[:])
        return {key: seq for key, seq in zip(self.keys, values, strict=True) if seq >= 0}

    def stop(self, timeout: float = 60.0) -> None:
        """Stop sending; returns once everything sent is acknowledged (or `timeout`)."""
        if self.stopped_at:
            return
        self._stop.set()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self.stopped_at = time.monotonic()

    def achieved_rate(self) -> float:
        end = self.stopped_at or time.monotonic()
        return self.sent / max(end - self.started_at, 1e-9)
