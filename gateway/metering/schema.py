"""Policy keys for metering: the spend ledger and budgets."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class LedgerSettings(_Closed):
    path: str | None = None                                   # None: no ledger file
    rotate_mb: Annotated[float, Field(gt=0, le=100_000)] = 100.0
    rotate_daily: bool = True
    keep: Annotated[int, Field(ge=1, le=10_000)] = 14         # rotated files kept


class Metering(_Closed):
    ledger: LedgerSettings = LedgerSettings()


class Budget(_Closed):
    """A spending limit for a team or a key, per UTC day or month, and what happens at it."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    team: str | None = None
    key: str | None = None
    period: Literal["day", "month"]
    limit_usd: Annotated[Decimal, Field(gt=0)]
    action: Literal["warn", "downgrade", "reject"]
    warn_at_percent: Annotated[float, Field(ge=0, le=100)] = 80.0
    to: str | None = None                                     # with downgrade: the cheaper route

    @model_validator(mode="after")
    def one_owner(self) -> Budget:
        if (self.team is None) == (self.key is None):
            raise ValueError("give exactly one of team and key")
        if (self.action == "downgrade") != (self.to is not None):
            raise ValueError("'to' (a route name) goes with action: downgrade, and only with it")
        return self
