"""The one interface to shared state, and the plain values that cross it.

Four things are shared: per-second counters in windows that expire by themselves (attempt
outcomes, tokens, retries), notes with an expiry (an ejection, a recovery), running totals seeded
from what a replica already knows (budget spend in nano-dollars), and short exclusive claims (who
probes a recovering deployment). A limiter takes from a counter window atomically.
Times are wall-clock seconds: replicas on different hosts share no monotonic clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class StateUnavailable(Exception):
    """The shared store did not answer in time or is known to be down: use local state."""


@dataclass(frozen=True, slots=True)
class Total:
    """An addition to a running total that outlives its writers until `expire_at` (wall seconds).

    `seed` is what the writer already knew of the total before `delta` (from its ledger): a store
    that lost the total (restarted empty) starts again from it rather than from zero.
    """

    delta: int
    seed: int
    expire_at: float


@dataclass
class Outbox:
    """Everything one replica has to tell, sent in one round trip."""

    counts: dict[str, dict[int, int]] = field(default_factory=dict)     # counter → wall second → amount
    horizon_s: int = 60                                                   # counters are kept this long
    notes: dict[str, tuple[str, float]] = field(default_factory=dict)  # note → (value, seconds to keep)
    totals: dict[str, Total] = field(default_factory=dict)

    def count(self, counter: str, second: int, amount: int) -> None:
        per_second = self.counts.setdefault(counter, {})
        per_second[second] = per_second.get(second, 0) + amount


@dataclass
class Ask:
    """What one replica wants to read back in the same round trip."""

    counts: dict[str, int] = field(default_factory=dict)   # counter → how many seconds back, now included
    notes: list[str] = field(default_factory=list)
    totals: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    counts: dict[str, dict[int, int]] = field(default_factory=dict)   # only seconds with something counted
    notes: dict[str, str] = field(default_factory=dict)               # only notes that exist
    totals: dict[str, int] = field(default_factory=dict)              # missing totals read as 0


@dataclass(frozen=True, slots=True)
class Taken:
    """What a limiter window said: admitted or not, how much is left, when to come back."""

    admitted: bool
    used: int                 # in the window, this request included when admitted
    retry_after_s: float      # 0 when admitted: else until enough of the window has passed
    reset_s: float            # until the window would be empty again


@dataclass(frozen=True, slots=True)
class Draw:
    """One window a request takes from: `cost` more within `limit` over the last `window_s` seconds.

    At least one unit must be free, so a cost of 0 asks only whether the window is already full."""

    counter: str
    limit: int
    cost: int
    window_s: int


class SharedState(Protocol):
    """Memory (one process) or Redis (every replica): the rest of the gateway cannot tell which."""

    async def exchange(self, out: Outbox, ask: Ask, now: float) -> Snapshot:
        """Writes `out` and reads `ask` at wall time `now`; raises StateUnavailable."""
        ...

    async def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool:
        """Takes or renews an exclusive claim for `ttl_s`; False when another owner holds it."""
        ...

    async def take(self, draws: Sequence[Draw], now: float) -> list[Taken]:
        """Takes from every window or from none, atomically: one verdict per draw, and the costs are
        added only when every draw fits; raises StateUnavailable."""
        ...

    async def close(self) -> None:
        ...
