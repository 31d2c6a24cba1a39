"""The native Anthropic wire (kind: anthropic) answers OpenAI clients in exact OpenAI shapes."""

from __future__ import annotations

import json

import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import UPSTREAM_KEY, GatewayFactory, sdk

POLICY = f"""
version: 1
providers:
  claude:
    kind: sim
    api_key: {UPSTREAM_KEY}
    sim: {{wire: anthropic, reply_tokens: 7}}
  backup:
    kind: sim
routes:
  chat:
    targets:
      - {{provider: claude, model: claude-3-5-haiku-latest}}
      - {{provider: backup, model: small}}
"""
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)



def test_non_stream_chat_through_the_anthropic_wire(gw: EmbeddedGateway) -> None:
    raw = sdk(gw).chat.completions.with_raw_response.create(model="chat", messages=HELLO, max_tokens=50)
    answer = raw.parse()
    assert raw.headers["x-recloser-provider"] == "claude"
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "claude t1 t2 t3 t4 t5 t6"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 7


def test_the_anthropic_upstream_gets_its_own_key_and_model(gw: EmbeddedGateway) -> None:
    sdk(gw).chat.completions.create(model="chat", messages=HELLO)
    seen = gw.sim("claude").requests[-1]
    assert seen.path.endswith("/v1/messages")
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert seen.body["model"] == "claude-3-5-haiku-latest"


def test_stream_chat_through_the_anthropic_wire(gw: EmbeddedGateway) -> None:
    chunks = list(sdk(gw).chat.completions.create(model="chat", messages=HELLO, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.split() == ["claude", "t1", "t2", "t3", "t4", "t5", "t6"]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_an_anthropic_overload_fails_over(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(status=529))
    raw = sdk(gw).chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert raw.headers["x-recloser-provider"] == "backup"


def test_a_tool_call_through_the_anthropic_wire(gw: EmbeddedGateway) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}
    answer = sdk(gw).chat.completions.create(model="chat", tools=[tool],  # type: ignore[list-item]
                                                messages=[{"role": "user", "content": "weather?"}])
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "sim"})
    assert gw.sim("claude").requests[-1].body["tools"][0]["name"] == "get_weather"
