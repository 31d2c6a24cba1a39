"""Requests held through an outage, end to end: a route with `hold_s` whose only target refuses
connections for a while. Whole requests are answered normally once a probe sees it back, streams get
their headers and keepalives at once and then the answer, a hold that runs out gets the error it
would have had at once, sheddable requests are refused with Retry-After, and held requests leave
room for live traffic under `max_in_flight`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import GatewayFactory

HELLO = [{"role": "user", "content": "hello"}]
KEYS = {"std": "sk-standard", "shed": "sk-sheddable", "patient": "sk-patient"}
OUTAGE_S = 1.5


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def policy(hold_s: float, max_in_flight: int = 2048, ledger: Path | None = None) -> str:
    metering = f'metering: {{ledger: {{path: "{ledger}"}}}}' if ledger else ""
    return f"""{metering}
version: 1
auth:
  keys:
    - {{id: std, sha256: "{_sha(KEYS['std'])}", team: t, app: std}}
    - {{id: shed, sha256: "{_sha(KEYS['shed'])}", team: t, app: shed, priority: sheddable}}
    - {{id: patient, sha256: "{_sha(KEYS['patient'])}", team: t, app: batch, hold_s: 30}}
limits: {{max_in_flight: {max_in_flight}}}
breaker: {{consecutive_failures: 1, probe_interval_s: 0.2, base_ejection_s: 60, probe_requests: 1, slow_start_s: 0}}
providers:
  alpha: {{kind: sim}}
  claude: {{kind: sim, sim: {{wire: anthropic}}}}
  live: {{kind: sim}}
routes:
  chat:
    hold_s: {hold_s}
    targets: [{{provider: alpha, model: m}}]
  claude:
    hold_s: {hold_s}
    targets: [{{provider: claude, model: claude-sonnet-4-5}}]
  live:
    targets: [{{provider: live, model: m}}]
  unheld:
    targets: [{{provider: alpha, model: m}}]
