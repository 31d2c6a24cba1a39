"""A pool's first-token objective: a request waits in the pool at most (ttft_factor − 1) × the pool's own
time to first token when nothing queues, so its first token stays within ttft_factor × that; past it,
it goes to the route's next target. Pure: the pool's times come in as the health board's baselines."""

from __future__ import annotations

import pytest

from gateway.core.metrics import Metrics
from gateway.routing.pool_metrics import Reading
from gateway.routing.pools import PoolBoard
from gateway.routing.spill import wait_limit
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


def agent_turn(turns: int) -> dict[str, object]:
    """A conversation of `turns` tool results behind a long system prompt: a few KB of prompt."""
    messages: list[dict[str, object]] = [{"role": "system", "content": "You are a coding agent. " * 200}]
    for n in range(turns):
        messages += [{"role": "user", "content": f"result {n}: " + "line of output " * 60}]
    return {"messages": messages, "stream": True}


def fitted(board: PoolBoard, url: str, base_s: float, per_kb_s: float) -> None:
    """`url`'s first tokens as learnt: `base_s` plus `per_kb_s` per 1,000 bytes it had to compute."""
    for u in range(0, 40_000, 1_000):
        board.load(url).first_tokens.add(u, base_s + per_kb_s * u / 1000)


def test_the_first_token_fit_is_a_line_in_the_bytes_to_compute_once_it_has_seen_enough() -> None:
    from gateway.routing.picker import FirstTokens

    fit = FirstTokens()
    for u in range(0, 19_000, 1_000):
        fit.add(u, 0.005 + 0.002 * u / 1000)
    assert fit.predict(10_000) is None          # 19 first tokens: not yet
    fit.add(19_000, 0.005 + 0.002 * 19)
    assert fit.predict(10_000) == pytest.approx(0.025, rel=0.05)
    assert fit.predict(0) == pytest.approx(0.005, abs=0.002)


def moved_onto_a_slow_cold_replica(stream: bool) -> tuple[tuple[int, ...], tuple[str, ...]]:
    table = three_replicas("{slots: 4, spill: {margin_s: 0.2}}")
    span = table.pools[0]
    board = PoolBoard(Metrics(), lambda: 0.1)
    body = agent_turn(6)
    from gateway.routing.prefix import prompt_chunks

    board.picture(span, span.urls[0]).sent(prompt_chunks(body))     # replica 0 holds this conversation …
    for url, running, per_kb in zip(span.urls, (4, 4, 0), (0.02, 0.02, 0.08), strict=True):
        board.load(url).service_s = 0.15
        board.read(span, url, Reading(running=running, waiting=0, kv=0.5), 0.0)
        fitted(board, url, 0.005, per_kb)
    # … but its batch is full, as is replica 1's; replica 2 (four times slower) has a place, and none of it.
    got = board.arrange(table, (*POOL, FRONTIER), {**body, "stream": stream}, 0.1, [0.01, 0.01, 0.02, 0.5], stream)
    return got.order, got.reasons


def test_a_stream_moved_off_the_replica_holding_its_prompt_onto_a_slow_cold_one_goes_on() -> None:
    order, reasons = moved_onto_a_slow_cold_replica(stream=True)
    assert order[0] == FRONTIER and reasons == ("objective",)


def test_an_answer_that_is_not_streamed_takes_the_place_whatever_its_prefill() -> None:
    order, reasons = moved_onto_a_slow_cold_replica(stream=False)
    assert order[0] == 2 and reasons == ()


def test_a_stream_at_the_replica_holding_most_of_its_prompt_is_never_sent_on_for_its_prefill() -> None:
    table = three_replicas("{slots: 4, spill: {margin_s: 0.2}}")
    span = table.pools[0]
    board = PoolBoard(Metrics(), lambda: 0.1)
    for url in span.urls:           # a prompt none of them holds, a long prefill wherever it goes
        board.load(url).service_s = 0.15
        board.read(span, url, Reading(running=1, waiting=0, kv=0.5), 0.0)
        fitted(board, url, 0.005, 0.08)
    got = board.arrange(table, (*POOL, FRONTIER), agent_turn(8), 0.1, [0.01, 0.01, 0.01, 0.5], True)
    assert got.order[0] in POOL and got.spilled == ()
