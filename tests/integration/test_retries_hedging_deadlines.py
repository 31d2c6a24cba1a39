"""Retries on the same deployment, the retry budget, deadlines, and hedging, over real sockets."""

from __future__ import annotations

import time

import httpx

from gateway.sim import Fault
from tests.conftest import GatewayFactory

HELLO = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def policy(route_extra: str = "", a_delay: float = 0.0) -> str:
    return f"""
    version: 1
    providers:
      A: {{kind: sim, sim: {{first_token_delay_s: {a_delay}}}, timeouts: {{first_token_s: 5, total_s: 5}}}}
      B: {{kind: sim}}
    routes:
      chat:
        {route_extra}
        targets:
          - {{provider: A, model: a}}
          - {{provider: B, model: b}}
    """


def post(url: str, **kw: object) -> httpx.Response:
    return httpx.post(url + "/chat/completions", json=HELLO, timeout=10, **kw)  # type: ignore[arg-type]


def test_a_blip_is_retried_on_the_same_deployment_before_failing_over(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("retry: {attempts: 2, backoff_s: 0.01}"))
    gw.set_fault("A", Fault(status=502))
    r = post(gw.base_url)
    assert r.headers["x-recloser-provider"] == "B"
    assert r.headers["x-recloser-attempts"] == "3"
    assert gw.sim("A").request_count() == 2


def test_a_short_retry_after_is_honoured_before_the_retry(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("retry: {attempts: 2, backoff_s: 0.01, short_retry_after_s: 2}"))
    gw.set_fault("A", Fault(status=429, retry_after_s=1))
    r = post(gw.base_url)
    a = gw.sim("A").requests
    assert len(a) == 2 and a[1].at - a[0].at >= 0.95
    assert r.headers["x-recloser-provider"] == "B"


def test_an_empty_retry_budget_fails_over_without_retrying(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("retry: {attempts: 3, budget_percent: 0, budget_min_per_s: 0}"))
    gw.set_fault("A", Fault(status=503))
    r = post(gw.base_url)
    assert r.headers["x-recloser-provider"] == "B"
    assert gw.sim("A").request_count() == 1
    assert 'recloser_retry_budget_exhausted_total{route="chat"} 1.0' in httpx.get(gw.url + "/metrics").text


def test_the_client_deadline_bounds_the_whole_request(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy())
    gw.set_fault("A", Fault(hang=True))
    gw.set_fault("B", Fault(hang=True))
    started = time.perf_counter()
    r = post(gw.base_url, headers={"x-recloser-timeout-s": "0.5"})
    assert time.perf_counter() - started < 1.5
    assert r.status_code == 504
    assert gw.sim("B").request_count() == 0  # no attempt starts after the deadline


def test_a_hedge_starts_the_next_target_when_the_first_is_slow(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("hedge: {after_s: 0.1, max_percent: 100}", a_delay=2.0))
    started = time.perf_counter()
    r = post(gw.base_url)
    # Answered before A's first token could have come, by B, asked soon after A. (The hedge's delay
    # waits out the gateway's own loop pauses, so a cold process's first request may hedge later than
    # 0.1 s; "soon" is well under A's 2 s.)
    assert time.perf_counter() - started < 2.0
    assert r.headers["x-recloser-provider"] == "B"
    a, b = gw.sim("A").requests, gw.sim("B").requests
    assert len(a) == 1 and len(b) == 1 and b[0].at - a[0].at < 1.0
    assert 'recloser_hedges_total{outcome="hedge_won",route="chat"} 1.0' in httpx.get(gw.url + "/metrics").text


def test_no_hedge_when_the_first_answers_in_time(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("hedge: {after_s: 0.5, max_percent: 100}"))
    r = post(gw.base_url)
    assert r.headers["x-recloser-provider"] == "A"
    assert gw.sim("B").request_count() == 0
