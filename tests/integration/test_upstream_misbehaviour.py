"""Upstreams that answer 200 with something their wire does not allow: each is a classified failed
attempt that fails over, never a crash, a hang, or a success the client cannot parse."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import GatewayFactory

HELLO = [{"role": "user", "content": "hello"}]

POLICY = """
version: 1
limits: {max_upstream_body_bytes: 1048576}
providers:
  alpha:
    kind: sim
    sim: {wire: openai, reply_tokens: 8}
    timeouts: {first_token_s: 1.0, idle_s: 0.5}
  beta:
    kind: sim
    sim: {wire: openai, reply_tokens: 6}
routes:
  chat:
    mid_stream: resume
    targets:
      - {provider: alpha, model: alpha-model}
      - {provider: beta, model: beta-model}
  alone:
    targets:
      - {provider: alpha, model: alpha-model}
"""

# Each misbehaviour, and the outcome label its failed attempt is counted under.
WHOLE = [("html", "broken"), ("truncated", "broken"), ("not_json", "broken"), ("garbage_sse", "broken"),
         ("wrong_content_type", "broken"), ("gzip", "broken"), ("oversized", "broken"), ("silent", "timeout"),
         ("trickle", "timeout")]
STREAM = [("html", "broken"), ("truncated", "broken"), ("not_json", "broken"), ("garbage_sse", "broken"),
          ("wrong_content_type", "broken"), ("gzip", "broken"), ("silent", "timeout")]


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)


def attempts_counted(gw: EmbeddedGateway, outcome: str) -> float:
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith("recloser_upstream_attempts_total{") and 'provider="alpha"' in line \
                and f'outcome="{outcome}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def sdk(gw: EmbeddedGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=10)


@pytest.mark.parametrize(("malformed", "outcome"), WHOLE)
def test_a_malformed_whole_answer_fails_over(gw: EmbeddedGateway, malformed: str, outcome: str) -> None:
    gw.set_fault("alpha", Fault(malformed=malformed))  # type: ignore[arg-type]
    raw = sdk(gw).chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert raw.headers["x-recloser-provider"] == "beta"
    assert raw.parse().choices[0].message.content.startswith("beta")
    assert attempts_counted(gw, outcome) == 1


@pytest.mark.parametrize(("malformed", "outcome"), STREAM)
def test_a_malformed_stream_fails_over_before_the_client_sees_a_byte(gw: EmbeddedGateway, malformed: str,
                                                                      outcome: str) -> None:
    gw.set_fault("alpha", Fault(malformed=malformed))  # type: ignore[arg-type]
    with sdk(gw).chat.completions.with_streaming_response.create(model="chat", messages=HELLO, stream=True) as r:
        assert r.headers["x-recloser-provider"] == "beta"
        text = "".join(ch.choices[0].delta.content or "" for ch in r.parse() if ch.choices)
    assert text.startswith("beta")
    assert attempts_counted(gw, outcome) == 1


def test_a_stream_that_trickles_after_its_first_event_is_stalled_and_resumed_elsewhere(gw: EmbeddedGateway) -> None:
    gw.set_fault("alpha", Fault(malformed="trickle", trickle_s=0.05))
    started = time.monotonic()
    stream = sdk(gw).chat.completions.create(model="chat", messages=HELLO, stream=True)
    text = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    # The trickle's one event ("fine"), then beta continues it; a byte every 50 ms never reset the clock.
    assert text.startswith("fine") and "beta" in text
    assert time.monotonic() - started < 5
    assert attempts_counted(gw, "stalled") == 1


def test_a_trickling_stream_with_no_target_left_ends_with_an_error_event(gw: EmbeddedGateway) -> None:
    gw.set_fault("alpha", Fault(malformed="trickle", trickle_s=0.05))
    with httpx.stream("POST", gw.base_url + "/chat/completions", timeout=10,
                      json={"model": "alone", "messages": HELLO, "stream": True}) as r:
        body = b"".join(r.iter_bytes())
    assert r.status_code == 200
    assert b'"code":"stream_interrupted"' in body and b"[DONE]" not in body


@pytest.mark.parametrize("malformed", ["html", "gzip", "oversized", "not_json"])
def test_with_no_target_left_a_malformed_answer_is_an_openai_error_not_a_success(gw: EmbeddedGateway,
                                                                                  malformed: str) -> None:
    gw.set_fault("alpha", Fault(malformed=malformed))  # type: ignore[arg-type]
    r = httpx.post(gw.base_url + "/chat/completions", json={"model": "alone", "messages": HELLO}, timeout=10)
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "upstream_unavailable"
    assert "alpha/alpha-model" in error["message"]


def test_an_oversized_answer_is_never_read_past_the_bound(gw: EmbeddedGateway) -> None:
    gw.set_fault("alpha", Fault(malformed="oversized", oversize_bytes=64 * 1024 * 1024))
    started = time.monotonic()
    r = httpx.post(gw.base_url + "/chat/completions", json={"model": "alone", "messages": HELLO}, timeout=20)
    # Cut off at 1 MiB: 64 MiB would take the sim seconds to write on this machine.
    assert r.status_code == 503 and "bound" in r.json()["error"]["message"]
    assert time.monotonic() - started < 3


def test_an_oversized_stream_is_cut_at_the_bound_with_an_error_event(gw: EmbeddedGateway) -> None:
    gw.set_fault("alpha", Fault(malformed="oversized", oversize_bytes=64 * 1024 * 1024))
    with httpx.stream("POST", gw.base_url + "/chat/completions", timeout=20,
                      json={"model": "alone", "messages": HELLO, "stream": True}) as r:
        body = b"".join(r.iter_bytes())
    assert b'"code":"stream_interrupted"' in body and b"bound" in body
    assert len(body) <= 1024 * 1024


ANTHROPIC_FIRST = """
version: 1
providers:
  claude: {kind: sim, sim: {wire: anthropic}}
  beta: {kind: sim, sim: {wire: openai, reply_tokens: 6}}
