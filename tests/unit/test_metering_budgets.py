"""Budget arithmetic: decisions before the spend, periods in UTC, the message that explains them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from gateway.metering.budgets import BudgetBook, period_end, period_start
from gateway.metering.record import CallRecord
from gateway.policy.metering import Budget

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def budget(action: str = "reject", **kw: Any) -> Budget:
    """`search-daily`: team search, 10 USD per UTC day."""
    fields = {"name": "search-daily", "team": "search", "period": "day", "limit_usd": Decimal(10), "action": action,
              **({"to": "cheap"} if action == "downgrade" else {}), **kw}
    return Budget.model_validate(fields)


def spent(amount: str, *budgets: Budget, at: datetime = NOON) -> BudgetBook:
    book = BudgetBook(budgets or (budget(),))
    book.add("search", "k", Decimal(amount), at)
    return book


# Decisions


def test_a_budget_with_nothing_spent_allows() -> None:
    d = BudgetBook([budget()]).decide("search", "k", NOON)
    assert (d.action, d.budget, d.route_to) == ("allow", None, None)


def test_below_the_warning_share_it_allows() -> None:
    assert spent("7.99").decide("search", "k", NOON).action == "allow"


def test_at_the_warning_share_it_warns_and_says_how_much_is_used() -> None:
    d = spent("8").decide("search", "k", NOON)
    assert d.action == "warn"
    assert d.message == ("Budget 'search-daily' (team search, 10.00 USD per day) is 80% used: 8.00 USD spent; "
                         "it resets at 2026-11-24T00:00:00Z.")


def test_the_warning_share_is_configurable() -> None:
    assert spent("5", budget(warn_at_percent=50)).decide("search", "k", NOON).action == "warn"


def test_a_used_up_reject_budget_rejects_and_says_which_budget_and_when_it_resets() -> None:
    d = spent("10.02").decide("search", "k", NOON)
    assert (d.action, d.spent, d.limit) == ("reject", Decimal("10.02"), Decimal(10))
    assert d.resets_at == datetime(2026, 11, 24, tzinfo=UTC)
    assert d.message == ("Budget 'search-daily' (team search, 10.00 USD per day) is used up: 10.02 USD spent; "
                         "it resets at 2026-11-24T00:00:00Z.")


def test_a_budget_is_used_up_exactly_at_its_limit() -> None:
    assert spent("9.999999999").decide("search", "k", NOON).action == "warn"
    assert spent("10").decide("search", "k", NOON).action == "reject"


def test_a_used_up_downgrade_budget_routes_to_its_cheaper_route() -> None:
    d = spent("10", budget("downgrade")).decide("search", "k", NOON)
    assert (d.action, d.route_to) == ("downgrade", "cheap")


def test_a_used_up_warn_budget_only_warns() -> None:
    d = spent("12", budget("warn")).decide("search", "k", NOON)
    assert (d.action, d.route_to) == ("warn", None) and "is used up" in d.message


def test_reject_beats_downgrade_beats_warn() -> None:
    warn, down = budget("warn", name="w"), budget("downgrade", name="d")
    reject = budget("reject", name="r", limit_usd=Decimal(20))
    assert spent("10", warn, down).decide("search", "k", NOON).action == "downgrade"
    book = spent("20", warn, down, reject)
    assert (book.decide("search", "k", NOON).action, book.decide("search", "k", NOON).budget) == ("reject", reject)


def test_a_used_up_budget_beats_another_ones_warning() -> None:
    nearly = budget("reject", name="big", limit_usd=Decimal(11))
    d = spent("10", budget("downgrade"), nearly).decide("search", "k", NOON)
    assert d.action == "downgrade"


# Whose budget


def test_a_team_budget_ignores_other_teams() -> None:
    book = spent("10")
    assert book.decide("ads", "k", NOON).action == "allow"


def test_a_key_budget_follows_its_key_in_any_team() -> None:
    cap = budget(name="bot-key", team=None, key="k")
    book = BudgetBook([cap])
    book.add("search", "k", Decimal(10), NOON)
    assert book.decide("ads", "k", NOON).action == "reject"
    assert book.decide("search", "other-key", NOON).action == "allow"
    assert "(key k, 10.00 USD per day)" in book.decide("ads", "k", NOON).message


def test_spend_is_charged_to_both_the_team_and_the_key_budget() -> None:
    team, key = budget(), budget(name="bot-key", team=None, key="k", limit_usd=Decimal(100))
    book = spent("4", team, key)
    assert [(b.name, left) for b, left in book.remaining(NOON)] == [("search-daily", 6), ("bot-key", 96)]


def test_remaining_never_goes_below_zero() -> None:
    assert spent("15").remaining(NOON)[0][1] == 0


# Periods


def test_a_day_rolls_over_at_utc_midnight() -> None:
    book = spent("10")
    assert book.decide("search", "k", datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=UTC)).action == "reject"
    assert book.decide("search", "k", datetime(2026, 11, 24, tzinfo=UTC)).action == "allow"


def test_a_clock_in_another_zone_is_read_in_utc() -> None:
    new_york_evening = datetime(2026, 11, 23, 20, 0, tzinfo=timezone(timedelta(hours=-5)))   # 01:00 UTC, the 24th
    assert period_start("day", new_york_evening) == datetime(2026, 11, 24, tzinfo=UTC)
    assert spent("10").decide("search", "k", new_york_evening).action == "allow"


def test_a_naive_time_is_refused_rather_than_read_as_local_time() -> None:
    with pytest.raises(ValueError):
        period_start("day", datetime(2026, 11, 23, 12))


def test_a_month_starts_on_the_first_at_utc_midnight() -> None:
    assert period_start("month", NOON) == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_end("month", NOON) == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_end("month", datetime(2026, 12, 31, 23, 0, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)


def test_a_monthly_budget_rolls_over_on_the_first() -> None:
    monthly = budget(name="search-monthly", period="month", limit_usd=Decimal(300))
    book = spent("300", monthly, at=datetime(2026, 11, 2, tzinfo=UTC))
    assert book.decide("search", "k", datetime(2026, 11, 30, 23, 59, tzinfo=UTC)).action == "reject"
    d = book.decide("search", "k", datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    assert "300.00 USD per month" in d.message and "it resets at 2026-12-01T00:00:00Z" in d.message
    assert book.decide("search", "k", datetime(2026, 12, 1, tzinfo=UTC)).action == "allow"


def test_spend_of_an_ended_period_is_dropped() -> None:
    book = spent("10")
    book.add("search", "k", Decimal(1), NOON + timedelta(days=1))
    assert book.spent(budget(), NOON + timedelta(days=1)) == 1
    assert book.spent(budget(), NOON) == 0


# Start-up


def line(ts: str, cost: str, **kw: Any) -> dict[str, Any]:
    return {"ts": ts, "team": "search", "key_id": "k", "cost_usd": cost, **kw}


def test_the_current_periods_spend_is_rebuilt_from_ledger_lines() -> None:
    book = BudgetBook([budget()])
    loaded = book.load([line("2026-11-23T01:00:00.000Z", "6"), line("2026-11-22T23:59:59.999Z", "100"),
                        line("2026-11-23T02:00:00.000Z", "4", kind="attempt")], NOON)
    assert book.spent(budget(), NOON) == 10 and loaded.counted == 2
    assert book.decide("search", "k", NOON).action == "reject"


def test_spend_is_rebuilt_from_call_records_too() -> None:
    record = CallRecord(ts=NOON.timestamp() - 60, request_id="r", team="search", app="a", key_id="k", route="chat",
                        provider="p", model="m", input_tokens=1, output_tokens=1, cached_input_tokens=0,
                        cost_usd=Decimal("2.5"), price_source="policy", usage_source="reported", outcome="ok",
                        attempts=1, fallback=False, hedged=False, stream=False, latency_s=0.1, ttft_s=None)
    book = BudgetBook([budget()])
    book.load([record], NOON)
    assert book.spent(budget(), NOON) == Decimal("2.5")


def test_unreadable_ledger_lines_are_skipped_and_counted() -> None:
    book = BudgetBook([budget()])
    loaded = book.load([{"team": "search"}, line("2026-11-23T01:00:00Z", "not money"), line("yesterday", "1"),
                        line("2026-11-23T01:00:00Z", "3")], NOON)
    assert (loaded.counted, loaded.skipped) == (1, 3)
    assert book.spent(budget(), NOON) == 3


def test_a_reloaded_budget_with_the_same_name_owner_and_period_keeps_its_spend() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    kept = Budget(name="search", team="search", period="day", limit_usd=Decimal(10), action="reject")
    moved = Budget(name="ads", team="ads", period="day", limit_usd=Decimal(10), action="warn")
    book = BudgetBook([kept, moved])
    book.add("search", "k1", Decimal("3.5"), now)
    book.add("ads", "k2", Decimal("2"), now)
    book.adopt([kept.model_copy(update={"limit_usd": Decimal(20)}), moved.model_copy(update={"period": "month"})])
    assert book.spent(book.budgets[0], now) == Decimal("3.5")
    assert book.spent(book.budgets[1], now) == Decimal(0), "a budget whose period changed starts afresh"
