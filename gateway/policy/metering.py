"""Policy keys for metering: the spend ledger and budgets."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from gateway.policy.closed import Closed


class LedgerSettings(Closed):
    path: str | None = None                                   # None: no ledger file
    rotate_mb: Annotated[float, Field(gt=0, le=100_000)] = 100.0
    rotate_daily: bool = True
    keep: Annotated[int, Field(ge=1, le=10_000)] = 14         # rotated files kept; older ones are deleted


class Metering(Closed):
    ledger: LedgerSettings = LedgerSettings()


class Budget(Closed):
    """A spending limit for a team or a key, per UTC day or month, and what happens at it.

    `warn_at_percent` of the limit spent → warn; the whole limit spent → `action` applies to every
    further request until the period ends.
    """

    name: Annotated[str, Field(min_length=1, max_length=128)]
    team: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    key: Annotated[str, Field(min_length=1, max_length=128)] | None = None      # an API key's id
    period: Literal["day", "month"]
    limit_usd: Annotated[Decimal, Field(gt=0, le=Decimal(1_000_000_000))]
    action: Literal["warn", "downgrade", "reject"]
    warn_at_percent: Annotated[float, Field(ge=0, le=100)] = 80.0
    # With downgrade: the cheaper route. That it exists is checked with the rest of the policy.
    to: Annotated[str, Field(min_length=1, max_length=128)] | None = None

    @model_validator(mode="after")
    def one_owner(self) -> Budget:
        if (self.team is None) == (self.key is None):
            raise ValueError("give exactly one of team and key")
        if (self.action == "downgrade") != (self.to is not None):
            raise ValueError("'to' (a route name) goes with action: downgrade, and only with it")
        return self
