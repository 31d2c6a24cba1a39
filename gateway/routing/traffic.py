"""What each route's targets did over the last minute (attempts, failures, times to the first token),
for the console. Kept per route and deployment in one-second buckets, with a bounded sample of first-token
times; times are given by the caller, so it is tested without a clock.

Fed once per attempt outcome (gateway/flow/attempts.py): a dict look-up and a deque append.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

WINDOW_S = 60
SAMPLES = 256   # first-token times kept per route and deployment: a p50 needs no more


@dataclass(frozen=True, slots=True)
class Minute:
    """One target's last minute on one route."""

    attempts: int
    failed: int
    ttft_p50_s: float | None     # median time to the first token (a stream) or to the answer


class _Tally:
    __slots__ = ("buckets", "ttfts")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()            # [second, ok, failed], oldest first
        self.ttfts: deque[tuple[float, float]] = deque(maxlen=SAMPLES)   # (at, seconds)


class TrafficBook:
    def __init__(self, window_s: int = WINDOW_S) -> None:
        self.window_s = window_s
        self._tallies: dict[tuple[str, str], _Tally] = {}

    def add(self, route: str, key: str, ok: bool, at: float, ttft_s: float | None = None) -> None:
        """One attempt's outcome on deployment `key` of `route`, at `at` (seconds on the gateway's clock)."""
        tally = self._tallies.get((route, key))
        if tally is None:
            tally = self._tallies[(route, key)] = _Tally()
        second = int(at)
        buckets = tally.buckets
        if buckets and buckets[-1][0] == second:
            buckets[-1][1 if ok else 2] += 1
        else:
            buckets.append([second, int(ok), int(not ok)])
            while buckets[0][0] <= second - self.window_s:
                buckets.popleft()
        if ok and ttft_s is not None:
            tally.ttfts.append((at, ttft_s))

    def minute(self, route: str, key: str, now: float) -> Minute:
        """What `key` did on `route` in the window before `now`."""
        tally = self._tallies.get((route, key))
        if tally is None:
            return Minute(0, 0, None)
        oldest = int(now) - self.window_s
        ok = failed = 0
        for second, good, bad in tally.buckets:
            if second > oldest:
                ok += good
                failed += bad
        recent = sorted(s for at, s in tally.ttfts if at > now - self.window_s)
        p50 = recent[(len(recent) - 1) // 2] if recent else None
        return Minute(ok + failed, failed, p50)
