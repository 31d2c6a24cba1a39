"""The simulators' dumb mode on the wire, as the official SDKs read it: right answers while healthy,
fluent wrong ones (and broken tool calls) once switched dumb at run time, right again when switched back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from gateway.sim import SimConfig, SimServer

SUM = "What is 17 + 25? Reply with the number only."
WEATHER: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
async def gpt() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(name="gpt", wire="openai", first_token_delay_s=0.05))
    await server.start()
    yield server
    await server.stop()


async def switch(server: SimServer, dumb: bool) -> None:
    """Through the simulator's own control endpoint, as a drill or an operator would."""
    root = server.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as s, s.post(root + "/_sim/fault", json={"dumb": dumb}) as resp:
        assert resp.status == 200


async def test_chat_answers_right_then_fluently_wrong_then_right_again(gpt: SimServer) -> None:
    async with openai.AsyncOpenAI(base_url=gpt.base_url, api_key="k", max_retries=0) as c:
        async def ask() -> str:
            answer = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": SUM}])
            return answer.choices[0].message.content or ""

        assert await ask() == "42"
        await switch(gpt, True)
        assert await ask() == "The answer is 43."
        await switch(gpt, False)
        assert await ask() == "42"


async def test_a_dumb_tool_call_has_arguments_that_do_not_parse(gpt: SimServer) -> None:
    await switch(gpt, True)
    async with openai.AsyncOpenAI(base_url=gpt.base_url, api_key="k", max_retries=0) as c:
        answer = await c.chat.completions.create(model="m", tools=[WEATHER],
                                                 messages=[{"role": "user", "content": "Weather in Oslo?"}])
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.function.arguments)  # type: ignore[union-attr]


async def test_dumb_is_fast_and_the_responses_api_is_dumb_too(gpt: SimServer) -> None:
    await switch(gpt, True)
    async with openai.AsyncOpenAI(base_url=gpt.base_url, api_key="k", max_retries=0) as c:
        answer = await c.responses.create(model="m", input=SUM)
    assert answer.output_text == "The answer is 43."
    assert gpt.state.first_delay() == 0.0   # its configured 50 ms first-token delay is skipped


async def test_the_anthropic_wire_gives_wrong_text_and_a_tool_call_without_its_arguments() -> None:
    server = SimServer(SimConfig(name="claude", wire="anthropic", dumb=True))
    await server.start()
    try:
        async with anthropic.AsyncAnthropic(base_url=server.base_url, api_key="k", max_retries=0) as c:
            text = await c.messages.create(model="c", max_tokens=50, messages=[{"role": "user", "content": SUM}])
            tool = await c.messages.create(
                model="c", max_tokens=50, messages=[{"role": "user", "content": "Weather in Oslo?"}],
                tools=[{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}])
    finally:
        await server.stop()
    assert text.content[0].text == "The answer is 43."  # type: ignore[union-attr]
    uses = [b for b in tool.content if b.type == "tool_use"]
    assert uses and uses[0].input == {}


async def test_a_sim_started_dumb_is_mended_by_a_fault_and_dumb_again_with_an_empty_one() -> None:
    server = SimServer(SimConfig(name="gpt", dumb=True))
    await server.start()
    try:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as c:
            async def ask() -> str:
                answer = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": SUM}])
                return answer.choices[0].message.content or ""
            started = await ask()
            await switch(server, False)
            mended = await ask()
            await server.set_fault(None)   # as `POST /_sim/fault {}` does
            again = await ask()
    finally:
        await server.stop()
    assert (started, mended, again) == ("The answer is 43.", "42", "The answer is 43.")
