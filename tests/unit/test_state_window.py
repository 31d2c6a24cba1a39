"""Sliding windows of per-second counts: admission and when to come back."""

from __future__ import annotations

import pytest

from gateway.state.window import judge

NOW = 1000.4


def test_a_cost_that_fits_is_admitted_and_counted() -> None:
    taken = judge({990: 2, 1000: 1}, 5, 1, 60, NOW)
    assert (taken.admitted, taken.used, taken.retry_after_s) == (True, 4, 0.0)
    assert taken.reset_s == pytest.approx(990 + 60 - NOW)


def test_a_full_window_says_when_enough_of_it_has_passed() -> None:
    taken = judge({950: 3, 970: 2}, 5, 1, 60, NOW)
    assert not taken.admitted and taken.used == 5
    assert taken.retry_after_s == pytest.approx(950 + 60 - NOW)


def test_a_bigger_cost_waits_for_more_seconds_to_leave() -> None:
    assert judge({950: 3, 970: 2}, 5, 4, 60, NOW).retry_after_s == pytest.approx(970 + 60 - NOW)


def test_seconds_older_than_the_window_do_not_count() -> None:
    assert judge({940: 100, 1000: 1}, 5, 1, 60, NOW).used == 2


def test_a_cost_of_nothing_is_refused_only_when_the_window_is_full() -> None:
    assert judge({1000: 99}, 100, 0, 60, NOW).admitted
    assert not judge({1000: 100}, 100, 0, 60, NOW).admitted
