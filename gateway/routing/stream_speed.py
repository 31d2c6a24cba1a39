"""How fast a deployment's streams usually start and flow, and the limits that follow. Pure.

A first token is judged against the deployment's own recent p99: a provider that normally starts
in 0.4 s and now takes 25 s should not hold every request for the fixed `first_token_s`. A stream
that flows far slower than usual (one token a second where it gives a hundred) is a brownout signal.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable

from gateway.policy.schema import Timeouts

MIN_BASELINE_SAMPLES = 20   # below this many first tokens there is no p99 to speak of
MIN_GAP_EVENTS = 8          # a stream this short says little about its token rate


class SampleWindow:
    """The last `size` samples, kept sorted as well, so a percentile is a lookup."""

    def __init__(self, size: int = 200) -> None:
        self.recent: deque[float] = deque()
        self.ordered: list[float] = []
        self.size = size

    def __len__(self) -> int:
        return len(self.recent)

    def add(self, seconds: float) -> None:
        if len(self.recent) == self.size:
            old = self.recent.popleft()
            del self.ordered[bisect.bisect_left(self.ordered, old)]
        self.recent.append(seconds)
        bisect.insort(self.ordered, seconds)

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile; None while empty."""
        if not self.ordered:
            return None
        return self.ordered[min(len(self.ordered) - 1, max(0, math.ceil(p / 100 * len(self.ordered)) - 1))]


def first_token_limit(ttfts: SampleWindow | None, t: Timeouts, peers: Iterable[SampleWindow | None] = ()) -> float:
    """How long this attempt may wait for its first token: max(floor, factor × recent p99), capped by
    `first_token_s`. A cold deployment (no baseline of its own yet: a fresh start, a new policy) is
    judged by the slowest baseline among the route's other deployments, and with none of those by
    `cold_first_token_s`, so a gateway that just started is not the slowest to give up on a stall."""
    if t.first_token_factor <= 0:
        return t.first_token_s
    if ttfts is not None and len(ttfts) >= MIN_BASELINE_SAMPLES:
        return _relative(ttfts.percentile(99) or 0.0, t)
    known = [w.percentile(99) or 0.0 for w in peers if w is not None and len(w) >= MIN_BASELINE_SAMPLES]
    if known:
        return _relative(max(known), t)
    return min(t.first_token_s, t.cold_first_token_s)


def _relative(p99: float, t: Timeouts) -> float:
    return min(t.first_token_s, max(t.first_token_floor_s, t.first_token_factor * p99))


def token_gap(events: int, seconds: float) -> float | None:
    """Mean seconds between a stream's events after the first, when it was long enough to tell."""
    if events < MIN_GAP_EVENTS or seconds <= 0:
        return None
    return seconds / (events - 1)
