"""Percentiles and the rounding the results file uses."""

from __future__ import annotations

from collections.abc import Sequence


def percentiles_ms(samples_ns: Sequence[int]) -> dict[str, float | int | None]:
    """p50, p90, p99, p99.9 and max of latencies given in ns, in ms (nearest rank)."""
    if not samples_ns:
        return {"p50": None, "p90": None, "p99": None, "p999": None, "max": None, "samples": 0}
    ordered = sorted(samples_ns)
    count = len(ordered)

    def rank(fraction: float) -> float:
        index = min(count - 1, max(0, int(fraction * count + 0.5) - 1))
        return round(ordered[index] / 1e6, 3)

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "p999": rank(0.999),
        "max": round(ordered[-1] / 1e6, 3),
        "samples": count,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 2)
