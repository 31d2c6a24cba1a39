"""A retry budget per route, Envoy-style: retries (and hedges) may add at most a set share of the
requests seen lately, so an outage never multiplies the load on what is left."""

from __future__ import annotations

from gateway.routing.breaker import BUCKETS


class RetryBudget:
    """Counts requests and extra attempts over a sliding window; all times come from the caller."""

    def __init__(self, percent: float, min_per_s: float, window_s: float = 10.0) -> None:
        self.percent = percent
        self.min_per_window = min_per_s * window_s
        self.width = window_s / BUCKETS
        self._requests: dict[int, int] = {}
        self._extras: dict[int, int] = {}

    def _trim(self, now: float) -> int:
        index = int(now // self.width)
        for counts in (self._requests, self._extras):
            for old in [i for i in counts if i <= index - BUCKETS]:
                del counts[old]
        return index

    def on_request(self, now: float) -> None:
        index = self._trim(now)
        self._requests[index] = self._requests.get(index, 0) + 1

    def try_spend(self, now: float) -> bool:
        """May one more attempt go out now? If so, it is counted."""
        index = self._trim(now)
        extras = sum(self._extras.values())
        allowed = max(self.min_per_window, self.percent / 100.0 * sum(self._requests.values()))
        if extras + 1 > allowed:
            return False
        self._extras[index] = self._extras.get(index, 0) + 1
        return True
