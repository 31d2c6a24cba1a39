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
