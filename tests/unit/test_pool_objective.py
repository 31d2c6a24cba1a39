"""A pool's first-token objective: a request waits in the pool at most (ttft_factor − 1) × the pool's own
time to first token when nothing queues, so its first token stays within ttft_factor × that; past it,
it goes to the route's next target. Pure: the pool's times come in as the health board's baselines."""

from __future__ import annotations

import pytest

from gateway.core.metrics import Metrics
from gateway.routing.pool_metrics import Reading
from gateway.routing.pools import PoolBoard, wait_limit
from tests.pools import three_replicas

POOL = (0, 1, 2)
FRONTIER = 3
BODY = {"messages": [{"role": "user", "content": "hi"}]}


def test_the_limit_is_the_pools_own_unqueued_first_token_times_the_factor_less_one() -> None:
    span = three_replicas("{spill: {margin_s: 0.2}}").pools[0]
    # The replicas' first tokens when nothing waited: 10, 10 and 40 ms (a slow one); the frontier's 500 ms.
    limit, why = wait_limit(span, FRONTIER, POOL, [0.01, 0.01, 0.04, 0.5])
    assert limit == pytest.approx(0.02) and why == "objective"
    span = three_replicas("{spill: {margin_s: 0.2, ttft_factor: 3}}").pools[0]
    assert wait_limit(span, FRONTIER, POOL, [0.01, 0.01, 0.04, 0.5])[0] == pytest.approx(0.04)


def test_the_next_target_sets_the_limit_when_it_answers_sooner_than_the_objective_allows() -> None:
    span = three_replicas("{spill: {margin_s: 0.2}}").pools[0]
    # Answers (not streams) take the pool 2 s: the objective would allow 2 s of waiting, the frontier 0.7.
    assert wait_limit(span, FRONTIER, POOL, [2.0, 2.0, 2.0, 0.5]) == (pytest.approx(0.7), "wait")


def test_until_the_pools_first_tokens_are_measured_only_the_next_target_bounds_the_wait() -> None:
    span = three_replicas("{spill: {margin_s: 0.2}}").pools[0]
    assert wait_limit(span, FRONTIER, POOL, [None, None, None, 0.5]) == (pytest.approx(0.7), "wait")
    # One measured replica is enough to know the pool's speed.
    assert wait_limit(span, FRONTIER, POOL, [None, 0.03, None, 0.5])[0] == pytest.approx(0.03)


def test_a_null_factor_turns_the_objective_off() -> None:
    span = three_replicas("{spill: {margin_s: 0.2, ttft_factor: null}}").pools[0]
    assert wait_limit(span, FRONTIER, POOL, [0.01, 0.01, 0.04, 0.5]) == (pytest.approx(0.7), "wait")


def test_a_request_that_would_queue_past_the_objective_goes_on_and_says_why() -> None:
    table = three_replicas("{slots: 4, affinity: none, spill: {margin_s: 0.2}}")
    span = table.pools[0]
    board = PoolBoard(Metrics(), lambda: 0.1)
    for url in span.urls:
        board.load(url).service_s = 0.15
        board.read(span, url, Reading(running=4, waiting=0, kv=0.5), 0.0)
    # Every batch full: the first place frees in about 37 ms, sooner than the frontier's first token
    # but past twice the pool's own 12 ms.
    got = board.arrange(table, (*POOL, FRONTIER), BODY, 0.1, [0.012, 0.012, 0.012, 0.5])
    assert got.order[0] == FRONTIER and got.spilled == (span,) and got.reasons == ("objective",)
    # With the objective off, it waits for that place.
    table = three_replicas("{slots: 4, affinity: none, spill: {margin_s: 0.2, ttft_factor: null}}")
    got = board.arrange(table, (*POOL, FRONTIER), BODY, 0.1, [0.012, 0.012, 0.012, 0.5])
    assert got.order[0] in POOL and got.spilled == ()


def test_a_place_free_in_the_pool_keeps_the_request_whatever_the_objective() -> None:
    table = three_replicas("{slots: 4, affinity: none, spill: {margin_s: 0.2}}")
    span = table.pools[0]
    board = PoolBoard(Metrics(), lambda: 0.1)
    for url, running in zip(span.urls, (4, 4, 3), strict=True):
        board.load(url).service_s = 0.15
        board.read(span, url, Reading(running=running, waiting=0, kv=0.5), 0.0)
    got = board.arrange(table, (*POOL, FRONTIER), BODY, 0.1, [0.012, 0.012, 0.012, 0.5])
    assert got.order[0] == 2 and got.spilled == ()
