"""Rate limits at admission: requests per minute counted as they arrive, tokens per minute counted
from what each request actually used once it ended.

Windows are shared when the gateway shares state (atomic check-and-add in the store) and fall back
to this process's own windows whenever the store does not answer in time: a limit is then counted
per replica until the store returns, never enforced by waiting on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.policy.replicas import RateLimit
from gateway.state.base import Draw, SharedState, StateUnavailable, Taken
from gateway.state.memory import MemoryState

WINDOW_S = 60


@dataclass(frozen=True)
class LimitCheck:
    """What the caller's limits said: the headers every answer carries, and a refusal when there is one."""

    admitted: bool
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""
    kind: str = ""                 # "requests" or "tokens" when refused (OpenAI's error type)
    retry_after_s: int = 0


def requests_counter(limit: RateLimit) -> str:
    return f"rl:{limit.name}:requests"


def tokens_counter(limit: RateLimit) -> str:
    return f"rl:{limit.name}:tokens"


def duration_text(seconds: float) -> str:
    """OpenAI's way of writing a reset time: 20ms, 1s, 6m0s."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def _owner(limit: RateLimit) -> str:
    return f"team {limit.team}" if limit.team is not None else f"key {limit.key}"


class Limiter:
    def __init__(self, limits: Sequence[RateLimit], shared: SharedState | None, local: MemoryState,
                 wall: Callable[[], float]) -> None:
        self.limits = tuple(limits)
        self.shared = shared
        self.local = local
        self.wall = wall
        self.pending_tokens: dict[str, int] = {}    # shared tokens counter → tokens not yet sent
        self._applicable: dict[tuple[str, str], tuple[RateLimit, ...]] = {}

    def adopt(self, limits: Sequence[RateLimit]) -> None:
        """A reloaded policy's limits; the windows counted so far stay (they are keyed by limit name)."""
        self.limits = tuple(limits)
        self._applicable = {}

    def applicable(self, team: str, key_id: str) -> tuple[RateLimit, ...]:
        found = self._applicable.get((team, key_id))
        if found is None:
            found = self._applicable[(team, key_id)] = tuple(
                r for r in self.limits if r.team == team or (r.key is not None and r.key == key_id))
        return found

    async def _take(self, draws: list[Draw], now: float) -> list[Taken]:
        if self.shared is not None:
            try:
                return await self.shared.take(draws, now)
            except StateUnavailable:
                pass  # fail open: this process's own windows decide until the store is back
        return await self.local.take(draws, now)

    async def admit(self, team: str, key_id: str) -> LimitCheck | None:
        """Counts the request against the caller's limits (all of them, or none when one refuses);
        None when no limit applies."""
        limits = self.applicable(team, key_id)
        if not limits:
            return None
        # Tokens are only checked here (a request's tokens are counted once it ends): cost 0.
        asked: list[tuple[str, RateLimit, int]] = [("tokens", r, r.tpm) for r in limits if r.tpm] + \
            [("requests", r, r.rpm) for r in limits if r.rpm]
        draws = [Draw(tokens_counter(r) if kind == "tokens" else requests_counter(r), per_minute,
                      0 if kind == "tokens" else 1, WINDOW_S) for kind, r, per_minute in asked]
        verdicts = await self._take(draws, self.wall())
        headers: dict[str, str] = {}
        tightest: dict[str, tuple[int, int, float]] = {}    # kind → remaining, limit, reset
        for (kind, r, per_minute), taken in zip(asked, verdicts):
            remaining = max(0, per_minute - taken.used) if taken.admitted else 0
            if kind not in tightest or remaining < tightest[kind][0]:
                tightest[kind] = (remaining, per_minute, taken.reset_s)
        for kind, (remaining, per_minute, reset_s) in tightest.items():
            headers.update(self._headers(kind, per_minute, remaining, reset_s))
        for (kind, r, per_minute), taken in zip(asked, verdicts):
            if not taken.admitted:
                wait = max(1, math.ceil(taken.retry_after_s))
                return LimitCheck(False, headers, kind=kind, retry_after_s=wait, message=(
                    f"Rate limit '{r.name}' reached for {_owner(r)} on {kind} per minute: limit {per_minute}, "
                    f"used {taken.used}. Try again in {wait} s."))
        return LimitCheck(True, headers)

    @staticmethod
    def _headers(kind: str, limit: int, remaining: int, reset_s: float) -> dict[str, str]:
        return {f"x-ratelimit-limit-{kind}": str(limit), f"x-ratelimit-remaining-{kind}": str(remaining),
                f"x-ratelimit-reset-{kind}": duration_text(reset_s)}

    def used(self, team: str, key_id: str, tokens: int) -> None:
        """Counts the tokens a finished request used against the caller's tpm limits."""
        if tokens <= 0:
            return
        now = self.wall()
        for r in self.applicable(team, key_id):
            if r.tpm:
                counter = tokens_counter(r)
                # Counted here too, so that a fallback to local windows starts from what this replica saw.
                self.local.count(counter, tokens, WINDOW_S, now)
                if self.shared is not None:
                    self.pending_tokens[counter] = self.pending_tokens.get(counter, 0) + tokens

    def take_pending(self) -> dict[str, int]:
        pending, self.pending_tokens = self.pending_tokens, {}
        return pending
