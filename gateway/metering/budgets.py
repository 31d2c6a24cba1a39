"""Budgets: spend per team or key per UTC day or month, and the decision taken before a request.

A budget acts before the spend: once its period's spend reaches the limit, its action applies to
every further request (overshoot is limited to requests already in flight). Pure arithmetic; the
current time is always passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from gateway.metering.schema import Budget

Action = Literal["allow", "warn", "downgrade", "reject"]
_SEVERITY = {"allow": 0, "warn": 1, "downgrade": 2, "reject": 3}
ZERO = Decimal(0)


def period_start(period: str, now: datetime) -> datetime:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "day" else day.replace(day=1)


def period_end(period: str, now: datetime) -> datetime:
    start = period_start(period, now)
    if period == "day":
        return datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


@dataclass(frozen=True)
class Decision:
    action: Action
    budget: Budget | None
    spent: Decimal
    limit: Decimal
    resets_at: datetime
    route_to: str | None
    message: str


def _owner(b: Budget) -> str:
    return f"team {b.team}" if b.team is not None else f"key {b.key}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class BudgetBook:
    def __init__(self, budgets: Iterable[Budget]) -> None:
        self.budgets = tuple(budgets)
        self._spent: dict[tuple[str, datetime], Decimal] = {}

    def applicable(self, team: str, key_id: str) -> list[Budget]:
        return [b for b in self.budgets if b.team == team or (b.key is not None and b.key == key_id)]

    def spent(self, budget: Budget, now: datetime) -> Decimal:
        return self._spent.get((budget.name, period_start(budget.period, now)), ZERO)

    def decide(self, team: str, key_id: str, now: datetime) -> Decision:
        best: Decision | None = None
        for b in self.applicable(team, key_id):
            spent, limit = self.spent(b, now), b.limit_usd
            resets = period_end(b.period, now)
            where = f"Budget '{b.name}' ({_owner(b)}, {limit:.2f} USD per {b.period})"
            if spent >= limit:
                action: Action = b.action
                message = f"{where} is used up: {spent:.2f} USD spent; it resets at {_iso(resets)}."
            elif spent >= limit * Decimal(str(b.warn_at_percent)) / 100:
                action = "warn"
                message = f"{where} is {100 * spent / limit:.0f}% used; it resets at {_iso(resets)}."
            else:
                continue
            decision = Decision(action, b, spent, limit, resets, b.to if action == "downgrade" else None, message)
            if best is None or _SEVERITY[action] > _SEVERITY[best.action]:
                best = decision
        return best or Decision("allow", None, ZERO, ZERO, now, None, "")

    def add(self, team: str, key_id: str, cost: Decimal, now: datetime) -> None:
        for b in self.applicable(team, key_id):
            start = period_start(b.period, now)
            key = (b.name, start)
            self._spent[key] = self._spent.get(key, ZERO) + cost
        # Periods that ended are dropped: only the current one decides anything.
        current = {(b.name, period_start(b.period, now)) for b in self.budgets}
        for stale in [k for k in self._spent if k not in current]:
            del self._spent[stale]

    def remaining(self, now: datetime) -> list[tuple[Budget, Decimal]]:
        return [(b, max(ZERO, b.limit_usd - self.spent(b, now))) for b in self.budgets]

    def load(self, lines: Iterable[Mapping[str, Any]], now: datetime | None = None) -> None:
        """Rebuilds the current periods' spend from ledger lines, at start-up."""
        now = now or datetime.now(UTC)
        for line in lines:
            ts = datetime.fromisoformat(str(line["ts"]).replace("Z", "+00:00"))
            for b in self.applicable(str(line["team"]), str(line["key_id"])):
                if period_start(b.period, ts) == period_start(b.period, now):
                    key = (b.name, period_start(b.period, now))
                    self._spent[key] = self._spent.get(key, ZERO) + Decimal(str(line["cost_usd"]))
