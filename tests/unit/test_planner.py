"""The planner's order for a request, from health snapshots and a seeded random source."""

from __future__ import annotations

import random
from collections import Counter

from gateway.policy.schema import Breaker
from gateway.routing.breaker import Health, Speed, State
from gateway.routing.planner import plan, slower_than_peers

CFG = Breaker(panic_percent=50, degraded_share=0.1)
H = Health()


def order(healths: list[Health], priorities: list[int] | None = None, weights: list[int] | None = None,
          probe_free: list[bool] | None = None, seed: int = 1, explore: bool = False) -> tuple[int, ...]:
    n = len(healths)
    return plan(priorities or list(range(n)), weights or [1] * n, healths, probe_free or [True] * n, CFG,
                stream=True, rng=random.Random(seed), explore=explore).order


def state(s: State, **kw: object) -> Health:
    return Health(state=s, **kw)  # type: ignore[arg-type]


def test_healthy_targets_keep_policy_order() -> None:
    assert order([H, H, H]) == (0, 1, 2)


def test_an_ejected_target_is_left_out() -> None:
    assert order([state(State.EJECTED), H, H]) == (1, 2)


def test_probing_takes_part_only_with_a_free_slot() -> None:
    assert order([state(State.PROBING), H], probe_free=[True, True]) == (0, 1)
    assert order([state(State.PROBING), H], probe_free=[False, True]) == (1,)


def test_below_the_panic_threshold_every_target_is_tried() -> None:
    p = plan([0, 1], [1, 1], [state(State.EJECTED), state(State.EJECTED)], [False, False], CFG, True,
             random.Random(0))
    assert p.panic and p.order == (0, 1)


def test_at_the_panic_threshold_health_still_counts() -> None:
    p = plan([0, 1], [1, 1], [state(State.EJECTED), H], [False, True], CFG, True, random.Random(0))
    assert not p.panic and p.order == (1,)


def test_a_degraded_target_keeps_only_its_degraded_share() -> None:
    firsts = Counter(order([state(State.DEGRADED), H], seed=s)[0] for s in range(1000))
    assert 50 <= firsts[0] <= 150  # about 10 % of 1,000


def test_equal_priorities_are_balanced_by_weight() -> None:
    firsts = Counter(order([H, H], priorities=[0, 0], weights=[3, 1], seed=s)[0] for s in range(2000))
    assert 1350 <= firsts[0] <= 1650  # about 75 %


def test_the_faster_of_two_equal_peers_goes_first() -> None:
    fast, slow = Health(ttft=Speed(0.01, 0.01, 10)), Health(ttft=Speed(0.02, 0.02, 10))
    assert all(order([slow, fast], priorities=[0, 0], seed=s)[0] == 1 for s in range(50))


def test_a_target_far_slower_than_its_peers_is_demoted() -> None:
    slow, fast = Health(ttft=Speed(0.6, 0.6, 10)), Health(ttft=Speed(0.005, 0.005, 2))
    assert slower_than_peers([slow, fast], True, CFG) == {0}
    firsts = Counter(order([slow, fast], seed=s)[0] for s in range(1000))
    assert firsts[1] >= 850


def test_small_gaps_between_fast_peers_are_noise() -> None:
    a, b = Health(ttft=Speed(0.004, 0.004, 10)), Health(ttft=Speed(0.001, 0.001, 10))
    assert slower_than_peers([a, b], True, CFG) == frozenset()


def test_exploration_puts_a_fallback_of_unknown_speed_first() -> None:
    known, unknown = Health(ttft=Speed(0.6, 0.6, 10)), Health()
    assert order([known, unknown], explore=True) == (1, 0)
    assert order([known, Health(ttft=Speed(0.5, 0.5, 10))], explore=True) == (0, 1)


def test_a_disabled_breaker_ignores_health() -> None:
    off = Breaker(enabled=False)
    p = plan([0, 1], [1, 1], [state(State.EJECTED), H], [False, True], off, True, random.Random(0))
    assert p.order == (0, 1)


def test_a_target_degraded_for_its_answers_goes_behind_a_fallback_that_is_merely_slower() -> None:
    # A fast primary answering wrong, and a fallback four times slower: both are demoted, the degraded
    # one further, so the primary keeps only its degraded share.
    wrong = state(State.DEGRADED, reason="quality: canaries pass 0%", ttft=Speed(0.1, 0.1, 10))
    slower = Health(ttft=Speed(0.4, 0.4, 10))
    assert slower_than_peers([wrong, slower], True, CFG) == {1}
    firsts = Counter(order([wrong, slower], seed=s)[0] for s in range(1000))
    assert 50 < firsts[0] < 150


def test_a_pool_of_replicas_down_is_one_target_down_not_a_panic() -> None:
    # A pool of two replicas and one frontier target: the pool down leaves 1 of 2 targets standing
    # (50 %), not 1 of 3 deployments (33 %), so the frontier answers instead of the dead replicas.
    cfg = Breaker(panic_percent=50)
    healths = [state(State.EJECTED), state(State.EJECTED), H]
    by_deployment = plan([0, 0, 1], [1, 1, 1], healths, [False] * 3, cfg, False, random.Random(1))
    by_target = plan([0, 0, 1], [1, 1, 1], healths, [False] * 3, cfg, False, random.Random(1), targets=[0, 0, 1])
    assert by_deployment.panic
    assert not by_target.panic and by_target.order == (2,)
