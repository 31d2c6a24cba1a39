"""Quality signals in the breaker: canaries degrade and eject like errors do, and release the same way."""

from __future__ import annotations

from gateway.policy.schema import Breaker
from gateway.quality.verdict import Signal
from gateway.routing.breaker import Health, Outcome, State, current, on_outcome, on_quality

CFG = Breaker(base_ejection_s=10, max_ejection_s=60, probe_requests=2, min_requests=5)
WHY = "quality: canaries pass 30% over the last 3 runs, baseline 100%"


def fast_ok(at: float) -> Outcome:
    return Outcome(ok=True, at=at, ttft_s=0.01)


def test_poor_answers_degrade_a_healthy_deployment_with_reason_quality() -> None:
    h = on_quality(Health(), Signal.DEGRADED, WHY, 1.0, CFG)
    assert h.state is State.DEGRADED and h.reason == WHY and h.since == 1.0


def test_fast_error_free_traffic_does_not_clear_a_quality_degradation() -> None:
    h = on_quality(Health(), Signal.DEGRADED, WHY, 1.0, CFG)
    for i in range(20):
        h = on_outcome(h, fast_ok(2.0 + i * 0.1), CFG)
    assert h.state is State.DEGRADED and h.reason.startswith("quality")


def test_passing_canaries_make_it_healthy_again() -> None:
    h = on_quality(on_quality(Health(), Signal.DEGRADED, WHY, 1.0, CFG), Signal.OK, "", 5.0, CFG)
    assert h.state is State.HEALTHY and h.quality == "" and h.reason == "recovered"


def test_mostly_wrong_answers_eject_and_passing_canaries_let_it_probe() -> None:
    h = on_quality(Health(), Signal.EJECTED, WHY, 1.0, CFG)
    assert h.state is State.EJECTED and h.ejected_until == 11.0 and h.reason == WHY
    h = on_quality(h, Signal.OK, "", 4.0, CFG)
    assert h.state is State.PROBING
    h = on_outcome(on_outcome(h, fast_ok(4.1), CFG), fast_ok(4.2), CFG)
    assert h.state is State.HEALTHY


def test_a_quality_ejection_that_runs_out_probes_back_to_degraded_not_healthy() -> None:
    h = on_quality(Health(), Signal.EJECTED, WHY, 1.0, CFG)
    h = current(h, 12.0, CFG)
    assert h.state is State.PROBING
    h = on_outcome(on_outcome(h, fast_ok(12.1), CFG), fast_ok(12.2), CFG)
    assert h.state is State.DEGRADED and h.reason == WHY


def test_quality_does_not_overrule_an_ejection_for_errors_but_is_remembered() -> None:
    h = on_outcome(Health(), Outcome(ok=False, at=1.0, reason="rate_limited", eject_for_s=30), CFG)
    h = on_quality(h, Signal.DEGRADED, WHY, 2.0, CFG)
    assert h.state is State.EJECTED and h.reason.startswith("rate limited") and h.quality == WHY
    assert on_quality(h, Signal.OK, "", 3.0, CFG).state is State.EJECTED


def test_a_healthy_deployment_with_good_canaries_is_left_as_it_is() -> None:
    h = Health(since=1.0)
    assert on_quality(h, Signal.OK, "", 2.0, CFG) is h
