"""When a pool sends a request on to the route's next target, besides its hard limits: the longest wait it
may ask (the next target's expected first token plus a margin, `max_wait_s`, and the pool's first-token
objective), and whether a stream's expected first token in the pool breaks that objective. Pure: the
times come in as the health board's baselines and the endpoints' first-token fits."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.routing.table import PoolSpan

# The next target's time to first token before the gateway has measured it: a frontier model's usual.
UNMEASURED_TTFT_S = 1.0


@dataclass(frozen=True, slots=True)
class Prediction:
    """A stream's expected first token at the endpoint picked (its wait aside), and at the endpoint that
    holds most of its prompt: what it would get with the pool unloaded. None: not measured yet."""

    picked: float | None
    unloaded: float | None


def pool_ttft(members: Sequence[int], ttfts: Sequence[float | None] | None) -> float | None:
    """The pool's time to first token when nothing queues: the mean of its endpoints' baselines (a first
    token that waited for a place is not counted in them). None until one is measured."""
    own = [t for i in members if ttfts is not None and (t := ttfts[i]) is not None]
    return sum(own) / len(own) if own else None


def wait_limit(span: PoolSpan, next_target: int | None, members: Sequence[int],
               ttfts: Sequence[float | None] | None) -> tuple[float, str]:
    """The longest wait the pool may ask of a request, and what sets it: the next target's expected time
    to first token plus the margin ("wait"), or the pool's first-token objective ("objective"): at most
    `max_wait_s`, and at most (ttft_factor − 1) × the mean of its endpoints' times to first token when
    nothing queued there (their baselines: a first token that waited in a queue is not counted in them)."""
    spill = span.load.spill
    if spill is None or not spill.wait or next_target is None:
        return math.inf, "wait"
    ttft = ttfts[next_target] if ttfts is not None else None
    limit, why = (UNMEASURED_TTFT_S if ttft is None else ttft) + spill.margin_s, "wait"
    if spill.max_wait_s is not None and spill.max_wait_s < limit:
        limit, why = spill.max_wait_s, "objective"
    own = pool_ttft(members, ttfts)
    if spill.ttft_factor is not None and own is not None:
        objective = (spill.ttft_factor - 1.0) * own
        if objective < limit:
            limit, why = objective, "objective"
    return limit, why


def past_objective(span: PoolSpan, next_target: int | None, members: Sequence[int],
                   ttfts: Sequence[float | None] | None, wait: float, expected: Prediction) -> bool:
    """Would this stream's first token in the pool break the pool's objective: come later than
    ttft_factor × what it would be unloaded (the pool's own mean, or this prompt's at the endpoint
    holding most of it, whichever is longer)? Waiting is one way to break it; another is to be moved off
    the endpoint that holds the prompt onto one that must compute it, a long prefill where the pool is
    slow (wait_limit covers the wait alone, and holds for answers that are not streamed)."""
    spill = span.load.spill
    if spill is None or not spill.wait or spill.ttft_factor is None or next_target is None or expected.picked is None:
        return False
    own = pool_ttft(members, ttfts)
    if own is None:
        return False
    unloaded = max(own, expected.unloaded or 0.0)
    return wait + expected.picked > spill.ttft_factor * unloaded
