"""The brownout scenarios, each on a fresh gateway over real sockets (see conftest for the route)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.chaos.conftest import chat, client, open_loop, stream

Start = Callable[..., EmbeddedGateway]
FULL_TEXT = {"A": "A t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11", "B": "B t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11"}
# For scenarios not about a deployment turning slower than its own baseline: B answers in well under a
# millisecond when the machine is idle, so on a loaded one the breaker would find it tens of times
# slower than usual and demote or eject the only healthy target.
NO_SELF_SLOWDOWN = "slow_min_s: 60"


async def test_s1_a_500_storm_costs_no_client_errors_and_little_traffic_to_a(chaos: Start) -> None:
    gw = chaos()
    gw.set_fault("A", Fault(status=500))
    c = client(gw)
    results = await open_loop(100, 50, lambda i: chat(c))
    assert [r.error for r in results if not r.ok] == []
    assert gw.sim("A").request_count() <= 15


async def test_s2_a_refusing_connections_costs_no_client_errors(chaos: Start) -> None:
    gw = chaos()
    gw.set_fault("A", Fault(refuse=True))
    c = client(gw)
    results = await open_loop(50, 50, lambda i: chat(c))
    assert [r.error for r in results if not r.ok] == []
    assert {r.provider for r in results} == {"B"}


async def test_s3_a_429_with_retry_after_is_left_alone(chaos: Start) -> None:
    gw = chaos()
    gw.set_fault("A", Fault(status=429, retry_after_s=30))
    c = client(gw)
    results = await open_loop(60, 20, lambda i: chat(c))  # three seconds of traffic
    assert [r.error for r in results if not r.ok] == []
    assert gw.sim("A").request_count() <= 5


async def test_s4_a_hanging_before_the_first_byte_costs_its_first_token_timeout_not_its_idle_timeout(
        chaos: Start) -> None:
    # A's first_token_s is 1, its idle_s 10: without the first-token bound a hung stream would wait 10 s.
    # A stream that began on A waits 1 s, then fails over to B; 2 s more is room for a loaded machine.
    gw = chaos(a_idle_s=10, breaker=NO_SELF_SLOWDOWN)
    gw.set_fault("A", Fault(hang=True))
    c = client(gw)
    results = await open_loop(20, 10, lambda i: stream(c))
    assert [r.error for r in results if not r.ok] == []
    assert {r.provider for r in results} == {"B"}
    assert max(r.first_content_s or 99 for r in results) < 3.0


async def test_s5_a_slow_first_token_sends_most_traffic_to_the_faster_peer(chaos: Start) -> None:
    # About peers (A's first tokens against B's), not about either against its own baseline.
    gw = chaos(a_first_token_s=0.6, b_first_token_s=0.005, breaker=NO_SELF_SLOWDOWN)
    c = client(gw)
    results = await open_loop(150, 50, lambda i: stream(c))
    assert [r.error for r in results if not r.ok] == []
    later = Counter(r.provider for r in results[50:150])
    assert later["B"] >= 70, later


async def test_s6_cut_streams_never_end_like_a_success_with_missing_content(chaos: Start) -> None:
    gw = chaos(breaker=NO_SELF_SLOWDOWN)
    gw.set_fault("A", Fault(cut_after_chunks=5))
    c = client(gw)
    results = await open_loop(20, 20, lambda i: stream(c))
    completed = [r for r in results if r.ok]
    assert all(r.text == FULL_TEXT[r.provider or ""] for r in completed), [r.text for r in completed]
    assert all("mid-stream" in str(r.error) for r in results if not r.ok)


async def test_s6_with_resume_cut_streams_are_finished_by_the_next_deployment(chaos: Start) -> None:
    gw = chaos(mid_stream="resume")
    gw.set_fault("A", Fault(cut_after_chunks=5))
    c = client(gw)
    results = await open_loop(10, 20, lambda i: stream(c))
    assert [r.error for r in results if not r.ok] == []
    for r in results:
        if r.provider == "A":  # began on A: A's five chunks, then B's whole answer
            assert r.text.startswith("A t1 t2 t3 t4") and r.text.endswith(FULL_TEXT["B"])
        else:
            assert r.text == FULL_TEXT["B"]
    assert any(r.provider == "A" for r in results)
    resumed = gw.sim("B").requests[0].body["messages"][-1]
    assert resumed["role"] == "assistant" and resumed["content"].startswith("A t1")


async def test_s7_a_down_for_three_seconds_serves_again_and_shows_healthy(chaos: Start) -> None:
    gw = chaos()
    c = client(gw)
    gw.set_fault("A", Fault(refuse=True, duration_s=3))
    came_back = time.monotonic() + 3
    served_again: float | None = None
    async with httpx.AsyncClient() as admin:
        while time.monotonic() < came_back + 3 + 5:
            r = await chat(c)
            assert r.ok, r.error
            if r.provider == "A" and time.monotonic() > came_back:
                state = (await admin.get(gw.url + "/admin/deployments")).json()["data"]
                a = next(row for row in state if row["provider"] == "A")
                if a["state"] == "healthy":
                    served_again = time.monotonic()
                    break
            await asyncio.sleep(0.05)
    assert served_again is not None and served_again - came_back <= 3 + 5


async def test_s8_when_both_fail_each_request_fails_fast_with_few_attempts(chaos: Start) -> None:
    gw = chaos()
    gw.set_fault("A", Fault(status=500))
    gw.set_fault("B", Fault(status=500))
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(20):
            started = time.perf_counter()
            r = await http.post(gw.base_url + "/chat/completions", json={"model": "chat", "messages": [
                {"role": "user", "content": "hi"}]})
            assert time.perf_counter() - started < 2
            assert r.status_code >= 500
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}
            assert int(r.headers["x-recloser-attempts"]) <= 4  # at most one more try on each healthy target
    assert gw.sim("A").request_count() + gw.sim("B").request_count() <= 3 * 20


async def test_s9_random_503s_on_a_cost_no_client_errors(chaos: Start) -> None:
    gw = chaos()
    gw.set_fault("A", Fault(status=503, error_rate=0.3))
    c = client(gw)
    results = await open_loop(200, 50, lambda i: chat(c))
    assert [r.error for r in results if not r.ok] == []
