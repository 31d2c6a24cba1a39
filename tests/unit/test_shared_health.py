"""Merging what other replicas saw into this replica's health of a deployment: newer news wins."""

from __future__ import annotations

from dataclasses import replace

from gateway.policy.schema import Breaker
from gateway.routing.breaker import Health, State, Window, eject
from gateway.routing.shared_health import Ejection, SharedView, ejection_of, merge

CFG = Breaker(failure_rate=0.5, min_requests=10, window_s=10, base_ejection_s=5)


def test_an_ejection_decided_elsewhere_is_adopted_until_it_runs_out() -> None:
    h = merge(Health(since=0.0), SharedView(ejection=Ejection(100.0, 105.0, 1, "error rate 90%")), 101.0, CFG)
    assert (h.state, h.ejected_until, h.ejections, h.reason) == (State.EJECTED, 105.0, 1, "error rate 90%")


def test_an_ejection_that_ran_out_is_not_adopted() -> None:
    assert merge(Health(since=0.0), SharedView(ejection=Ejection(90.0, 95.0, 1, "x")), 101.0, CFG).state \
        is State.HEALTHY


def test_a_replica_that_recovered_after_an_ejection_ignores_it() -> None:
    recovered = Health(state=State.HEALTHY, reason="recovered", since=103.0, ejections=1)
    assert merge(recovered, SharedView(ejection=Ejection(100.0, 110.0, 1, "x")), 104.0, CFG) is recovered


def test_a_replica_that_just_started_adopts_an_ejection_older_than_itself() -> None:
    fresh = Health(since=103.0)
    assert merge(fresh, SharedView(ejection=Ejection(100.0, 110.0, 1, "x")), 104.0, CFG).state is State.EJECTED


def test_our_own_ejection_read_back_changes_nothing() -> None:
    ours = eject(Health(since=0.0), 100.0, CFG, "5 failures in a row")
    assert merge(ours, SharedView(ejection=ejection_of(ours)), 101.0, CFG) is ours


def test_a_longer_ejection_elsewhere_extends_ours() -> None:
    ours = eject(Health(since=0.0), 100.0, CFG, "5 failures in a row")
    longer = Ejection(100.5, 130.0, 2, "probe failed")
    assert merge(ours, SharedView(ejection=longer), 101.0, CFG).ejected_until == 130.0


def test_a_recovery_elsewhere_ends_our_ejection_and_starts_a_clean_window() -> None:
    ours = replace(eject(Health(since=0.0), 100.0, CFG, "x"), window=Window(((1, 0, 9),)))
    h = merge(ours, SharedView(recovered_at=106.0), 107.0, CFG)
    assert (h.state, h.since, h.window) == (State.HEALTHY, 106.0, Window())


def test_a_recovery_older_than_our_ejection_is_ignored() -> None:
    ours = eject(Health(since=0.0), 100.0, CFG, "x")
    assert merge(ours, SharedView(recovered_at=99.0), 101.0, CFG) is ours


def test_failures_seen_by_all_replicas_together_eject() -> None:
    # Three replicas each saw 2 failures and 1 success a second: none alone reached min_requests.
    seconds = [(100.0 + i, 3, 6) for i in range(3)]
    h = merge(Health(since=0.0), SharedView(seconds=seconds), 103.0, CFG)
    assert h.state is State.EJECTED and "across replicas" in h.reason


def test_failures_from_before_the_last_recovery_do_not_count_again() -> None:
    recovered = Health(state=State.HEALTHY, reason="recovered", since=102.5, ejections=1)
    seconds = [(100.0, 0, 20), (101.0, 0, 20), (102.0, 0, 20), (103.0, 5, 0)]
    assert merge(recovered, SharedView(seconds=seconds), 104.0, CFG) is recovered


def test_failures_older_than_the_window_do_not_count() -> None:
    seconds = [(80.0, 0, 50), (101.0, 9, 1)]
    assert merge(Health(since=0.0), SharedView(seconds=seconds), 102.0, CFG).state is State.HEALTHY


def test_a_note_from_another_version_is_ignored() -> None:
    assert Ejection.decode("garbage", 0.0) is None
    assert Ejection.decode(Ejection(1.0, 2.0, 3, "a|b").encode(10.0), 10.0) == Ejection(1.0, 2.0, 3, "a|b")
