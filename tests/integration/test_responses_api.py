"""`POST /v1/responses` with the official openai SDK: passed through to a target that speaks it,
translated for a chat-only server and for Anthropic, failing over across wires, and conversations
continued with `previous_response_id` whichever provider answers the next turn."""

from __future__ import annotations

import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import UPSTREAM_KEY, GatewayFactory

POLICY = f"""
version: 1
providers:
  openai:
    kind: sim
    api_key: {UPSTREAM_KEY}
    sim: {{wire: openai, reply_tokens: 5}}
  azure:
    kind: sim
    sim: {{wire: openai, reply_tokens: 3}}
  vllm:
    kind: sim
    responses: false
    sim: {{wire: openai, reply_tokens: 4}}
  claude:
    kind: sim
    sim: {{wire: anthropic, reply_tokens: 6}}
routes:
  gpt: {{targets: [{{provider: openai, model: gpt-4.1}}]}}
  local: {{targets: [{{provider: vllm, model: llama}}]}}
  claude: {{targets: [{{provider: claude, model: claude-haiku-4-5}}]}}
  gpt-then-claude:
    targets: [{{provider: openai, model: gpt-4.1}}, {{provider: claude, model: claude-haiku-4-5}}]
    retry: {{attempts: 1}}
  gpt-then-azure:
    targets: [{{provider: openai, model: gpt-4.1}}, {{provider: azure, model: gpt-4.1}}]
    retry: {{attempts: 1}}
"""
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ROUTES = {"gpt": ("openai", "/v1/responses"), "local": ("vllm", "/v1/chat/completions"),
          "claude": ("claude", "/v1/messages")}


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)


def client(gw: EmbeddedGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="client-key", max_retries=0)


def test_a_target_that_speaks_responses_gets_the_body_with_only_the_model_rewritten(gw: EmbeddedGateway) -> None:
    raw = client(gw).responses.with_raw_response.create(model="gpt", input="hello there", instructions="be brief",
                                                        metadata={"ticket": "42"}, temperature=0.3)
    response = raw.parse()
    assert raw.headers["x-recloser-provider"] == "openai"
    assert response.id.startswith("resp_sim_openai_") and response.output_text == "openai t1 t2 t3 t4"
    seen = gw.sim("openai").requests[-1]
    assert seen.path == "/v1/responses" and seen.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert seen.body == {"model": "gpt-4.1", "input": "hello there", "instructions": "be brief",
                         "metadata": {"ticket": "42"}, "temperature": 0.3}


@pytest.mark.parametrize("route", ["gpt", "local", "claude"])
def test_a_response_from_every_wire_has_text_usage_and_settings(gw: EmbeddedGateway, route: str) -> None:
    response = client(gw).responses.create(model=route, input="hello there", max_output_tokens=50,
                                           metadata={"ticket": "42"})
    provider, path = ROUTES[route]
    assert gw.sim(provider).requests[-1].path == path
    assert response.object == "response" and response.status == "completed"
    assert response.output_text.split()[0] == provider
    assert response.usage is not None and response.usage.output_tokens == len(response.output_text.split())
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.metadata == {"ticket": "42"} and response.max_output_tokens == 50


