"""Budgets: spend per team or key per UTC day or month, and the decision taken before a request.

A budget acts before the spend: once its period's spend reaches the limit, its action applies to
every further request (the overshoot is limited to requests already in flight when it was reached).
Pure arithmetic on Decimal; the current time is always passed in, as an aware datetime.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple

from gateway.metering.record import CallRecord, parse_ts
from gateway.policy.metering import Budget

Action = Literal["allow", "warn", "downgrade", "reject"]
Period = Literal["day", "month"]
# When several budgets of a caller speak, the severest wins.
_SEVERITY: Mapping[str, int] = {"allow": 0, "warn": 1, "downgrade": 2, "reject": 3}
ZERO = Decimal(0)
HUNDRED = Decimal(100)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        # A naive time would silently be read as the machine's local time: periods would shift.
        raise ValueError("budgets need an aware datetime (UTC), not a naive one")
    return now.astimezone(UTC)


def period_start(period: Period | str, now_utc: datetime) -> datetime:
    """A day starts at 00:00 UTC, a month at 00:00 UTC on the 1st."""
    day = _utc(now_utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "day" else day.replace(day=1)


def period_end(period: Period | str, now_utc: datetime) -> datetime:
    """When the period containing `now_utc` ends, i.e. when its budget resets."""
    start = period_start(period, now_utc)
    if period == "day":
        return start + timedelta(days=1)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


@dataclass(frozen=True)
class Decision:
    action: Action
    budget: Budget | None          # the budget that decided; None for "allow"
    spent: Decimal
    limit: Decimal
    resets_at: datetime
    route_to: str | None           # with "downgrade": the route to serve the request instead
    message: str                   # for the client (reject), the warning header or the log


class Loaded(NamedTuple):
    counted: int                   # ledger lines that fell in a current period of some budget
    skipped: int                   # lines that could not be read (no time, team, key or cost)


def _owner(b: Budget) -> str:
    return f"team {b.team}" if b.team is not None else f"key {b.key}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usd(amount: Decimal) -> str:
    return f"{amount:.2f} USD"


def _judge(b: Budget, spent: Decimal, now: datetime) -> Decision | None:
    """What one budget says at this spend; None when it says nothing."""
    resets = period_end(b.period, now)
    where = f"Budget '{b.name}' ({_owner(b)}, {_usd(b.limit_usd)} per {b.period})"
    if spent >= b.limit_usd:
        return Decision(b.action, b, spent, b.limit_usd, resets, b.to if b.action == "downgrade" else None,
                        f"{where} is used up: {_usd(spent)} spent; it resets at {_iso(resets)}.")
    if spent >= b.limit_usd * Decimal(str(b.warn_at_percent)) / HUNDRED:
        return Decision("warn", b, spent, b.limit_usd, resets, None,
                        f"{where} is {HUNDRED * spent / b.limit_usd:.0f}% used: {_usd(spent)} spent; "
                        f"it resets at {_iso(resets)}.")
    return None


class BudgetBook:
    """The current period's spend of every budget, and the decisions it implies.

    Only the current period is kept: a period that ended decides nothing and is dropped.
    """

    def __init__(self, budgets: Iterable[Budget]) -> None:
        self.budgets = tuple(budgets)
        # Keyed by the budget's name (names are unique in a policy) and its period's start.
        self._spent: dict[tuple[str, datetime], Decimal] = {}
        # When replicas share spend: what this one spent since it last told them, and the total they
        # last reported (every replica's spend, this one's included).
        self.sharing = False
        self._unshared: dict[tuple[str, datetime], Decimal] = {}
        self._shared: dict[tuple[str, datetime], Decimal] = {}

    def applicable(self, team: str, key_id: str) -> list[Budget]:
        """The budgets of the caller's team and of its key, in policy order."""
        return [b for b in self.budgets if b.team == team or (b.key is not None and b.key == key_id)]

    def spent(self, budget: Budget, now_utc: datetime) -> Decimal:
        """This period's spend: every replica's when shared, and never less than this replica knows of."""
        key = (budget.name, period_start(budget.period, now_utc))
        return max(self._spent.get(key, ZERO), self._shared.get(key, ZERO))

    def decide(self, team: str, key_id: str, now_utc: datetime) -> Decision:
        """What to do with the caller's next request: reject beats downgrade beats warn beats allow."""
        best: Decision | None = None
        for b in self.applicable(team, key_id):
            decision = _judge(b, self.spent(b, now_utc), now_utc)
            if decision is not None and (best is None or _SEVERITY[decision.action] > _SEVERITY[best.action]):
                best = decision
        return best or Decision("allow", None, ZERO, ZERO, _utc(now_utc), None, "")

    def add(self, team: str, key_id: str, cost: Decimal, now_utc: datetime) -> None:
        """Charges `cost` to the current period of every budget of the caller."""
        for b in self.applicable(team, key_id):
            key = (b.name, period_start(b.period, now_utc))
            self._spent[key] = self._spent.get(key, ZERO) + cost
            if self.sharing:
                self._unshared[key] = self._unshared.get(key, ZERO) + cost
        self._drop_ended(now_utc)

    def current_periods(self, now_utc: datetime) -> list[tuple[Budget, datetime]]:
        return [(b, period_start(b.period, now_utc)) for b in self.budgets]

    def take_unshared(self) -> dict[tuple[str, datetime], tuple[Decimal, Decimal]]:
        """Spend not yet told to the other replicas: (delta, this replica's total before it) per period."""
        out = {key: (delta, self._spent.get(key, ZERO) - delta) for key, delta in self._unshared.items()}
        self._unshared = {}
        return out

    def untold(self, deltas: Mapping[tuple[str, datetime], Decimal]) -> None:
        """Spend that could not be told (the store was down): told with the next exchange instead."""
        for key, delta in deltas.items():
            self._unshared[key] = self._unshared.get(key, ZERO) + delta

    def heard(self, totals: Mapping[tuple[str, datetime], Decimal], now_utc: datetime) -> None:
        """Every replica's spend per budget period, as the shared store last reported it."""
        self._shared.update(totals)
        self._drop_ended(now_utc)

    def remaining(self, now_utc: datetime) -> list[tuple[Budget, Decimal]]:
        """What is left of every budget this period (never below 0), for gauges."""
        return [(b, max(ZERO, b.limit_usd - self.spent(b, now_utc))) for b in self.budgets]

    def load(self, records: Iterable[CallRecord | Mapping[str, Any]], now_utc: datetime) -> Loaded:
        """Rebuilds the current periods' spend from the ledger (records or parsed lines), at start-up.

        Charged attempts count: their tokens were paid for. Unreadable lines are skipped, and counted.
        """
        counted = skipped = 0
        for record in records:
            if _kind(record) == "canary":
                continue   # the gateway's own spend on quality canaries is never a team's
            fields = _spend_fields(record)
            if fields is None:
                skipped += 1
                continue
            ts, team, key_id, cost = fields
            when = datetime.fromtimestamp(ts, UTC)
            hit = False
            for b in self.applicable(team, key_id):
                start = period_start(b.period, now_utc)
                if period_start(b.period, when) == start:
                    self._spent[(b.name, start)] = self._spent.get((b.name, start), ZERO) + cost
                    hit = True
            counted += hit
        self._drop_ended(now_utc)
        return Loaded(counted, skipped)

    def adopt(self, budgets: Iterable[Budget]) -> None:
        """A reloaded policy's budgets: one with the same name, owner and period keeps what it has spent
        this period (and what replicas were told); a new or changed one starts from nothing."""
        before = {b.name: b for b in self.budgets}
        self.budgets = tuple(budgets)
        kept = {b.name for b in self.budgets
                if b.name in before and (before[b.name].team, before[b.name].key, before[b.name].period)
                == (b.team, b.key, b.period)}
        for book in (self._spent, self._shared, self._unshared):
            for key in [k for k in book if k[0] not in kept]:
                del book[key]

    def _drop_ended(self, now_utc: datetime) -> None:
        current = {(b.name, period_start(b.period, now_utc)) for b in self.budgets}
        for book in (self._spent, self._shared, self._unshared):
            for ended in [k for k in book if k not in current]:
                del book[ended]


def _kind(record: CallRecord | Mapping[str, Any]) -> str:
    return record.kind if isinstance(record, CallRecord) else str(record.get("kind", "request"))


def _spend_fields(record: CallRecord | Mapping[str, Any]) -> tuple[float, str, str, Decimal] | None:
    """(ts, team, key id, cost) of a ledger record or line; None when the line lacks them, or when the
    caller's own credentials paid (budgets count the organisation's money only)."""
    if isinstance(record, CallRecord):
        if record.paid_by == "client":
            return None
        return record.ts, record.team, record.key_id, record.cost_usd
    if record.get("paid_by") == "client":
        return None
    try:
        cost = Decimal(str(record["cost_usd"]))
        if not cost.is_finite():
            return None
        return parse_ts(record["ts"]), str(record["team"]), str(record["key_id"]), cost
    except (KeyError, TypeError, ValueError, InvalidOperation, OverflowError):
        return None