routes:
  chat:
    targets:
      - {provider: claude, model: claude-haiku-4-5}
      - {provider: beta, model: beta-model}
"""


@pytest.mark.parametrize("malformed", ["html", "not_json", "truncated"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_malformed_answer_from_an_anthropic_upstream_fails_over_too(start_gateway: GatewayFactory, malformed: str,
                                                                      stream: bool) -> None:
    gw = start_gateway(ANTHROPIC_FIRST)
    gw.set_fault("claude", Fault(malformed=malformed))  # type: ignore[arg-type]
    r = httpx.post(gw.base_url + "/chat/completions", timeout=30,
                   json={"model": "chat", "messages": HELLO, "stream": stream})
    assert r.status_code == 200 and r.headers["x-recloser-provider"] == "beta", r.text[:300]
    assert "beta" in r.text


@pytest.mark.parametrize("stream", [False, True])
def test_an_oversized_answer_from_an_anthropic_upstream_is_cut_at_the_bound_and_fails_over(
        start_gateway: GatewayFactory, stream: bool) -> None:
    gw = start_gateway(ANTHROPIC_FIRST.replace("version: 1\n", "version: 1\nlimits: {max_upstream_body_bytes: 1048576}\n"))
    gw.set_fault("claude", Fault(malformed="oversized", oversize_bytes=64 * 1024 * 1024))
    started = time.monotonic()
    r = httpx.post(gw.base_url + "/chat/completions", timeout=30,
                   json={"model": "chat", "messages": HELLO, "stream": stream})
    assert r.status_code == 200 and r.headers["x-recloser-provider"] == "beta", r.text[:300]
    assert time.monotonic() - started < 5  # 64 MiB would take the sim far longer to write
    # The gateway hung up on the sim mid-answer: it read up to the bound, not to the end.
    gw.run(asyncio.wait_for(gw.sim("claude").state.client_gone.wait(), 5))
