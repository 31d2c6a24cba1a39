"""`POST /v1/messages` with the official anthropic SDK: served by an Anthropic target, and by an
OpenAI-wire target when Anthropic is down, in Anthropic's own answers, events and errors."""

from __future__ import annotations

import hashlib

import anthropic
import httpx
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import UPSTREAM_KEY, GatewayFactory

CLIENT_KEY = "sk-claude-code-team"
POLICY = f"""
version: 1
providers:
  claude:
    kind: sim
    api_key: {UPSTREAM_KEY}
    sim: {{wire: anthropic, reply_tokens: 6}}
  gpt:
    kind: sim
    sim: {{wire: openai, reply_tokens: 4}}
routes:
  claude: {{targets: [{{provider: claude, model: claude-sonnet-4-5}}]}}
  sonnet:
    targets: [{{provider: claude, model: claude-sonnet-4-5}}, {{provider: gpt, model: gpt-4.1}}]
    retry: {{attempts: 1}}
auth:
  keys:
    - {{id: coder, sha256: {hashlib.sha256(CLIENT_KEY.encode()).hexdigest()}, team: dev, app: claude-code}}
"""
WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)


def client(gw: EmbeddedGateway, key: str = CLIENT_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


@pytest.fixture(params=["anthropic", "openai-wire"])
def served_by(request: pytest.FixtureRequest, gw: EmbeddedGateway) -> str:
    """Which wire answers route 'sonnet': Anthropic itself, or the OpenAI-wire target while it is down."""
    if request.param == "openai-wire":
        gw.set_fault("claude", Fault(status=529))
        return "gpt"
    return "claude"


def test_a_message_from_either_wire(gw: EmbeddedGateway, served_by: str) -> None:
    raw = client(gw).messages.with_raw_response.create(model="sonnet", max_tokens=100, messages=HELLO,  # type: ignore[arg-type]
                                                       system="be brief")
    message = raw.parse()
    assert raw.headers["x-recloser-provider"] == served_by
    assert message.type == "message" and message.role == "assistant" and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.split()[0] == served_by
    assert message.usage.output_tokens == len(message.content[0].text.split()) and message.usage.input_tokens > 0


def test_a_stream_from_either_wire(gw: EmbeddedGateway, served_by: str) -> None:
    with client(gw).messages.stream(model="sonnet", max_tokens=100, messages=HELLO) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        text = stream.get_final_text()
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds
    assert text.split()[0] == served_by and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(text.split())


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_tool_use_round_trip_on_either_wire(gw: EmbeddedGateway, served_by: str, stream: bool) -> None:
    c = client(gw)
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        with c.messages.stream(model="sonnet", max_tokens=100, messages=question, tools=[WEATHER]) as events:  # type: ignore[arg-type,list-item]
            kinds = [e.type for e in events]
            first = events.get_final_message()
        assert "input_json" in kinds   # the SDK's event for an input_json_delta
    else:
        first = c.messages.create(model="sonnet", max_tokens=100, messages=question, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert first.stop_reason == "tool_use"
    use = first.content[-1]
    assert use.type == "tool_use" and use.name == "get_weather" and use.input == {"city": "sim"}
    second = c.messages.create(model="sonnet", max_tokens=100, tools=[WEATHER], messages=[  # type: ignore[list-item]
        *question, {"role": "assistant", "content": [block.model_dump() for block in first.content]},  # type: ignore[list-item]
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21 C"}]}])
    assert second.stop_reason == "end_turn" and second.content[0].text.split()[0] == served_by  # type: ignore[union-attr]
    assert "sunny, 21 C" in str(gw.sim(served_by).requests[-1].body)


def test_the_openai_wire_target_gets_a_chat_request(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(status=529))
    client(gw).messages.create(model="sonnet", max_tokens=100, messages=HELLO, system="be brief")  # type: ignore[arg-type]
    seen = gw.sim("gpt").requests[-1]
    assert seen.path == "/v1/chat/completions" and seen.body["model"] == "gpt-4.1"
    assert seen.body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


def test_count_tokens_is_anthropics_own_count_on_a_route_with_an_anthropic_target(gw: EmbeddedGateway) -> None:
    raw = client(gw).messages.with_raw_response.count_tokens(model="sonnet", messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["x-recloser-provider"] == "claude"
    seen = gw.sim("claude").requests[-1]
    assert seen.path == "/v1/messages/count_tokens" and seen.body == {"model": "claude-sonnet-4-5", "messages": HELLO}
    short = raw.parse()
    longer = client(gw).messages.count_tokens(model="sonnet", system="a long system prompt of many words",
                                              messages=HELLO, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert 0 < short.input_tokens < longer.input_tokens


def test_count_tokens_is_counted_here_while_anthropic_is_down(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(status=529))
    raw = client(gw).messages.with_raw_response.count_tokens(model="sonnet", messages=HELLO)  # type: ignore[arg-type]
    assert "x-recloser-provider" not in raw.headers
    assert raw.parse().input_tokens > 0


def test_the_key_is_taken_from_x_api_key_or_a_bearer_token(gw: EmbeddedGateway) -> None:
    bearer = anthropic.Anthropic(base_url=gw.url, auth_token=CLIENT_KEY, max_retries=0)
    assert bearer.messages.create(model="claude", max_tokens=10, messages=HELLO).type == "message"  # type: ignore[arg-type]
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(gw, key="sk-wrong").messages.create(model="claude", max_tokens=10, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                            "message": caught.value.body["error"]["message"]}}  # type: ignore[index]


def test_errors_on_messages_have_anthropics_shape(gw: EmbeddedGateway) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(gw).messages.create(model="no-such-route", max_tokens=10, messages=HELLO)  # type: ignore[arg-type]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client(gw).post("/v1/messages", body={"model": "claude", "messages": HELLO}, cast_to=object)
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens" in bad.value.body["error"]["message"]  # type: ignore[index]


def test_when_every_target_is_down_the_error_is_anthropics_overloaded(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(status=529))
    gw.set_fault("gpt", Fault(status=503))
    with pytest.raises(anthropic.APIStatusError) as caught:
        client(gw).messages.create(model="sonnet", max_tokens=10, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code in (502, 503)
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and "route 'sonnet'" in body["error"]["message"]


def test_a_server_tool_crossing_to_the_openai_wire_target_is_dropped_and_named(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(status=529))
    raw = client(gw).messages.with_raw_response.create(
        model="sonnet", max_tokens=10, messages=HELLO,  # type: ignore[arg-type]
        tools=[{"type": "web_search_20250305", "name": "web_search"}])  # type: ignore[list-item]
    assert raw.headers["x-recloser-provider"] == "gpt"
    assert raw.headers["x-recloser-dropped"] == "web_search"
    assert "tools" not in gw.sim("gpt").requests[-1].body
    assert raw.parse().content[0].type == "text"


def test_a_stream_cut_after_bytes_reached_the_client_raises_an_anthropic_error(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(status=529))
    gw.set_fault("gpt", Fault(cut_after_chunks=2))
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client(gw).messages.stream(model="sonnet", max_tokens=100, messages=HELLO) as stream:  # type: ignore[arg-type]
            for text in stream.text_stream:
                texts.append(text)
    assert texts and isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "error" and "incomplete" in caught.value.body["error"]["message"]


def test_an_anthropic_target_gets_the_body_untouched_but_for_the_model_with_the_clients_headers(
        gw: EmbeddedGateway) -> None:
    body = {"max_tokens": 2048, "top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hello"},
                         {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                                                           {"type": "text", "text": "hi"}]},
                         {"role": "user", "content": "again"}]}
    # Fields the SDK has no argument for go as extra_body: the gateway must carry them all the same.
    client(gw).messages.create(model="claude", max_tokens=2048, system=body["system"],  # type: ignore[arg-type]
                               messages=body["messages"],  # type: ignore[arg-type]
                               extra_body={"top_k": 5, "thinking": body["thinking"]},
                               extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14",
                                              "anthropic-version": "2023-06-01"})
    seen = gw.sim("claude").requests[-1]
    assert seen.path == "/v1/messages"
    assert seen.body == {"model": "claude-sonnet-4-5", **body}
    assert seen.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["x-api-key"] == UPSTREAM_KEY


def test_an_anthropic_stream_is_relayed_as_anthropic_sent_it(gw: EmbeddedGateway) -> None:
    with httpx.stream("POST", gw.url + "/v1/messages", headers={"x-api-key": CLIENT_KEY},
                      json={"model": "claude", "max_tokens": 100, "stream": True, "messages": HELLO}) as resp:
        raw = b"".join(resp.iter_bytes())
    assert resp.headers["x-recloser-provider"] == "claude"
    assert b"event: ping" in raw   # Anthropic's keep-alive: a translated stream has none
    assert raw.rstrip().endswith(b'{"type": "message_stop"}') or raw.rstrip().endswith(b'{"type":"message_stop"}')


def test_anthropics_own_400_comes_back_as_it_said_it_without_failing_over(gw: EmbeddedGateway) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(gw).messages.create(model="sonnet", max_tokens=10, messages=HELLO,  # type: ignore[arg-type]
                                   extra_body={"temperature": 1.5})
    assert caught.value.body["error"]["message"] == "temperature: Input should be less than or equal to 1"  # type: ignore[index]
    assert gw.sim("gpt").request_count() == 0


def test_an_error_event_before_the_first_content_fails_over_unseen(gw: EmbeddedGateway) -> None:
    gw.set_fault("claude", Fault(error_event_after_chunks=0))
    with client(gw).messages.stream(model="sonnet", max_tokens=100, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = stream.get_final_text()
    assert text.split()[0] == "gpt"
    assert gw.sim("claude").request_count("/v1/messages") == 1
