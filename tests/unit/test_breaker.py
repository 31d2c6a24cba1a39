"""The breaker as a pure state machine: lists of (outcome, time) in, states out. No sockets, no sleeps."""

from __future__ import annotations

from gateway.policy.schema import Breaker
from gateway.routing.breaker import BASELINE_SAMPLES, Health, Outcome, Speed, State, back_in, current, on_outcome

CFG = Breaker(consecutive_failures=3, failure_rate=0.5, degraded_failure_rate=0.2, min_requests=10,
              window_s=10, base_ejection_s=3, max_ejection_s=20, slow_ttft_factor=3, eject_ttft_factor=10, slow_min_s=0,
              probe_requests=2)


def run(outcomes: list[Outcome], h: Health | None = None, cfg: Breaker = CFG) -> Health:
    h = h or Health()
    for o in outcomes:
        h = on_outcome(h, o, cfg)
    return h


def ok(at: float, ttft: float | None = 0.1, stream: bool = True) -> Outcome:
    return Outcome(ok=True, at=at, ttft_s=ttft, stream=stream)


def fail(at: float, reason: str = "server_error", eject_for_s: float | None = None) -> Outcome:
    return Outcome(ok=False, at=at, reason=reason, eject_for_s=eject_for_s)


def test_a_healthy_deployment_stays_healthy() -> None:
    assert run([ok(t * 0.1) for t in range(50)]).state is State.HEALTHY


def test_failures_in_a_row_eject_for_the_base_ejection_time() -> None:
    h = run([ok(0), fail(1), fail(2), fail(3)])
    assert h.state is State.EJECTED
    assert h.ejected_until == 3 + 3
    assert "3 failures in a row" in h.reason


def test_a_success_between_failures_resets_the_count() -> None:
    assert run([fail(1), fail(2), ok(3), fail(4), fail(5)]).state is not State.EJECTED


def test_a_failure_rate_over_the_window_ejects_once_enough_requests_were_seen() -> None:
    pattern = [fail(t * 0.1) if t % 2 else ok(t * 0.1) for t in range(10)]
    h = run(pattern)
    assert h.state is State.EJECTED and "error rate 50%" in h.reason


def test_too_few_requests_do_not_make_a_rate() -> None:
    h = run([ok(0), fail(0.1), ok(0.2), fail(0.3)])
    assert h.state is State.HEALTHY


def test_a_moderate_error_rate_degrades_without_ejecting() -> None:
    pattern = [fail(t * 0.1) if t % 4 == 0 else ok(t * 0.1) for t in range(12)]
    h = run(pattern)
    assert h.state is State.DEGRADED and "error rate" in h.reason


def test_old_failures_leave_the_window() -> None:
    pattern = [fail(t * 0.1) if t % 4 == 0 else ok(t * 0.1) for t in range(12)]
    h = run(pattern + [ok(20 + t * 0.1) for t in range(12)])
    assert h.state is State.HEALTHY


def test_a_429_with_retry_after_ejects_for_at_least_retry_after() -> None:
    h = run([ok(0), fail(1, "rate_limited", eject_for_s=30)])
    assert h.state is State.EJECTED
    assert h.ejected_until == 31
    assert back_in(h, 11) == 20


def test_ejection_time_grows_with_repeated_ejections_and_is_capped() -> None:
    h = Health()
    durations = []
    t = 0.0
    for _ in range(10):
        h = run([fail(t), fail(t), fail(t)], h)
        durations.append(h.ejected_until - t)
        t = h.ejected_until + 0.1
        h = run([fail(t)], h)  # the probe fails: ejected again, for longer
        durations.append(h.ejected_until - t)
        t = h.ejected_until + 0.1
    assert durations[:4] == [3, 6, 9, 12]
    assert max(durations) == 20


def test_after_the_ejection_the_deployment_is_probing() -> None:
    h = run([fail(0), fail(0), fail(0)])
    assert current(h, 2.9, CFG).state is State.EJECTED
    assert current(h, 3.0, CFG).state is State.PROBING


