"""Budget arithmetic: decisions before the spend, periods in UTC, the message that explains them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gateway.metering.budgets import BudgetBook, period_end, period_start
from gateway.metering.schema import Budget

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def budget(action: str = "reject", **kw: object) -> Budget:
    fields = {"name": "search-daily", "team": "search", "period": "day", "limit_usd": Decimal(10), "action": action,
              **({"to": "cheap"} if action == "downgrade" else {}), **kw}
    return Budget.model_validate(fields)


def test_an_unspent_budget_allows() -> None:
    assert BudgetBook([budget()]).decide("search", "k", NOON).action == "allow"


def test_past_the_warning_share_it_warns() -> None:
    book = BudgetBook([budget(warn_at_percent=80)])
    book.add("search", "k", Decimal(8), NOON)
    d = book.decide("search", "k", NOON)
    assert d.action == "warn" and "80% used" in d.message


def test_a_used_up_budget_applies_its_action_with_a_message_naming_it_and_its_reset() -> None:
    book = BudgetBook([budget()])
    book.add("search", "k", Decimal("10.02"), NOON)
    d = book.decide("search", "k", NOON)
    assert d.action == "reject"
    assert d.message == ("Budget 'search-daily' (team search, 10.00 USD per day) is used up: 10.02 USD spent; "
                         "it resets at 2026-11-24T00:00:00Z.")


def test_downgrade_names_the_route() -> None:
    book = BudgetBook([budget("downgrade")])
    book.add("search", "k", Decimal(10), NOON)
    assert book.decide("search", "k", NOON).route_to == "cheap"


def test_the_severest_action_wins() -> None:
    book = BudgetBook([budget("warn"), budget("reject", name="key-cap", team=None, key="k")])
    book.add("search", "k", Decimal(10), NOON)
    assert book.decide("search", "k", NOON).action == "reject"


def test_budgets_apply_only_to_their_team_or_key() -> None:
    book = BudgetBook([budget(), budget(name="k2", team=None, key="other-key")])
    book.add("search", "k", Decimal(10), NOON)
    assert book.decide("ads", "k9", NOON).action == "allow"
    assert book.decide("ads", "other-key", NOON).action == "allow"


def test_a_new_utc_day_starts_from_zero() -> None:
    book = BudgetBook([budget()])
    book.add("search", "k", Decimal(10), NOON)
    assert book.decide("search", "k", datetime(2026, 11, 24, 0, 0, 1, tzinfo=UTC)).action == "allow"


def test_monthly_periods_start_on_the_first() -> None:
    assert period_start("month", NOON) == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_end("month", NOON) == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_end("month", datetime(2026, 12, 5, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)


def test_spend_is_rebuilt_from_ledger_lines() -> None:
    book = BudgetBook([budget()])
    book.load([{"ts": "2026-11-23T01:00:00.000Z", "team": "search", "key_id": "k", "cost_usd": "6"},
               {"ts": "2026-11-22T23:00:00.000Z", "team": "search", "key_id": "k", "cost_usd": "100"},
               {"ts": "2026-11-23T02:00:00.000Z", "team": "search", "key_id": "k", "cost_usd": "4"}], now=NOON)
    assert book.decide("search", "k", NOON).action == "reject"


def test_a_budget_needs_exactly_one_owner() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        budget(key="k")
    with pytest.raises(ValidationError):
        budget(team=None)
