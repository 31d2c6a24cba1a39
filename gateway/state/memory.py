"""Shared state kept in this process: the embedded default, and what a replica falls back to."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.state.base import Ask, Draw, Outbox, Snapshot, Taken
from gateway.state.window import judge, seconds_of


class MemoryState:
    """The same behaviour as the Redis store, for one process. Expiry is judged against `now`."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[int, int]] = {}
        self._count_expiry: dict[str, float] = {}
        self._notes: dict[str, tuple[str, float]] = {}      # value, expires at
        self._totals: dict[str, tuple[int, float]] = {}     # total, expires at
        self._claims: dict[str, tuple[str, float]] = {}     # owner, expires at

    def _expire(self, now: float) -> None:
        for name in [n for n, at in self._count_expiry.items() if at <= now]:
            del self._count_expiry[name]
            self._counts.pop(name, None)
        for store in (self._notes, self._totals, self._claims):
            for name in [n for n, (_, at) in store.items() if at <= now]:
                del store[name]

    def _add(self, counter: str, second: int, amount: int, keep_s: int, now: float) -> None:
        per_second = self._counts.setdefault(counter, {})
        per_second[second] = per_second.get(second, 0) + amount
        for old in [s for s in per_second if s <= now - keep_s]:
            del per_second[old]
        self._count_expiry[counter] = max(self._count_expiry.get(counter, 0.0), now + keep_s)

    def count(self, counter: str, amount: int, keep_s: int, now: float) -> None:
        """Adds to a counter at once (this store needs no round trip)."""
        self._expire(now)
        self._add(counter, int(now // 1), amount, keep_s, now)

    async def exchange(self, out: Outbox, ask: Ask, now: float) -> Snapshot:
        self._expire(now)
        for counter, per_second in out.counts.items():
            for second, amount in per_second.items():
                self._add(counter, second, amount, out.horizon_s, now)
        for name, (value, keep_s) in out.notes.items():
            self._notes[name] = (value, now + keep_s)
        for name, t in out.totals.items():
            total = self._totals[name][0] if name in self._totals else t.seed
            self._totals[name] = (total + t.delta, t.expire_at)
        snap = Snapshot()
        for counter, window_s in ask.counts.items():
            have = self._counts.get(counter, {})
            seen = {s: have[s] for s in seconds_of(window_s, now) if have.get(s)}
            if seen:
                snap.counts[counter] = seen
        snap.notes = {n: self._notes[n][0] for n in ask.notes if n in self._notes}
        snap.totals = {n: self._totals[n][0] for n in ask.totals if n in self._totals}
        return snap

    async def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool:
        self._expire(now)
        held = self._claims.get(name)
        if held is not None and held[0] != owner:
            return False
        self._claims[name] = (owner, now + ttl_s)
        return True

    async def take(self, draws: Sequence[Draw], now: float) -> list[Taken]:
        self._expire(now)
        verdicts = [judge(self._counts.get(d.counter, {}), d.limit, d.cost, d.window_s, now) for d in draws]
        if all(v.admitted for v in verdicts):
            for d in draws:
                if d.cost:
                    self._add(d.counter, int(now // 1), d.cost, d.window_s, now)
        return verdicts

    async def close(self) -> None:
        return None
