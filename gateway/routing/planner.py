"""The planner: for one request, the order in which to try a route's deployments. Pure.

Inputs are the route, each deployment's health as of now, whether a probing deployment has a free
probe slot, and an injected random source. Rules, in order:
  1. Panic: when the share of healthy or degraded targets is below `panic_percent`, health is
     ignored and every target is tried in policy order (never eject everything).
  2. Ejected targets are left out; probing ones take part only while a probe slot is free.
  3. Targets of equal priority are balanced by weight, the faster of two random picks first
     (power of two choices on the recent time to first token).
  4. A degraded target, or one far slower than its peers, keeps only `degraded_share` of its place;
     otherwise it goes behind every target that is not degraded, a degraded one behind the slow ones
     too (wrong or failing answers are worse than slow ones).
  5. A deployment back from an ejection keeps only its slow-start share of its place, ramping up
     to all of it over `slow_start_s` (see recovery.traffic_share).
  6. Exploration: now and then a fallback whose speed is unknown goes first, so that "slower than
     its peers" can be judged at all.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.policy.schema import Breaker
from gateway.routing.breaker import MIN_SPEED_SAMPLES, Health, State
from gateway.routing.recovery import traffic_share

# Below this gap, a faster peer is noise, not a reason to demote (loopback answers in microseconds).
PEER_FLOOR_S = 0.05


@dataclass(frozen=True, slots=True)
class Plan:
    order: tuple[int, ...]                 # indices into the route's deployments, in the order to try
    panic: bool = False
    skipped: tuple[int, ...] = ()          # targets left out (ejected, or probing with no free slot)
    explored: bool = False


def slower_than_peers(healths: Sequence[Health], stream: bool, cfg: Breaker) -> frozenset[int]:
    """Targets whose recent speed is `slow_ttft_factor` times the best peer's (each with samples)."""
    speeds = [(i, h.speed_of(stream)) for i, h in enumerate(healths)
              if h.state is not State.EJECTED and h.speed_of(stream).samples >= 2]
    if len(speeds) < 2:
        return frozenset()
    best = min(s.recent for _, s in speeds)
    return frozenset(i for i, s in speeds
                     if s.recent > cfg.slow_ttft_factor * best and s.recent - best > PEER_FLOOR_S)


def _balanced(indices: list[int], weights: Sequence[int], healths: Sequence[Health], stream: bool,
              rng: random.Random) -> list[int]:
    """A weighted random order; of the first two, the one with the faster recent speed goes first."""
    if len(indices) < 2:
        return indices
    keyed = sorted(indices, key=lambda i: rng.random() ** (1.0 / weights[i]), reverse=True)
    a, b = healths[keyed[0]].speed_of(stream), healths[keyed[1]].speed_of(stream)
    if a.samples and b.samples and b.recent < a.recent:
        keyed[0], keyed[1] = keyed[1], keyed[0]
    return keyed


def _ramping_out(h: Health, now: float, cfg: Breaker, rng: random.Random) -> bool:
    """Does slow start keep this request off a recovering deployment?"""
    share = traffic_share(h, now, cfg)
    return share < 1.0 and rng.random() >= share


def _behind(order: list[int], demoted: list[int]) -> list[int]:
    """`demoted` moved behind the rest, unless that is everyone (then nobody is)."""
    if demoted and len(demoted) < len(order):
        return [i for i in order if i not in demoted] + demoted
    return order


def plan(priorities: Sequence[int], weights: Sequence[int], healths: Sequence[Health],
         probe_free: Sequence[bool], cfg: Breaker, stream: bool, rng: random.Random,
         explore: bool = False, now: float = 0.0, targets: Sequence[int] = ()) -> Plan:
    """`targets` names the route target of each deployment where several stand for one (a pool's
    endpoints); panic then counts targets, so a pool of replicas down is one target down, not many."""
    n = len(healths)
    if not cfg.enabled:
        return Plan(order=tuple(range(n)))
    up = [h.state in (State.HEALTHY, State.DEGRADED) for h in healths]
    if targets:
        standing, total = len({t for t, ok in zip(targets, up) if ok}), len(set(targets))
    else:
        standing, total = sum(up), n
    if 100.0 * standing / total < cfg.panic_percent:
        return Plan(order=tuple(range(n)), panic=True)

    usable = [i for i, h in enumerate(healths)
              if h.state in (State.HEALTHY, State.DEGRADED) or (h.state is State.PROBING and probe_free[i])]
    skipped = tuple(i for i in range(n) if i not in usable)

    order: list[int] = []
    for level in sorted({priorities[i] for i in usable}):
        order += _balanced([i for i in usable if priorities[i] == level], weights, healths, stream, rng)

    slow = slower_than_peers(healths, stream, cfg)
    order = _behind(order, [i for i in order
                            if (i in slow and healths[i].state is not State.DEGRADED
                                and rng.random() >= cfg.degraded_share)
                            or _ramping_out(healths[i], now, cfg, rng)])
    # Failing or wrong answers are worse than slow ones: degraded targets go behind the merely slow too
    # (else a fast primary degraded for its answers and a slower fallback, both demoted, would leave
    # the primary first).
    order = _behind(order, [i for i in order
                            if healths[i].state is State.DEGRADED and rng.random() >= cfg.degraded_share])

    explored = False
    if explore and len(order) > 1:
        unknown = [i for i in order[1:] if healths[i].speed_of(stream).samples < MIN_SPEED_SAMPLES]
        if unknown:
            order.remove(unknown[0])
            order.insert(0, unknown[0])
            explored = True
    return Plan(order=tuple(order), skipped=skipped, explored=explored)