"""


def metric(gw: EmbeddedGateway, name: str, **labels: str) -> float:
    return gw.context.metrics.registry.get_sample_value(name, labels) or 0.0


async def until(condition: Callable[[], bool], within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def held_whole_request(gw: EmbeddedGateway) -> AsyncIterator[asyncio.Future[httpx.Response]]:
    """A whole request on route `chat`, its only target refusing connections, once it is held."""
    gw.set_fault("alpha", Fault(refuse=True))
    headers = {"Authorization": f"Bearer {KEYS['std']}"}
    async with httpx.AsyncClient(base_url=gw.base_url, headers=headers, timeout=60) as http:
        held = asyncio.ensure_future(http.post("/chat/completions", json={"model": "chat", "messages": HELLO}))
        await until(lambda: metric(gw, "recloser_held_requests_waiting", route="chat") == 1)
        yield held


def client(gw: EmbeddedGateway, key: str = KEYS["std"]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


def test_a_whole_request_held_through_an_outage_is_answered_normally_when_a_probe_sees_the_target_back(
        start_gateway: GatewayFactory, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = start_gateway(policy(hold_s=30, ledger=ledger))
    gw.set_fault("alpha", Fault(refuse=True, duration_s=OUTAGE_S))
    started = time.monotonic()
    raw = client(gw).chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert raw.http_response.status_code == 200
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-recloser-provider"] == "alpha"
    took_s = time.monotonic() - started
    assert took_s >= OUTAGE_S * 0.9, "it waited for the target, not failed at once"
    assert metric(gw, "recloser_held_requests_total", route="chat", outcome="released") == 1
    assert metric(gw, "recloser_held_requests_waiting", route="chat") == 0
    gw.run(gw.context.meter.drain())
    lines = [json.loads(x) for x in ledger.read_text().splitlines()]
    [line] = [x for x in lines if x["kind"] == "request" and "probe" not in x["events"]]
    assert line["outcome"] == "ok" and "held" in line["events"]
    assert 0 < line["held_s"] <= took_s, "how long it waited held, within the time it took"


def test_a_held_stream_gets_its_headers_and_a_keepalive_at_once_then_the_answer(
        start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(hold_s=30))
    gw.set_fault("alpha", Fault(refuse=True, duration_s=OUTAGE_S))
    body = {"model": "chat", "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{gw.base_url}/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {KEYS['std']}"}) as r:
        started = time.monotonic()
        lines = r.iter_lines()
        first = next(lines)
        assert time.monotonic() - started < OUTAGE_S / 2, "the keepalive came before the target was back"
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert first.startswith(":"), first
        rest = list(lines)
    assert rest[-2:] == ["data: [DONE]", ""] or "data: [DONE]" in rest
    # The official SDK reads the same held stream as any other.
    gw.set_fault("alpha", Fault(refuse=True, duration_s=OUTAGE_S))
    chunks = client(gw).chat.completions.create(model="chat", messages=HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_held_messages_stream_gets_anthropic_pings_that_the_sdk_skips(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(hold_s=30))
    gw.set_fault("claude", Fault(refuse=True, duration_s=OUTAGE_S))
    body = {"model": "claude", "max_tokens": 64, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{gw.url}/v1/messages", json=body, timeout=30,
                      headers={"x-api-key": KEYS["std"], "anthropic-version": "2023-06-01"}) as r:
        lines = r.iter_lines()
        first = [next(lines) for _ in range(2)]
        assert first == ["event: ping", 'data: {"type": "ping"}'], first
    gw.set_fault("claude", Fault(refuse=True, duration_s=OUTAGE_S))
    sdk = anthropic.Anthropic(base_url=gw.url, api_key=KEYS["std"], max_retries=0, timeout=30)
    with sdk.messages.stream(model="claude", max_tokens=64, messages=HELLO) as stream:  # type: ignore[arg-type]
        message = stream.get_final_message()
    assert message.content and message.stop_reason == "end_turn"


def test_a_hold_that_runs_out_gets_the_error_it_would_have_had_at_once(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(hold_s=1))
    gw.set_fault("alpha", Fault(refuse=True))
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "chat", "messages": HELLO}, timeout=30,
                   headers={"Authorization": f"Bearer {KEYS['std']}"})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "upstream_unavailable"
    assert "alpha" in r.json()["error"]["message"]
    # A stream's headers went out when it was held: its error is the stream's error event.
    body = {"model": "chat", "messages": HELLO, "stream": True}
    r = httpx.post(f"{gw.base_url}/chat/completions", json=body, timeout=30,
                   headers={"Authorization": f"Bearer {KEYS['std']}"})
    events = [line for line in r.text.splitlines() if line.startswith("data: ")]
    assert events and '"code":"upstream_unavailable"' in events[-1], r.text
    assert metric(gw, "recloser_held_requests_total", route="chat", outcome="expired") == 2


def test_a_sheddable_request_is_not_held_and_is_told_when_to_retry(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(hold_s=30))
    gw.set_fault("alpha", Fault(refuse=True))
    started = time.monotonic()
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "chat", "messages": HELLO}, timeout=30,
                   headers={"Authorization": f"Bearer {KEYS['shed']}"})
    assert time.monotonic() - started < 5
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert "not held" in r.json()["error"]["message"]
    assert metric(gw, "recloser_held_requests_total", route="chat", outcome="refused") == 1


async def test_held_requests_leave_room_for_live_traffic_under_max_in_flight(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(hold_s=30, max_in_flight=2))
    gw.set_fault("alpha", Fault(refuse=True))
    headers = {"Authorization": f"Bearer {KEYS['std']}"}
    async with httpx.AsyncClient(base_url=gw.base_url, headers=headers, timeout=30) as http:
        held = []
        for n in range(1, 5):     # twice max_in_flight, each held before the next is sent
            held.append(asyncio.ensure_future(http.post("/chat/completions",
                                                         json={"model": "chat", "messages": HELLO})))
            await until(lambda: metric(gw, "recloser_held_requests_waiting", route="chat") == n)
        # Held before their answers began, they are not among the requests starting either, which
        # the loop-lag admission caps.
        assert (gw.context.admission.in_flight, gw.context.admission.starting) == (0, 0)
        live = await http.post("/chat/completions", json={"model": "live", "messages": HELLO})
        assert live.status_code == 200, live.text
        gw.set_fault("alpha", Fault())
        answers = await asyncio.gather(*held)
    assert [a.status_code for a in answers] == [200] * 4
    await until(lambda: gw.context.admission.in_flight == 0)
    assert gw.context.admission.starting == 0


async def test_a_whole_request_whose_client_leaves_while_held_leaves_the_line(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(hold_s=300))
    async with held_whole_request(gw) as held:
        held.cancel()          # the client gives up: httpx closes the connection
        await asyncio.gather(held, return_exceptions=True)
    # Gone within a tick of the line's timer, not when its 300 s hold would have run out.
    await until(lambda: metric(gw, "recloser_held_requests_waiting", route="chat") == 0, within_s=5)
    assert metric(gw, "recloser_held_requests_total", route="chat", outcome="cancelled") == 1
    assert gw.context.holds is not None and gw.context.holds.held == 0
    await until(lambda: gw.context.admission.in_flight == 0)


async def test_a_gateway_shutting_down_answers_its_held_requests_at_once(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(hold_s=300))
    async with held_whole_request(gw) as held:
        started = time.monotonic()
        stopping = asyncio.get_running_loop().run_in_executor(None, gw.stop)
        answer = await held
        await stopping
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "upstream_unavailable"
    assert time.monotonic() - started < 10, "answered as the gateway stopped, not after waiting out its grace"


def test_a_key_with_its_own_hold_s_is_held_on_a_route_that_holds_nobody_else(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(hold_s=30))
    gw.set_fault("alpha", Fault(refuse=True, duration_s=OUTAGE_S * 2))
    with pytest.raises(openai.APIStatusError) as refused:
        client(gw).chat.completions.create(model="unheld", messages=HELLO)
    assert refused.value.status_code == 503
    answer = client(gw, KEYS["patient"]).chat.completions.create(model="unheld", messages=HELLO)
    assert answer.choices[0].message.content
    assert metric(gw, "recloser_held_requests_total", route="unheld", outcome="released") == 1
