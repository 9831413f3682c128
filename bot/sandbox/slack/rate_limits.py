"""Slack's rate limits, opt-in: ``sim.rate_limiter = RateLimiter()`` (off by default).

A token bucket per method and workspace (and per channel for ``chat.postMessage``, whose limit is about
one message a second per channel with short bursts allowed); ``chat.update`` is Tier 3, about 50 a
minute per workspace. Over the limit the call is not applied and answers HTTP 429 ``ratelimited`` with
``Retry-After`` (whole seconds); each such call is kept in ``sim.rate_limited``. Time is the
simulator's clock, so a test with a settable clock decides when the buckets refill.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limit:
    """`rate` calls a second on average, up to `burst` at once; per channel or per workspace."""

    rate: float
    burst: int
    per_channel: bool = False


DEFAULT_LIMITS: Mapping[str, Limit] = {
    "chat.postMessage": Limit(rate=1.0, burst=3, per_channel=True),
    "chat.update": Limit(rate=50 / 60, burst=50),
}


@dataclass
class RateLimiter:
    """Token buckets for the limited methods; `check` spends one token or says how long to wait."""

    limits: Mapping[str, Limit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    _buckets: dict[tuple[str, str, str], tuple[float, float]] = field(default_factory=dict, repr=False)

    def check(self, method: str, team_id: str, channel: str, now: float) -> int | None:
        """None when the call may go ahead (it spends a token), else the seconds to wait."""
        limit = self.limits.get(method)
        if limit is None:
            return None
        key = (method, team_id, channel if limit.per_channel else "")
        tokens, last = self._buckets.get(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + max(now - last, 0.0) * limit.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / limit.rate))