@pytest.mark.parametrize("route", ["gpt", "local", "claude"])
def test_a_stream_from_every_wire_is_the_response_event_sequence(gw: EmbeddedGateway, route: str) -> None:
    events = list(client(gw).responses.create(model=route, input="hello there", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert text.split()[0] == ROUTES[route][0] and final.output_text == text
    assert final.usage is not None and final.usage.output_tokens == len(text.split())


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ["gpt", "local", "claude"])
def test_a_function_tool_round_trip_on_every_wire(gw: EmbeddedGateway, route: str, stream: bool) -> None:
    c = client(gw)
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        with c.responses.stream(model=route, input=question, tools=[WEATHER]) as events:  # type: ignore[arg-type]
            kinds = [e.type for e in events]
            first = events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
    else:
        first = c.responses.create(model=route, input=question, tools=[WEATHER])  # type: ignore[arg-type]
    call = first.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments.replace(" ", "") == '{"city":"sim"}'
    second = c.responses.create(model=route, tools=[WEATHER], input=[  # type: ignore[arg-type]
        *question, {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}])
    assert second.output_text.split()[0] == ROUTES[route][0]
    upstream = gw.sim(ROUTES[route][0]).requests[-1].body
    assert "sunny, 21 C" in str(upstream)   # the tool's result reached the model, in its own wire's shape


def test_when_the_responses_target_is_down_anthropic_answers_in_the_responses_shape(gw: EmbeddedGateway) -> None:
    gw.set_fault("openai", Fault(status=503))
    raw = client(gw).responses.with_raw_response.create(model="gpt-then-claude", input="hello there")
    assert raw.headers["x-recloser-provider"] == "claude"
    assert raw.parse().output_text.split()[0] == "claude"
    events = list(client(gw).responses.create(model="gpt-then-claude", input="hello there", stream=True))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta").split()[0] == "claude"


def test_a_tool_call_fails_over_to_anthropic_and_comes_back_as_a_function_call(gw: EmbeddedGateway) -> None:
    gw.set_fault("openai", Fault(status=503))
    response = client(gw).responses.create(model="gpt-then-claude", input="weather?", tools=[WEATHER])  # type: ignore[list-item]
    call = response.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert gw.sim("claude").requests[-1].body["tools"][0]["name"] == "get_weather"


def test_a_conversation_continues_with_previous_response_id_when_the_provider_changes(gw: EmbeddedGateway) -> None:
    c = client(gw)
    one = c.responses.create(model="gpt-then-claude", input="my name is Ada")
    assert one.id.startswith("resp_sim_openai_")
    two = c.responses.create(model="gpt-then-claude", input="what is my name?", previous_response_id=one.id)
    # The origin wrote the first turn: it keeps the conversation itself.
    assert gw.sim("openai").requests[-1].body["previous_response_id"] == one.id
    gw.set_fault("openai", Fault(status=503))
    three = c.responses.create(model="gpt-then-claude", input="and again?", previous_response_id=two.id)
    assert three.previous_response_id == two.id
    sent = gw.sim("claude").requests[-1].body["messages"]
    said = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in sent]
    assert said == ["my name is Ada", one.output_text, "what is my name?", two.output_text, "and again?"]
    gw.set_fault("openai", None)
    four = c.responses.create(model="gpt-then-claude", input="once more", previous_response_id=three.id)
    assert four.id.startswith("resp_sim_openai_")
    # OpenAI never saw the third turn: it gets the whole chain instead of an id it does not know.
    body = gw.sim("openai").requests[-1].body
    assert "previous_response_id" not in body
    assert [item.get("content") for item in body["input"]][-1] == "once more"
    assert three.output_text in str(body["input"]) and "my name is Ada" in str(body["input"])


def test_reasoning_only_its_origin_can_read_is_dropped_when_another_provider_takes_over(gw: EmbeddedGateway) -> None:
    c = client(gw)
    one = c.responses.create(model="gpt-then-azure", input="think", reasoning={"effort": "low"},
                             include=["reasoning.encrypted_content"])
    assert [item.type for item in one.output] == ["reasoning", "message"]
    gw.set_fault("openai", Fault(status=503))
    raw = c.responses.with_raw_response.create(model="gpt-then-azure", input="go on", previous_response_id=one.id)
    assert raw.headers["x-recloser-provider"] == "azure"
    sent = gw.sim("azure").requests[-1].body["input"]
    assert [item.get("type", "message") for item in sent] == ["message", "message", "message"]


def test_an_unknown_previous_response_id_is_a_404_in_openais_shape(gw: EmbeddedGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(gw).responses.create(model="gpt", input="hi", previous_response_id="resp_never_served")
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "previous_response_not_found" and error["param"] == "previous_response_id"
    assert gw.sim("openai").request_count("/responses") == 0


def test_a_hosted_tool_sent_to_a_chat_only_target_is_dropped_and_named(gw: EmbeddedGateway) -> None:
    raw = client(gw).responses.with_raw_response.create(model="local", input="news?",
                                                        tools=[{"type": "web_search"}])  # type: ignore[list-item]
    assert raw.headers["x-recloser-dropped"] == "web_search"
    assert "tools" not in gw.sim("vllm").requests[-1].body
    assert raw.parse().output_text


def test_a_request_no_target_can_take_is_a_400_naming_the_field(gw: EmbeddedGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).with_options(max_retries=0).responses.create(model="local", input="x", background=True)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "background"
    assert gw.sim("vllm").request_count() == 0


def test_a_request_without_input_is_a_400(gw: EmbeddedGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).post("/responses", body={"model": "gpt"}, cast_to=object)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "input"


@pytest.mark.parametrize("route", ["gpt", "local"])
def test_a_stream_cut_after_bytes_reached_the_client_ends_in_an_error_event_not_a_completion(
        gw: EmbeddedGateway, route: str) -> None:
    gw.set_fault(ROUTES[route][0], Fault(cut_after_chunks=2))
    events = list(client(gw).responses.create(model=route, input="hello there", stream=True))
    kinds = [e.type for e in events]
    assert "response.output_text.delta" in kinds
    assert kinds[-1] == "error" and "response.completed" not in kinds
    assert events[-1].code == "stream_interrupted"  # type: ignore[union-attr]
