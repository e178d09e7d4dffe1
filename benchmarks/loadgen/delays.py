"""What delays the load generator's streams waited before reconnecting."""

from __future__ import annotations

from typing import Any


class DelayStats:
    """The reconnect delays used, by what set them (`retry`, `retry_after`, `default`):
    count, total, min, max and a histogram in 100 ms steps (key: the step's start in ms)."""

    def __init__(self) -> None:
        self.by_kind: dict[str, dict[str, Any]] = {}

    def add(self, kind: str, seconds: float) -> None:
        entry = self.by_kind.get(kind)
        if entry is None:
            entry = {"count": 0, "total_s": 0.0, "min_s": seconds, "max_s": seconds}
            entry["histogram_ms"] = {}
            self.by_kind[kind] = entry
        entry["count"] += 1
        entry["total_s"] += seconds
        entry["min_s"] = min(entry["min_s"], seconds)
        entry["max_s"] = max(entry["max_s"], seconds)
        step = int(seconds * 10) * 100
        histogram: dict[int, int] = entry["histogram_ms"]
        histogram[step] = histogram.get(step, 0) + 1

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            kind: {**entry, "histogram_ms": dict(entry["histogram_ms"])}
            for kind, entry in self.by_kind.items()
        }
