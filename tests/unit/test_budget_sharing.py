"""A budget book shared between replicas: every replica's spend counts, and nothing this one knows is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.metering.budgets import BudgetBook
from gateway.policy.metering import Budget

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 23, tzinfo=UTC)
DAILY = Budget.model_validate({"name": "search-daily", "team": "search", "period": "day", "limit_usd": "10",
                               "action": "reject"})


def shared_book() -> BudgetBook:
    book = BudgetBook([DAILY])
    book.sharing = True
    return book


def test_spend_reported_by_the_other_replicas_rejects_here() -> None:
    book = shared_book()
    book.heard({("search-daily", TODAY): Decimal(10)}, NOON)
    assert book.decide("search", "k", NOON).action == "reject"


def test_a_shared_total_below_what_this_replica_knows_does_not_lower_it() -> None:
    book = shared_book()
    book.add("search", "k", Decimal(9), NOON)
    book.heard({("search-daily", TODAY): Decimal(2)}, NOON)      # e.g. a store that restarted empty
    assert book.spent(DAILY, NOON) == Decimal(9)


def test_spend_to_tell_carries_the_total_known_before_it_as_a_seed() -> None:
    book = shared_book()
    book.load([{"ts": NOON.timestamp() - 60, "team": "search", "key_id": "k", "cost_usd": "4"}], NOON)
    book.add("search", "k", Decimal("1.5"), NOON)
    book.add("search", "k", Decimal("0.5"), NOON)
    assert book.take_unshared() == {("search-daily", TODAY): (Decimal(2), Decimal(4))}
    assert book.take_unshared() == {}


def test_spend_that_could_not_be_told_is_told_next_time() -> None:
    book = shared_book()
    book.add("search", "k", Decimal(1), NOON)
    untold = {key: delta for key, (delta, _) in book.take_unshared().items()}
    book.untold(untold)
    book.add("search", "k", Decimal(2), NOON)
    assert book.take_unshared()[("search-daily", TODAY)][0] == Decimal(3)


def test_a_book_that_does_not_share_keeps_nothing_to_tell() -> None:
    book = BudgetBook([DAILY])
    book.add("search", "k", Decimal(1), NOON)
    assert book.take_unshared() == {}


def test_shared_totals_of_an_ended_period_are_dropped() -> None:
    book = shared_book()
    book.heard({("search-daily", TODAY): Decimal(10)}, NOON)
    tomorrow = NOON + timedelta(days=1)
    book.heard({}, tomorrow)
    assert book.decide("search", "k", tomorrow).action == "allow"
