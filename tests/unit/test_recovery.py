"""Coming back from an ejection: active probes, and the slow-start ramp. Pure, on an injected clock."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from gateway.policy.schema import Breaker
from gateway.routing.breaker import Health, Outcome, State, on_outcome
from gateway.routing.planner import plan
from gateway.routing.recovery import SLOW_START_FLOOR, on_probe, probe_interval, traffic_share

CFG = Breaker(consecutive_failures=2, base_ejection_s=30, max_ejection_s=300, probe_requests=2,
              probe_interval_s=5, slow_start_s=10)


def ejected(at: float = 0.0, ejections: int = 1) -> Health:
    h = Health()
    for i in range(CFG.consecutive_failures):
        h = on_outcome(h, Outcome(ok=False, at=at, reason="server_error"), CFG)
    assert h.state is State.EJECTED
    return replace(h, ejections=ejections, ejected_until=at + 30 * ejections)


def test_a_failed_probe_leaves_the_ejection_as_it_was() -> None:
    h = ejected(0)
    after = on_probe(h, Outcome(ok=False, at=5, reason="server_error"), CFG)
    assert (after.state, after.ejected_until, after.ejections) == (State.EJECTED, h.ejected_until, h.ejections)


def test_a_probe_that_succeeds_ends_even_a_long_ejection_at_once() -> None:
    h = ejected(0, ejections=8)                     # 240 s to go
    after = on_probe(h, Outcome(ok=True, at=5, ttft_s=0.1), CFG)
    assert after.state is State.PROBING
    assert after.probe_successes == 1               # the probe counts as the first probe request


def test_probe_requests_after_a_good_probe_bring_it_back_and_start_the_ramp() -> None:
    h = on_probe(ejected(0), Outcome(ok=True, at=5, ttft_s=0.1), CFG)
    h = on_outcome(h, Outcome(ok=True, at=5.5, ttft_s=0.1), CFG)
    assert h.state is State.HEALTHY and h.recovered_at == 5.5


def test_a_probe_of_a_deployment_that_is_not_ejected_is_an_ordinary_outcome() -> None:
    assert on_probe(Health(), Outcome(ok=True, at=1, ttft_s=0.1), CFG).state is State.HEALTHY


def test_probe_intervals_are_jittered_around_the_interval() -> None:
    assert probe_interval(CFG, 0.0) == 3.75 and probe_interval(CFG, 0.5) == 5.0
    assert 5.0 < probe_interval(CFG, 0.99) < 6.25


def test_slow_start_ramps_from_a_floor_to_all_traffic_over_its_window() -> None:
    h = Health(recovered_at=100.0)
    assert traffic_share(h, 100.0, CFG) == SLOW_START_FLOOR
    assert traffic_share(h, 105.0, CFG) == 0.5
    assert traffic_share(h, 110.0, CFG) == 1.0
    assert traffic_share(Health(), 100.0, CFG) == 1.0
    assert traffic_share(h, 100.0, CFG.model_copy(update={"slow_start_s": 0})) == 1.0


def test_the_planner_gives_a_recovering_primary_its_slow_start_share() -> None:
    rng = random.Random(7)
    primary = Health(recovered_at=0.0)

    def firsts(now: float) -> Counter[int]:
        return Counter(plan([0, 1], [1, 1], [primary, Health()], [True, True], CFG, True, rng, now=now).order[0]
                       for _ in range(1000))

    assert 150 < firsts(2.5)[0] < 350      # a quarter of the way: about a quarter of the requests
    assert firsts(10.0)[0] == 1000         # the window is over: all of them


def test_a_probe_answered_429_with_retry_after_keeps_it_out_that_long() -> None:
    h = on_probe(ejected(0), Outcome(ok=False, at=5, reason="rate_limited", eject_for_s=60), CFG)
    assert h.state is State.EJECTED and h.asked_until == 65 and h.ejected_until == 65
