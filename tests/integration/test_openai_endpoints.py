"""The official openai SDK, sync and async, through a gateway to simulated OpenAI-wire upstreams."""

from __future__ import annotations

import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from tests.conftest import UPSTREAM_KEY

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
HELLO = [{"role": "user", "content": "hello there"}]


def client(gw: EmbeddedGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="client-key", max_retries=0)


def test_sync_chat_answers_from_the_first_target_with_routing_headers(two_sims: EmbeddedGateway) -> None:
    raw = client(two_sims).chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    answer = raw.parse()
    assert answer.choices[0].message.content == "alpha t1 t2 t3 t4 t5 t6 t7"
    assert raw.headers["x-recloser-provider"] == "alpha"
    assert raw.headers["x-recloser-model"] == "alpha-model"
    assert raw.headers["x-recloser-attempts"] == "1"
    assert len(raw.headers["x-request-id"]) >= 16


def test_sync_stream_relays_every_chunk_in_order(two_sims: EmbeddedGateway) -> None:
    stream = client(two_sims).chat.completions.create(model="chat", messages=HELLO, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.split() == ["alpha", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]


async def test_async_client_chat_and_stream(two_sims: EmbeddedGateway) -> None:
    aclient = openai.AsyncOpenAI(base_url=two_sims.base_url, api_key="client-key", max_retries=0)
    answer = await aclient.chat.completions.create(model="chat", messages=HELLO)
    assert answer.choices[0].message.content.startswith("alpha")  # type: ignore[union-attr]
    stream = await aclient.chat.completions.create(model="chat", messages=HELLO, stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces).split()[0] == "alpha"
    await aclient.close()


def test_tool_call_round_trip(two_sims: EmbeddedGateway) -> None:
    c = client(two_sims)
    first = c.chat.completions.create(model="chat", tools=[WEATHER_TOOL],  # type: ignore[list-item]
                                      messages=[{"role": "user", "content": "weather in Paris?"}])
    assert two_sims.sim("alpha").requests[-1].body["tools"] == [WEATHER_TOOL]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"
    second = c.chat.completions.create(model="chat", tools=[WEATHER_TOOL], messages=[  # type: ignore[list-item]
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ])
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls


def test_embeddings_in_the_sdks_default_base64_encoding(two_sims: EmbeddedGateway) -> None:
    result = client(two_sims).embeddings.create(model="embed", input=["one", "two"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 8
    assert result.data[0].embedding != result.data[1].embedding


def test_completions_endpoint(two_sims: EmbeddedGateway) -> None:
    result = client(two_sims).completions.create(model="chat", prompt="once upon a time")
    assert result.choices[0].text.split()[0] == "alpha"


def test_models_lists_the_route_names(two_sims: EmbeddedGateway) -> None:
    assert sorted(m.id for m in client(two_sims).models.list()) == ["chat", "embed"]


def test_upstream_sees_the_deployment_model_and_the_provider_key(two_sims: EmbeddedGateway) -> None:
    client(two_sims).chat.completions.create(model="chat", messages=HELLO)
    seen = two_sims.sim("alpha").requests[-1]
    assert seen.body["model"] == "alpha-model"
    assert seen.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_every_other_field_reaches_the_upstream_untouched(two_sims: EmbeddedGateway) -> None:
    extra = {"logprobs": True, "top_logprobs": 2, "seed": 7, "user": "u-1", "n": 1, "parallel_tool_calls": False,
             "response_format": {"type": "json_object"}, "tool_choice": "none", "tools": [WEATHER_TOOL],
             "a_future_field": {"nested": [1, 2, {"x": None}]}}
    client(two_sims).chat.completions.create(model="chat", messages=HELLO, extra_body=extra)
    seen = two_sims.sim("alpha").requests[-1].body
    assert seen == {"model": "alpha-model", "messages": HELLO, **extra}


def test_the_client_never_sees_the_provider_key(two_sims: EmbeddedGateway) -> None:
    import httpx

    responses = [
        httpx.post(f"{two_sims.base_url}/chat/completions", json={"model": "chat", "messages": HELLO}),
        httpx.post(f"{two_sims.base_url}/chat/completions", json={"model": "chat", "messages": HELLO, "stream": True}),
        httpx.post(f"{two_sims.base_url}/chat/completions", json={"model": "nope", "messages": HELLO}),
        httpx.get(f"{two_sims.base_url}/models"),
    ]
    for r in responses:
        assert UPSTREAM_KEY not in r.text
        assert all(UPSTREAM_KEY not in v for v in r.headers.values())


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_answer_200_once_serving(two_sims: EmbeddedGateway, path: str) -> None:
    import httpx

    assert httpx.get(two_sims.url + path).status_code == 200
