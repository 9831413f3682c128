"""Percentiles and summaries of latency samples (pure functions; seconds in, milliseconds out)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank `p`th percentile (0 < p <= 100) of an ascending sequence; 0.0 when empty."""
    if not 0 < p <= 100:
        raise ValueError("p must be above 0 and at most 100")
    if not ordered:
        return 0.0
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def summarize_ms(seconds: Iterable[float]) -> dict[str, float | int]:
    """count, mean, p50, p95, p99, p99.9 and max of latencies given in seconds, in milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {"count": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "p99.9": 0.0, "max": 0.0}

    def ms(value: float) -> float:
        return round(value * 1000, 3)

    return {
        "count": len(ordered),
        "mean": ms(sum(ordered) / len(ordered)),
        "p50": ms(percentile(ordered, 50)),
        "p95": ms(percentile(ordered, 95)),
        "p99": ms(percentile(ordered, 99)),
        "p99.9": ms(percentile(ordered, 99.9)),
        "max": ms(ordered[-1]),
    }


def rate(count: int, started: float, finished: float) -> float:
    """Events per second over [started, finished]; 0.0 for an empty or zero-length period."""
    elapsed = finished - started
    return round(count / elapsed, 1) if count and elapsed > 0 else 0.0


def ratio(ours: float, floor: float) -> float | None:
    """ours / floor rounded to two places, or None when the floor is zero."""
    return round(ours / floor, 2) if floor else None
