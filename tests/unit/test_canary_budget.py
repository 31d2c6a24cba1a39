"""The canaries' daily budget: reserved at the worst case before a call, so spend never passes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.canaries.budget import CanaryBudget

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_call_that_might_pass_the_budget_is_not_made() -> None:
    b = CanaryBudget(Decimal("0.010"))
    assert b.reserve(Decimal("0.004"), NOON)
    assert b.reserve(Decimal("0.004"), NOON)
    assert not b.reserve(Decimal("0.004"), NOON)     # 0.012 could be spent: refused while both are in flight


def test_settling_frees_what_the_call_did_not_spend() -> None:
    b = CanaryBudget(Decimal("0.010"))
    for _ in range(2):
        assert b.reserve(Decimal("0.004"), NOON)
        b.settle(Decimal("0.004"), Decimal("0.001"), NOON)
    assert b.spent == Decimal("0.002") and b.reserved == 0
    assert b.reserve(Decimal("0.008"), NOON)


def test_spend_never_passes_the_budget_whatever_the_order() -> None:
    b = CanaryBudget(Decimal("0.05"))
    made = 0
    for i in range(100):
        worst = Decimal("0.003")
        if b.reserve(worst, NOON):
            made += 1
            b.settle(worst, Decimal("0.002") if i % 2 else worst, NOON)
    assert b.spent <= Decimal("0.05") and made < 100


def test_a_new_utc_day_brings_a_new_budget() -> None:
    b = CanaryBudget(Decimal("0.01"))
    assert b.reserve(Decimal("0.01"), NOON)
    b.settle(Decimal("0.01"), Decimal("0.01"), NOON)
    assert not b.reserve(Decimal("0.001"), NOON + timedelta(hours=11))
    assert b.reserve(Decimal("0.001"), NOON + timedelta(hours=12))


def test_todays_canary_spend_is_read_back_from_the_ledger() -> None:
    b = CanaryBudget(Decimal("0.01"))
    b.load([{"ts": "2026-11-30T01:00:00.000Z", "kind": "canary", "cost_usd": "0.009"},
            {"ts": "2026-11-29T23:00:00.000Z", "kind": "canary", "cost_usd": "0.5"},      # yesterday
            {"ts": "2026-11-30T02:00:00.000Z", "kind": "request", "cost_usd": "0.5"},     # a team's
            {"ts": "garbage", "kind": "canary", "cost_usd": "1"}], NOON)
    assert b.spent == Decimal("0.009")
    assert not b.reserve(Decimal("0.002"), NOON)
