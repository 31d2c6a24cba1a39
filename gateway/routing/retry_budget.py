"""A retry budget per route, Envoy-style: retries (and hedges) may add at most a set share of the
requests seen lately, so an outage never multiplies the load on what is left.

Replicas that share state count against one budget: each tells the others what it counted since
it last did (`take_unsent`) and hears the totals of all of them (`hear`); between two exchanges it
adds what it counted itself, so the budget is never looser than its own count says."""

from __future__ import annotations

from gateway.routing.breaker import BUCKETS


class RetryBudget:
    """Counts requests and extra attempts over a sliding window; all times come from the caller."""

    def __init__(self, percent: float, min_per_s: float, window_s: float = 10.0) -> None:
        self.percent = percent
        self.min_per_window = min_per_s * window_s
        self.width = window_s / BUCKETS
        self.window_s = window_s
        self._requests: dict[int, int] = {}
        self._extras: dict[int, int] = {}
        self._unsent: list[int] | None = None      # sharing: [requests, extras] since the last exchange
        self._heard = (0, 0)                       # sharing: every replica's [requests, extras] in the window

    def share(self) -> None:
        self._unsent = [0, 0]

    def take_unsent(self) -> tuple[int, int]:
        """What this replica counted since it last told the others (requests, extras)."""
        if self._unsent is None:
            return 0, 0
        requests, extras = self._unsent
        self._unsent = [0, 0]
        return requests, extras

    def hear(self, requests: int, extras: int) -> None:
        """Every replica's requests and extras over the window, as the shared store reports them."""
        self._heard = (requests, extras)

    def _totals(self) -> tuple[int, int]:
        requests, extras = sum(self._requests.values()), sum(self._extras.values())
        if self._unsent is not None:
            requests = max(requests, self._heard[0] + self._unsent[0])
            extras = max(extras, self._heard[1] + self._unsent[1])
        return requests, extras

    def _trim(self, now: float) -> int:
        index = int(now // self.width)
        for counts in (self._requests, self._extras):
            for old in [i for i in counts if i <= index - BUCKETS]:
                del counts[old]
        return index

    def on_request(self, now: float) -> None:
        index = self._trim(now)
        self._requests[index] = self._requests.get(index, 0) + 1
        if self._unsent is not None:
            self._unsent[0] += 1

    def try_spend(self, now: float) -> bool:
        """May one more attempt go out now? If so, it is counted."""
        index = self._trim(now)
        requests, extras = self._totals()
        allowed = max(self.min_per_window, self.percent / 100.0 * requests)
        if extras + 1 > allowed:
            return False
        self._extras[index] = self._extras.get(index, 0) + 1
        if self._unsent is not None:
            self._unsent[1] += 1
        return True