def test_probe_successes_bring_it_back_to_healthy() -> None:
    h = run([fail(0), fail(0), fail(0), ok(3.5)])
    assert h.state is State.PROBING
    h = run([ok(3.6)], h)
    assert h.state is State.HEALTHY and h.reason == "recovered"


def test_a_failed_probe_ejects_again_for_longer() -> None:
    h = run([fail(0), fail(0), fail(0), fail(3.5)])
    assert h.state is State.EJECTED and h.ejections == 2 and h.ejected_until == 3.5 + 6


def test_outcomes_of_attempts_begun_before_the_ejection_do_not_change_it() -> None:
    h = run([fail(0), fail(0), fail(0), ok(1), ok(1.1)])
    assert h.state is State.EJECTED


def test_first_tokens_far_slower_than_usual_degrade_then_eject() -> None:
    usual = [ok(t * 0.1, ttft=0.1) for t in range(20)]
    degraded = run(usual + [ok(2.1 + t * 0.1, ttft=0.5) for t in range(3)])
    assert degraded.state is State.DEGRADED and "slower than usual" in degraded.reason
    ejected = run(usual + [ok(2.1 + t * 0.1, ttft=2.0) for t in range(3)])
    assert ejected.state is State.EJECTED and "slower than usual" in ejected.reason


def test_a_slowdown_is_not_judged_before_enough_samples() -> None:
    assert run([ok(0, ttft=0.1), ok(0.1, ttft=5.0)]).state is State.HEALTHY


def test_a_few_sub_millisecond_answers_are_no_baseline_to_eject_on() -> None:
    # An idle moment, then the same deployment on a busy machine: not an upstream brownout.
    cfg = CFG.model_copy(update={"slow_min_s": 0.2})
    idle = [ok(t * 0.01, ttft=0.0005) for t in range(8)]
    busy = [ok(1 + t * 0.01, ttft=0.4) for t in range(BASELINE_SAMPLES - 9)]
    assert run(idle + busy, cfg=cfg).state is State.HEALTHY
    # Judged once the baseline has its samples: far slower than all of them is still caught.
    far = [ok(2 + t * 0.01, ttft=30.0) for t in range(5)]
    assert run(idle + busy + far, cfg=cfg).state is State.EJECTED


def test_the_baseline_learns_from_all_its_first_samples_alike() -> None:
    speed = Speed()
    for seconds in [0.001] * 10 + [0.021] * 10:
        speed = speed.add(seconds, slow_factor=3)
    assert abs(speed.baseline - 0.011) < 1e-9     # their mean, not the first sample's 1 ms
    assert speed.samples == BASELINE_SAMPLES
    later = speed.add(0.5, slow_factor=3)           # past the warm-up a far slower answer barely moves it
    assert later.baseline - speed.baseline < 0.002


def test_stream_and_non_stream_speeds_are_kept_apart() -> None:
    streams = [ok(t * 0.1, ttft=0.05, stream=True) for t in range(20)]
    whole = [ok(2 + t * 0.1, ttft=2.0, stream=False) for t in range(20)]
    assert run(streams + whole).state is State.HEALTHY


def test_a_probe_still_far_too_slow_ejects_again() -> None:
    usual = [ok(t * 0.01, ttft=0.1) for t in range(20)]
    slow = [ok(1 + t * 0.01, ttft=3.0) for t in range(3)]
    h = run(usual + slow)
    assert h.state is State.EJECTED
    h = run([ok(h.ejected_until + 0.1, ttft=3.0)], h)
    assert h.state is State.EJECTED and h.ejections == 2


def test_ejections_are_forgiven_after_a_long_healthy_spell() -> None:
    h = run([fail(0), fail(0), fail(0), ok(3.5), ok(3.6)])
    assert h.ejections == 1
    assert current(h, 3.6 + 20, CFG).ejections == 0


def test_a_slowdown_smaller_than_the_minimum_gap_is_jitter() -> None:
    cfg = CFG.model_copy(update={"slow_min_s": 0.2})
    usual = [ok(t * 0.01, ttft=0.002) for t in range(20)]
    h = run(usual + [ok(1 + t * 0.01, ttft=0.05) for t in range(5)], cfg=cfg)  # 25x slower, but only 48 ms
    assert h.state is State.HEALTHY
