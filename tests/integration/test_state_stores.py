"""The memory store and the Redis store behave alike; the Redis one fails open within its timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from gateway.state.base import Ask, Draw, Outbox, SharedState, StateUnavailable, Taken, Total
from gateway.state.memory import MemoryState
from gateway.state.redis import RedisState
from tests.redis_server import RedisServer

NOW = 1_800_000_000.25   # a wall-clock time: stores keep counters per wall second


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[SharedState]:
    if request.param == "memory":
        yield MemoryState()
        return
    s = RedisState(redis_server.url, timeout_s=1.0, prefix="t")
    await s.start()
    assert s.up
    yield s
    await s.close()


async def test_counts_from_every_writer_add_up_per_second_within_the_window(store: SharedState) -> None:
    first, second = Outbox(horizon_s=60), Outbox(horizon_s=60)
    first.count("out:a:failed", int(NOW) - 1, 3)
    second.count("out:a:failed", int(NOW) - 1, 2)
    second.count("out:a:failed", int(NOW), 1)
    second.count("out:a:failed", int(NOW) - 40, 9)          # older than the 30 s asked for
    await store.exchange(first, Ask(), NOW)
    snap = await store.exchange(second, Ask(counts={"out:a:failed": 30, "out:b:ok": 30}), NOW)
    assert snap.counts == {"out:a:failed": {int(NOW) - 1: 5, int(NOW): 1}}


async def test_notes_are_read_back_until_they_expire(store: SharedState) -> None:
    out = Outbox(notes={"ejected:a": ("1|2|1|why", 0.3)})
    await store.exchange(out, Ask(), NOW)
    snap = await store.exchange(Outbox(), Ask(notes=["ejected:a", "ejected:b"]), NOW)
    assert snap.notes == {"ejected:a": "1|2|1|why"}
    if isinstance(store, RedisState):
        await asyncio.sleep(0.4)   # Redis expires by its own clock
    later = await store.exchange(Outbox(), Ask(notes=["ejected:a"]), NOW + 0.4)
    assert later.notes == {}


async def test_a_missing_total_starts_from_the_writers_seed_then_adds(store: SharedState) -> None:
    expire = NOW + 3600 if isinstance(store, MemoryState) else time.time() + 3600
    await store.exchange(Outbox(totals={"budget:x": Total(delta=5, seed=100, expire_at=expire)}), Ask(), NOW)
    snap = await store.exchange(Outbox(totals={"budget:x": Total(delta=7, seed=999, expire_at=expire)}),
                                Ask(totals=["budget:x", "budget:y"]), NOW)
    assert snap.totals == {"budget:x": 112}


async def test_a_claim_belongs_to_one_owner_until_it_lapses(store: SharedState) -> None:
    assert await store.claim("probe:a", "one", 0.3, NOW)
    assert await store.claim("probe:a", "one", 0.3, NOW)        # renewed by its owner
    assert not await store.claim("probe:a", "two", 0.3, NOW)
    if isinstance(store, RedisState):
        await asyncio.sleep(0.4)
    assert await store.claim("probe:a", "two", 0.3, NOW + 0.4)


async def take_one(store: SharedState, counter: str, limit: int, cost: int, now: float) -> Taken:
    taken, = await store.take([Draw(counter, limit, cost, 60)], now)
    return taken


async def test_take_admits_up_to_the_limit_then_says_when_to_come_back(store: SharedState) -> None:
    results = [await take_one(store, "rl:k:requests", 3, 1, NOW + i * 0.1) for i in range(4)]
    assert [r.admitted for r in results] == [True, True, True, False]
    assert [r.used for r in results] == [1, 2, 3, 3]
    refused = results[-1]
    # All three fell in one second, which leaves the window 60 s after it began.
    assert refused.retry_after_s == pytest.approx(int(NOW) + 60 - (NOW + 0.3), abs=0.01)
    later = await take_one(store, "rl:k:requests", 3, 1, int(NOW) + 60.0)
    assert later.admitted and later.used == 1


async def test_take_adds_to_every_window_or_to_none(store: SharedState) -> None:
    roomy, tight = Draw("rl:a:requests", 10, 1, 60), Draw("rl:b:requests", 1, 1, 60)
    first = await store.take([roomy, tight], NOW)
    assert [t.admitted for t in first] == [True, True] and [t.used for t in first] == [1, 1]
    second = await store.take([roomy, tight], NOW)
    assert [t.admitted for t in second] == [True, False]
    third, = await store.take([roomy], NOW)
    assert third.used == 2           # the refused request took nothing from the roomy window


async def test_take_of_nothing_asks_only_whether_the_window_is_full(store: SharedState) -> None:
    out = Outbox(horizon_s=61)
    out.count("rl:k:tokens", int(NOW), 90)
    await store.exchange(out, Ask(), NOW)
    assert (await take_one(store, "rl:k:tokens", 100, 0, NOW)).admitted
    out = Outbox(horizon_s=61)
    out.count("rl:k:tokens", int(NOW), 10)
    await store.exchange(out, Ask(), NOW)
    full = await take_one(store, "rl:k:tokens", 100, 0, NOW)
    assert not full.admitted and full.used == 100


async def test_a_stopped_redis_costs_one_timeout_then_nothing_until_it_answers_again(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    ups: list[bool] = []
    s = RedisState(redis_server.url, timeout_s=0.05, prefix="t", on_up=ups.append, max_backoff_s=0.2)
    await s.start()
    redis_server.pause()
    try:
        with caplog.at_level(logging.WARNING, logger="recloser.state"):
            started = time.perf_counter()
            with pytest.raises(StateUnavailable):
                await take_one(s, "rl:x", 10, 1, time.time())
            first = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(50):
                with pytest.raises(StateUnavailable):
                    await take_one(s, "rl:x", 10, 1, time.time())
            rest = time.perf_counter() - started
        assert first < 0.05 + 0.1          # the timeout, plus this busy machine's scheduling
        assert rest < 0.05                 # fifty calls while down do not touch the network
        assert ups == [True, False]
        assert len([r for r in caplog.records if "unreachable" in r.message]) == 1
    finally:
        redis_server.resume()
    deadline = time.monotonic() + 5
    while not s.up and time.monotonic() < deadline:
        await asyncio.sleep(0.05)   # the reconnect task's backoff is what is being measured here
    assert s.up and ups[-1] is True
    assert (await take_one(s, "rl:x", 10, 1, time.time())).admitted
    await s.close()
