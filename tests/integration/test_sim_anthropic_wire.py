"""The simulated Anthropic upstream speaks the Messages API as the official `anthropic` SDK reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from gateway.sim import Fault, SimConfig, SimServer

KEY = "sk-ant-sim-key"
WEATHER: Any = {"name": "get_weather", "input_schema": {"type": "object", "properties": {
    "city": {"type": "string"}, "units": {"type": "array", "items": {"type": "string"}}}}}
TIME: Any = {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(name="claude", wire="anthropic", api_key=KEY, reply_tokens=8))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key=KEY, max_retries=0) as c:
        yield c


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sim", "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


async def test_a_text_answer_parses_as_a_message(client: anthropic.AsyncAnthropic) -> None:
    m = await client.messages.create(**ask("hello there", system="be brief"))
    assert m.type == "message" and m.role == "assistant" and m.model == "claude-sim"
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == "claude t1 t2 t3 t4 t5 t6 t7"  # type: ignore[union-attr]
    assert (m.stop_reason, m.stop_sequence) == ("end_turn", None)
    assert (m.usage.input_tokens, m.usage.output_tokens) == (2 + 1 + 2, 8)


async def test_a_stream_accumulates_to_the_same_message(client: anthropic.AsyncAnthropic) -> None:
    whole = await client.messages.create(**ask("use get_weather and get_time", tools=[WEATHER, TIME]))
    async with client.messages.stream(**ask("use get_weather and get_time", tools=[WEATHER, TIME])) as s:
        kinds = [event.type async for event in s]
        streamed = await s.get_final_message()
    assert kinds.count("content_block_start") == 3 and "input_json" in kinds
    assert [b.model_dump() for b in streamed.content][0] == whole.content[0].model_dump()
    assert [(b.name, b.input) for b in streamed.content[1:]] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "sim", "units": ["sim"]}), ("get_time", {"zone": "sim"})]
    assert streamed.stop_reason == whole.stop_reason == "tool_use"
    assert streamed.usage.output_tokens == whole.usage.output_tokens


async def test_a_tool_result_turn_gets_a_text_answer(client: anthropic.AsyncAnthropic) -> None:
    first = await client.messages.create(**ask("weather?", tools=[WEATHER], tool_choice={"type": "any"}))
    call = first.content[0]
    assert call.type == "tool_use"
    m = await client.messages.create(model="claude-sim", max_tokens=50, tools=[WEATHER], messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [call.model_dump()]},  # type: ignore[list-item]
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}])
    assert [b.type for b in m.content] == ["text"] and m.stop_reason == "end_turn"


async def test_stop_sequences_and_max_tokens_end_the_answer_as_documented(client: anthropic.AsyncAnthropic) -> None:
    stopped = await client.messages.create(**ask("hi", stop_sequences=["t4"]))
    assert (stopped.content[0].text, stopped.stop_reason, stopped.stop_sequence) == (  # type: ignore[union-attr]
        "claude t1 t2 t3 ", "stop_sequence", "t4")
    cut = await client.messages.create(**ask("hi", max_tokens=2))
    assert (cut.content[0].text, cut.stop_reason) == ("claude t1", "max_tokens")  # type: ignore[union-attr]


async def test_a_cached_prefix_is_written_once_then_read(client: anthropic.AsyncAnthropic) -> None:
    system: Any = [{"type": "text", "text": "a long shared preamble", "cache_control": {"type": "ephemeral"}}]
    first = await client.messages.create(**ask("one two", system=system))
    second = await client.messages.create(**ask("three four", system=system))
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (4, 0)
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (0, 4)
    assert first.usage.input_tokens == second.usage.input_tokens == 3


async def test_overload_is_a_529_overloaded_error(sim: SimServer, client: anthropic.AsyncAnthropic) -> None:
    await sim.set_fault(Fault(status=529))
    with pytest.raises(anthropic.OverloadedError) as raised:
        await client.messages.create(**ask("hi"))
    assert raised.value.status_code == 529
    assert raised.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "simulated error 529"},
                                 "request_id": "req_sim"}


async def test_a_rate_limit_says_when_to_come_back(sim: SimServer, client: anthropic.AsyncAnthropic) -> None:
    await sim.set_fault(Fault(status=429, retry_after_s=7))
    with pytest.raises(anthropic.RateLimitError) as raised:
        await client.messages.create(**ask("hi"))
    assert raised.value.response.headers["retry-after"] == "7"


async def test_an_error_event_inside_a_200_stream_is_raised(sim: SimServer, client: anthropic.AsyncAnthropic) -> None:
    await sim.set_fault(Fault(error_event_after_chunks=3))
    text = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        async with client.messages.stream(**ask("hi")) as s:
            async for piece in s.text_stream:
                text.append(piece)
    assert "".join(text) == "claude t1 t2"
    assert "overloaded_error" in str(raised.value)


async def test_a_body_the_api_would_refuse_is_a_400(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        await client.messages.create(**ask("hi"), extra_body={"frequency_penalty": 1})
    assert "frequency_penalty: Extra inputs are not permitted" in str(raised.value)


async def test_a_wrong_key_is_a_401(sim: SimServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="wrong", max_retries=0) as c:
        with pytest.raises(anthropic.AuthenticationError):
            await c.messages.create(**ask("hi"))


async def test_the_stream_is_framed_with_event_and_data_lines(sim: SimServer) -> None:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as http, http.post(
            sim.base_url + "/v1/messages", json=ask("hi", stream=True), headers=headers) as resp:
        raw = (await resp.read()).decode()
        without_version = await http.post(sim.base_url + "/v1/messages", json=ask("hi"), headers={"x-api-key": KEY})
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = [e for e in raw.split("\n\n") if e]
    assert events[0].startswith("event: message_start\ndata: {")
    assert events[2] == 'event: ping\ndata: {"type": "ping"}'
    assert events[-1] == 'event: message_stop\ndata: {"type":"message_stop"}'
    assert all(e.split("\n")[0][len("event: "):] in e.split("\n")[1] for e in events)
    assert without_version.status == 400


async def test_the_openai_wire_reports_a_scripted_error_event_the_way_its_sdk_raises() -> None:
    import openai

    server = SimServer(SimConfig(name="gpt", wire="openai", reply_tokens=8))
    await server.start()
    try:
        await server.set_fault(Fault(error_event_after_chunks=2))
        text = []
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c:
            with pytest.raises(openai.APIError):
                stream = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                         stream=True)
                async for chunk in stream:
                    text.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
        assert "".join(text) == "gpt t1"
    finally:
        await server.stop()
