"""Sliding windows of per-second counts: the arithmetic both stores share (Redis runs it in Lua).

A window of `window_s` seconds at second `s` holds the seconds `s - window_s + 1 … s`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gateway.state.base import Taken


def seconds_of(window_s: int, now: float) -> range:
    second = math.floor(now)
    return range(second - window_s + 1, second + 1)


def judge(counts: Mapping[int, int], limit: int, cost: int, window_s: int, now: float) -> Taken:
    """Whether `cost` more fits in the window whose per-second counts are `counts`."""
    second = math.floor(now)
    live = sorted((s, n) for s, n in counts.items() if s > second - window_s and n)
    used = sum(n for _, n in live)
    reset = (live[0][0] + window_s - now) if live else 0.0
    if used + max(cost, 1) <= limit:
        if cost and not live:
            reset = second + window_s - now
        return Taken(True, used + cost, 0.0, max(0.0, reset))
    # Denied: wait until the oldest seconds have left the window and freed enough.
    need = used + max(cost, 1) - limit
    freed = 0
    retry = float(window_s)
    for s, n in live:
        freed += n
        if freed >= need:
            retry = s + window_s - now
            break
    return Taken(False, used, max(retry, 0.001), max(0.0, reset))
