"""The canaries' own daily budget. Pure arithmetic on Decimal; the time is always passed in (UTC).

A call's cost is known only after it; to stay under the budget anyway, each call first reserves its
worst case (every byte of the request a token, plus `max_tokens` of output) and is skipped when that
reservation does not fit; afterwards the reservation is replaced by the real cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.metering.record import parse_ts

ZERO = Decimal(0)
CANARY_TEAM = "recloser-canary"


class CanaryBudget:
    def __init__(self, limit_usd: Decimal) -> None:
        self.limit = limit_usd
        self.day: date | None = None
        self.spent = ZERO        # settled cost of the current UTC day
        self.reserved = ZERO     # worst cases of calls in flight

    def _roll(self, now_utc: datetime) -> None:
        day = now_utc.date()
        if day != self.day:
            self.day, self.spent = day, ZERO

    def reserve(self, worst_usd: Decimal, now_utc: datetime) -> bool:
        """Room for a call that may cost up to `worst_usd`? If so it is held until `settle`."""
        self._roll(now_utc)
        if self.spent + self.reserved + worst_usd > self.limit:
            return False
        self.reserved += worst_usd
        return True

    def settle(self, worst_usd: Decimal, actual_usd: Decimal, now_utc: datetime) -> None:
        self.reserved = max(ZERO, self.reserved - worst_usd)
        self._roll(now_utc)
        self.spent += actual_usd

    def load(self, records: Iterable[Mapping[str, Any]], now_utc: datetime) -> None:
        """Today's canary spend from the ledger, so a restart does not grant a second budget."""
        self._roll(now_utc)
        for line in records:
            if line.get("kind") != "canary":
                continue
            try:
                when = datetime.fromtimestamp(parse_ts(line["ts"]), now_utc.tzinfo)
                cost = Decimal(str(line["cost_usd"]))
            except (KeyError, TypeError, ValueError, InvalidOperation, OverflowError):
                continue
            if when.date() == self.day and cost.is_finite():
                self.spent += cost
