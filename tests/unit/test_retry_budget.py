from __future__ import annotations

from gateway.routing.retry_budget import RetryBudget


def test_retries_are_capped_at_a_share_of_recent_requests() -> None:
    budget = RetryBudget(percent=20, min_per_s=0, window_s=10)
    for _ in range(100):
        budget.on_request(1.0)
    granted = sum(budget.try_spend(1.0) for _ in range(50))
    assert granted == 20


def test_a_minimum_rate_of_retries_is_always_allowed() -> None:
    budget = RetryBudget(percent=20, min_per_s=0.3, window_s=10)
    assert sum(budget.try_spend(0.0) for _ in range(10)) == 3


def test_the_budget_refills_as_the_window_slides() -> None:
    budget = RetryBudget(percent=50, min_per_s=0, window_s=10)
    for _ in range(10):
        budget.on_request(0.0)
    assert sum(budget.try_spend(0.0) for _ in range(10)) == 5
    for _ in range(10):
        budget.on_request(11.0)
    assert sum(budget.try_spend(11.0) for _ in range(10)) == 5


def shared_budget() -> RetryBudget:
    budget = RetryBudget(percent=20, min_per_s=0, window_s=10)
    budget.share()
    return budget


def test_shared_retries_are_capped_at_a_share_of_every_replicas_requests() -> None:
    budget = shared_budget()
    budget.hear(100, 19)               # the others' requests make room; their retries used most of it
    assert [budget.try_spend(1.0) for _ in range(2)] == [True, False]


def test_what_this_replica_counted_since_the_last_exchange_counts_too() -> None:
    budget = shared_budget()
    budget.hear(50, 0)
    for _ in range(50):
        budget.on_request(1.0)         # not yet told: 100 requests in all
    assert sum(budget.try_spend(1.0) for _ in range(30)) == 20
    assert budget.take_unsent() == (50, 20)
    assert budget.take_unsent() == (0, 0)


def test_a_shared_total_never_loosens_what_this_replica_counted_itself() -> None:
    budget = shared_budget()
    for _ in range(10):
        budget.on_request(1.0)
    budget.take_unsent()
    budget.hear(0, 0)                  # e.g. a store that restarted empty
    assert sum(budget.try_spend(1.0) for _ in range(5)) == 2


def test_a_budget_that_does_not_share_has_nothing_to_tell() -> None:
    budget = RetryBudget(percent=20, min_per_s=0, window_s=10)
    budget.on_request(1.0)
    assert budget.take_unsent() == (0, 0)
