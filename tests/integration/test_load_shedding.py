"""Beyond `limits.max_in_flight` a request is refused at once, in the OpenAI shape, with Retry-After."""

from __future__ import annotations

import asyncio
import time

import httpx

from gateway.serving.embedded import EmbeddedGateway
from tests.conftest import GatewayFactory

POLICY = """
version: 1
providers:
  slow: {kind: sim, sim: {first_token_delay_s: 0.5}}
routes:
  chat: {targets: [{provider: slow, model: m}]}
limits: {max_in_flight: 2, shed_retry_after_s: 2}
"""


async def test_requests_beyond_the_in_flight_limit_are_shed_at_once(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}

    async with httpx.AsyncClient(timeout=10) as http:
        async def timed() -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            r = await http.post(gw.base_url + "/chat/completions", json=body)
            return r, time.perf_counter() - started

        first = [asyncio.create_task(timed()) for _ in range(2)]
        while gw.context.admission.in_flight < 2:  # both admitted and waiting on the slow upstream
            await asyncio.sleep(0.005)
        shed = await asyncio.gather(*(timed() for _ in range(3)))
        admitted = await asyncio.gather(*first)
        metrics = (await http.get(gw.url + "/metrics")).text

    assert [r.status_code for r, _ in admitted] == [200, 200]
    for r, seconds in shed:
        assert r.status_code == 503 and seconds < 0.25
        assert r.headers["Retry-After"] == "2"
        assert r.json()["error"]["code"] == "overloaded"
    assert 'recloser_shed_requests_total{reason="max_in_flight"} 3.0' in metrics
    assert gw.sim("slow").request_count() == 2


async def test_below_the_in_flight_limit_a_lowered_admission_cap_sheds_as_saturation(
        start_gateway: GatewayFactory) -> None:
    # The cap is moved by the loop-lag timer (tests/unit/test_admission.py); here it is set by hand,
    # with the timer off, so the test does not depend on how busy this machine is.
    gw = start_gateway(POLICY.replace("max_in_flight: 2,", "max_in_flight: 100, max_loop_lag_ms: 0,"))
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}

    async def lower_cap() -> None:
        gw.context.admission.cap = 0

    gw.run(lower_cap())
    async with httpx.AsyncClient(timeout=10) as http:
        shed = await http.post(gw.base_url + "/chat/completions", json=body)
        metrics = (await http.get(gw.url + "/metrics")).text

    assert shed.status_code == 503 and shed.headers["Retry-After"] == "2"
    error = shed.json()["error"]
    assert error["code"] == "overloaded" and "saturated" in error["message"]
    assert 'recloser_shed_requests_total{reason="loop_lag"} 1.0' in metrics
    assert gw.sim("slow").request_count() == 0


async def test_a_stream_under_way_counts_in_flight_but_not_as_starting(start_gateway: GatewayFactory) -> None:
    # The loop-lag cap is on requests starting: thousands of streams relaying for minutes must not
    # keep it from admitting newcomers once the loop is on time again.
    gw = start_gateway(POLICY.replace("first_token_delay_s: 0.5", "first_token_delay_s: 0.3, chunk_delay_s: 0.2")
                       .replace("max_in_flight: 2,", "max_in_flight: 100, max_loop_lag_ms: 0,"))
    body = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    admission = gw.context.admission
    seen: list[tuple[int, int]] = []
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("POST", gw.base_url + "/chat/completions", json=body) as r:
            seen.append((admission.in_flight, admission.starting))     # headers in: the answer began
            async for _ in r.aiter_bytes():
                pass
        while admission.in_flight:
            await asyncio.sleep(0.005)
    assert r.status_code == 200
    assert seen == [(1, 0)]
    assert (admission.in_flight, admission.starting) == (0, 0)


async def test_a_request_refused_before_its_answer_leaves_nothing_counted_as_starting(
        start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(gw.base_url + "/chat/completions", json={"model": "nope", "messages": []})
        while gw.context.admission.in_flight:
            await asyncio.sleep(0.005)
    assert r.status_code in (400, 404)
    assert gw.context.admission.starting == 0


def set_cap(gw: EmbeddedGateway, cap: int) -> None:
    """The loop-lag cap set as a late (or on-time) loop would, on the gateway's own loop."""
    async def setting() -> None:
        gw.context.admission.set_cap(cap)
    gw.run(setting())


async def test_a_newcomer_the_lag_cap_refuses_waits_for_room_and_is_answered(start_gateway: GatewayFactory) -> None:
    # A burst's own loop lag clears once its requests are under way: the newcomer it kept out waits
    # in line (limits.loop_lag_wait_ms) and is admitted when the cap leaves room, not shed.
    gw = start_gateway(POLICY.replace("max_in_flight: 2,", "max_in_flight: 100, loop_lag_wait_ms: 10000,"))
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    admission = gw.context.admission
    set_cap(gw, 0)
    async with httpx.AsyncClient(timeout=20) as http:
        answer = asyncio.create_task(http.post(gw.base_url + "/chat/completions", json=body))
        while admission.waiting == 0:
            await asyncio.sleep(0.005)
        assert not answer.done()
        set_cap(gw, 100)
        r = await answer
        metrics = (await http.get(gw.url + "/metrics")).text

    assert r.status_code == 200
    assert 'recloser_admission_waits_total{result="admitted"} 1.0' in metrics
    assert "recloser_shed_requests_total{" not in metrics


async def test_a_newcomer_whose_wait_runs_out_is_shed(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY.replace("max_in_flight: 2,", "max_in_flight: 100, loop_lag_wait_ms: 50,"))
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    set_cap(gw, 0)
    async with httpx.AsyncClient(timeout=10) as http:
        shed = await http.post(gw.base_url + "/chat/completions", json=body)
        metrics = (await http.get(gw.url + "/metrics")).text

    assert shed.status_code == 503 and shed.json()["error"]["code"] == "overloaded"
    assert 'recloser_admission_waits_total{result="shed"} 1.0' in metrics
    assert 'recloser_shed_requests_total{reason="loop_lag"} 1.0' in metrics
    assert gw.sim("slow").request_count() == 0 and gw.context.admission.waiting == 0


async def test_under_the_default_limits_a_stream_the_lag_cap_refuses_waits_and_a_whole_answer_is_shed(
        start_gateway: GatewayFactory) -> None:
    # Thousands of agents starting at once: each stream is a turn of minutes that a 503 costs whole,
    # so it waits out the burst's lag (limits.stream_loop_lag_wait_ms, 5 s); a whole answer does not.
    gw = start_gateway(POLICY.replace("max_in_flight: 2,", "max_in_flight: 100,"))
    admission = gw.context.admission
    stream = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    whole = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    set_cap(gw, 0)
    async with httpx.AsyncClient(timeout=20) as http:
        waiting = asyncio.create_task(http.post(gw.base_url + "/chat/completions", json=stream))
        while admission.waiting == 0:
            await asyncio.sleep(0.005)
        shed = await http.post(gw.base_url + "/chat/completions", json=whole)
        assert not waiting.done()
        set_cap(gw, 100)
        streamed = await waiting
        metrics = (await http.get(gw.url + "/metrics")).text

    assert shed.status_code == 503 and shed.json()["error"]["code"] == "overloaded"
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    assert 'recloser_admission_waits_total{result="admitted"} 1.0' in metrics
    assert 'recloser_shed_requests_total{reason="loop_lag"} 1.0' in metrics
