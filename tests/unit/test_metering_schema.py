"""The metering keys of a policy: ledger settings and budgets, closed and checked."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.policy.metering import Budget, LedgerSettings, Metering


def budget(**kw: Any) -> Budget:
    return Budget.model_validate({"name": "b", "team": "search", "period": "day", "limit_usd": "10",
                                  "action": "reject", **kw})


def test_by_default_there_is_no_ledger_file() -> None:
    settings = Metering().ledger
    assert (settings.path, settings.rotate_mb, settings.rotate_daily, settings.keep) == (None, 100, True, 14)


def test_ledger_settings_refuse_unknown_keys_and_a_zero_size() -> None:
    with pytest.raises(ValidationError):
        LedgerSettings.model_validate({"path": "l.jsonl", "rotate_megabytes": 5})
    with pytest.raises(ValidationError):
        LedgerSettings(rotate_mb=0)


def test_a_budget_limit_from_yaml_is_the_decimal_written() -> None:
    assert budget(limit_usd=10.1).limit_usd == Decimal("10.1")


def test_a_budget_needs_exactly_one_of_team_and_key() -> None:
    with pytest.raises(ValidationError, match="exactly one of team and key"):
        budget(key="k")
    with pytest.raises(ValidationError, match="exactly one of team and key"):
        budget(team=None)
    assert budget(team=None, key="k").key == "k"


def test_downgrade_needs_a_route_and_only_downgrade_takes_one() -> None:
    with pytest.raises(ValidationError, match="'to'"):
        budget(action="downgrade")
    with pytest.raises(ValidationError, match="'to'"):
        budget(action="warn", to="cheap")
    assert budget(action="downgrade", to="cheap").to == "cheap"


@pytest.mark.parametrize("bad", [{"limit_usd": 0}, {"limit_usd": "NaN"}, {"warn_at_percent": 101},
                                 {"period": "week"}, {"action": "block"}, {"team": ""}])
def test_a_budget_refuses_values_that_cannot_work(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        budget(**bad)


def test_a_budget_is_frozen() -> None:
    with pytest.raises(ValidationError):
        budget().limit_usd = Decimal(1)  # type: ignore[misc]
