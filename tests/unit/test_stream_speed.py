"""A first token judged against the deployment's own baseline, and a stream's token rate. Pure."""

from __future__ import annotations

from gateway.policy.schema import Breaker, Timeouts
from gateway.routing.breaker import BASELINE_SAMPLES, Health, Outcome, State, on_outcome
from gateway.routing.stream_speed import MIN_BASELINE_SAMPLES, SampleWindow, first_token_limit, token_gap

T = Timeouts(first_token_s=15, first_token_factor=5, first_token_floor_s=2)


def window(*samples: float) -> SampleWindow:
    w = SampleWindow(size=50)
    for s in samples:
        w.add(s)
    return w


def test_a_cold_deployment_with_no_baseline_anywhere_waits_the_cold_limit_not_the_cap() -> None:
    assert first_token_limit(None, T) == 4.0
    assert first_token_limit(window(*[0.4] * (MIN_BASELINE_SAMPLES - 1)), T) == 4.0
    assert first_token_limit(None, T.model_copy(update={"first_token_s": 3})) == 3   # the cap still caps


def test_a_cold_deployment_is_judged_by_the_slowest_baseline_among_its_route_peers() -> None:
    peers = [window(*[0.4] * 30), window(*[1.0] * 30), window(*[9.0] * 3), None]
    assert first_token_limit(None, T, peers) == 5 * 1.0            # the too-short window says nothing
    assert first_token_limit(window(*[0.4] * 30), T, peers) == 2.0  # its own baseline comes first


def test_a_fast_deployment_gets_the_floor_not_the_cap() -> None:
    assert first_token_limit(window(*[0.4] * 30), T) == 2.0           # 5 × 0.4 s is under the floor


def test_the_limit_follows_the_recent_p99() -> None:
    samples = [0.5] * 99 + [1.0]                                        # p99 of 100 samples: 0.5
    assert first_token_limit(window(*samples[-50:]), T) == 5 * 1.0    # the window keeps the last 50
    assert first_token_limit(window(*[0.5] * 100), T) == 2.5


def test_a_slow_baseline_is_capped_by_first_token_s() -> None:
    assert first_token_limit(window(*[10.0] * 30), T) == 15


def test_a_factor_of_zero_turns_the_relative_limit_off() -> None:
    assert first_token_limit(window(*[0.4] * 30), T.model_copy(update={"first_token_factor": 0})) == 15


def test_the_window_forgets_the_oldest_sample() -> None:
    w = SampleWindow(size=3)
    for s in (9.0, 1.0, 2.0, 3.0):
        w.add(s)
    assert (len(w), w.percentile(100), w.percentile(1)) == (3, 3.0, 1.0)


def test_token_gap_needs_a_stream_long_enough_to_tell() -> None:
    assert token_gap(5, 1.0) is None
    assert token_gap(11, 1.0) == 0.1


CFG = Breaker(slow_tokens_factor=10, slow_token_min_s=0.02, slow_min_s=0)


def stream_done(at: float, gap: float) -> Outcome:
    return Outcome(ok=True, at=at, ttft_s=0.1, stream=True, token_gap_s=gap)


def test_tokens_far_slower_than_usual_degrade_the_deployment() -> None:
    h = Health()
    for i in range(BASELINE_SAMPLES):
        h = on_outcome(h, stream_done(i, 0.01), CFG)          # a hundred tokens a second
    assert h.state is State.HEALTHY
    h = on_outcome(h, stream_done(BASELINE_SAMPLES + 1, 1.0), CFG)   # one a second
    assert h.state is State.DEGRADED and "tokens" in h.reason


def test_jitter_on_a_fast_stream_is_not_a_brownout() -> None:
    h = Health()
    for i in range(BASELINE_SAMPLES):
        h = on_outcome(h, stream_done(i, 0.0001), CFG)
    h = on_outcome(h, stream_done(BASELINE_SAMPLES + 1, 0.005), CFG)            # 50× slower, but 5 ms a token is still fast
    assert h.state is State.HEALTHY
