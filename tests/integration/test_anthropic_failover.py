"""Failing over to the native Anthropic wire, and Anthropic's own failures as the breaker needs them,
through the gateway on real sockets with the official openai SDK as the client."""

from __future__ import annotations

import json

import httpx

import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import UPSTREAM_KEY, GatewayFactory, sdk

POLICY = f"""
version: 1
providers:
  primary:
    kind: sim
    sim: {{wire: openai, reply_tokens: 5}}
  claude:
    kind: sim
    api_key: {UPSTREAM_KEY}
    sim: {{wire: anthropic, reply_tokens: 6}}
  backup:
    kind: sim
    sim: {{wire: openai, reply_tokens: 4}}
routes:
  chat:
    targets:
      - {{provider: primary, model: gpt-x}}
      - {{provider: claude, model: claude-sonnet-4-5}}
  claude-first:
    mid_stream: error
    targets:
      - {{provider: claude, model: claude-sonnet-4-5}}
      - {{provider: backup, model: small}}
  claude-only:
    targets:
      - {{provider: claude, model: claude-sonnet-4-5}}
  claude-resume:
    mid_stream: resume
    targets:
      - {{provider: claude, model: claude-sonnet-4-5}}
      - {{provider: backup, model: small}}
"""
HELLO = [{"role": "user", "content": "hello"}]
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)



def test_a_failing_openai_wire_primary_fails_over_to_the_native_anthropic_target(gw: EmbeddedGateway) -> None:
    gw.set_fault("primary", Fault(refuse=True))
    raw = sdk(gw).chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    answer = raw.parse()
    assert raw.headers["x-recloser-provider"] == "claude"
    assert answer.choices[0].message.content == "claude t1 t2 t3 t4 t5"
    assert answer.usage is not None and answer.usage.completion_tokens == 6
    assert gw.sim("claude").requests[-1].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello"}]}]


def test_a_failing_primary_stream_is_answered_by_anthropic_as_openai_chunks(gw: EmbeddedGateway) -> None:
    gw.set_fault("primary", Fault(status=503))
    with sdk(gw).chat.completions.with_streaming_response.create(model="chat", messages=HELLO, stream=True) as raw:
        assert raw.headers["x-recloser-provider"] == "claude"
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "claude t1 t2 t3 t4 t5"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_a_streamed_tool_call_arrives_as_openai_tool_call_deltas(gw: EmbeddedGateway) -> None:
    chunks = list(sdk(gw).chat.completions.create(model="claude-first", messages=HELLO, stream=True,
                                                     tools=[WEATHER]))  # type: ignore[list-item]
    calls = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id and calls[0].function is not None and calls[0].function.name == "weather"
    arguments = "".join(d.function.arguments or "" for d in calls if d.function is not None)
    assert json.loads(arguments) == {"city": "sim"}
    assert chunks[-1].choices and chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_529_overload_fails_over_invisibly_before_the_stream_begins(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(status=529))
    with sdk(gw).chat.completions.with_streaming_response.create(model="claude-first", messages=HELLO,
                                                                    stream=True) as raw:
        assert raw.headers["x-recloser-provider"] == "backup"
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text.split()[0] == "backup"


def test_a_429_with_a_long_retry_after_ejects_the_anthropic_target(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(status=429, retry_after_s=60))
    for _ in range(2):
        raw = sdk(gw).chat.completions.with_raw_response.create(model="claude-first", messages=HELLO)
        assert raw.headers["x-recloser-provider"] == "backup"
    assert gw.sim("claude").request_count() == 1   # the second request did not knock on its door


def test_a_field_the_anthropic_wire_cannot_carry_skips_it_for_the_next_target(gw: EmbeddedGateway) -> None:
    raw = sdk(gw).chat.completions.with_raw_response.create(model="claude-first", messages=HELLO, logprobs=True)
    assert raw.headers["x-recloser-provider"] == "backup"
    assert gw.sim("claude").request_count() == 0 and gw.sim("backup").request_count() == 1
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'outcome="unfit"' in metrics and 'reason="unfit"' in metrics


def test_a_field_no_target_can_carry_is_a_400_naming_each_target_and_why(gw: EmbeddedGateway) -> None:
    for _ in range(6):   # more than enough to eject it, were it counted against the deployment
        with pytest.raises(openai.BadRequestError) as caught:
            sdk(gw).with_options(max_retries=0).chat.completions.create(model="claude-only", messages=HELLO,
                                                                        logprobs=True)
    assert caught.value.status_code == 400
    assert caught.value.param == "logprobs" and "claude/claude-sonnet-4-5" in caught.value.message
    assert "logprobs" in caught.value.message and gw.sim("claude").request_count() == 0
    assert gw.context.board.healths["claude/claude-sonnet-4-5"].state.value == "healthy"


def test_the_anthropic_upstream_gets_its_key_version_and_a_max_tokens(gw: EmbeddedGateway) -> None:
    sdk(gw).chat.completions.create(model="claude-first", messages=HELLO)
    seen = gw.sim("claude").requests[-1]
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.body["max_tokens"] == 4096 and "stream_options" not in seen.body


def test_json_mode_is_answered_through_the_forced_answer_tool(gw: EmbeddedGateway) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    answer = sdk(gw).chat.completions.create(
        model="claude-first", messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}})
    assert json.loads(answer.choices[0].message.content or "") == {"city": "sim"}
    assert answer.choices[0].finish_reason == "stop" and not answer.choices[0].message.tool_calls


def stream_text(gw: EmbeddedGateway, route: str) -> tuple[str, str]:
    """The provider header and the text a streamed chat delivered."""
    with sdk(gw).chat.completions.with_streaming_response.create(model=route, messages=HELLO, stream=True) as raw:
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        return raw.headers["x-recloser-provider"], text


def test_an_error_event_before_the_first_content_fails_over_invisibly(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(error_event_after_chunks=0))
    provider, text = stream_text(gw, "claude-first")
    assert provider == "backup" and text.split()[0] == "backup"


def test_an_error_event_after_content_is_never_relayed_as_a_success(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(error_event_after_chunks=2, chunk_delay_s=0.05))   # content first, then the error
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in sdk(gw).chat.completions.create(model="claude-first", messages=HELLO, stream=True):
            received += [chunk.choices[0].delta.content or ""] if chunk.choices else []
    assert "".join(received) == "claude t1"
    assert "claude-sonnet-4-5" in caught.value.message and "HTTP 529" in caught.value.message


def test_an_error_event_after_content_resumes_on_the_next_target_where_the_route_says_so(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(error_event_after_chunks=2, chunk_delay_s=0.05))
    _, text = stream_text(gw, "claude-resume")
    assert text.startswith("claude t1")
    assert gw.sim("backup").requests[-1].body["messages"][-1] == {"role": "assistant", "content": "claude t1"}
