"""Agent mode over HTTP, as the official SDKs read it, on all three wires, whole and streamed: asked to
`run:` a command, the sim calls the shell tool the agent offers; given the tool's result, it says
what the tool said; asked anything else, it answers in text even though a dozen tools are offered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

from gateway.sim import SimConfig, SimServer

TOKEN = "tok-7c1e2f"
EXEC_SCHEMA = {"type": "object", "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
               "required": ["cmd"], "additionalProperties": False}
OTHER_SCHEMA = {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}
BASH_SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
               "required": ["command", "description"]}


@pytest.fixture
async def gpt() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(name="gpt", wire="openai", agent=True))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def claude() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(name="claude", wire="anthropic", agent=True))
    await server.start()
    yield server
    await server.stop()


# Responses, as Codex CLI asks: exec_command first among others, a namespace tool, a hosted tool.
CODEX_TOOLS: Any = [
    {"type": "function", "name": "write_stdin", "strict": False, "parameters": OTHER_SCHEMA},
    {"type": "function", "name": "exec_command", "strict": False, "parameters": EXEC_SCHEMA},
    {"type": "namespace", "name": "multi_agent_v1", "description": "sub-agents", "tools": [
        {"type": "function", "name": "spawn_agent", "strict": False, "parameters": OTHER_SCHEMA}]},
    {"type": "web_search", "external_web_access": True}]
CODEX: Any = {"tools": CODEX_TOOLS, "store": False, "include": ["reasoning.encrypted_content"],
              "reasoning": {"summary": "auto"}, "extra_body": {"client_metadata": {"x": "y"}}}


def codex_input(prompt: str) -> list[Any]:
    return [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_a_run_request_calls_exec_command_then_the_output_is_told(gpt: SimServer, stream: bool) -> None:
    async with openai.AsyncOpenAI(base_url=gpt.base_url, api_key="k", max_retries=0) as client:
        async def turn(items: list[Any]) -> Any:
            if not stream:
                return await client.responses.create(model="m", input=items, **CODEX)
            events = [e async for e in await client.responses.create(model="m", input=items, stream=True, **CODEX)]
            kinds = [e.type for e in events]
            if any(e.type == "response.output_item.added" and e.item.type == "function_call" for e in events):
                # A call streams as OpenAI streams one: added, argument deltas, arguments done, item done.
                at = kinds.index("response.function_call_arguments.delta")
                assert kinds[at - 1] == "response.output_item.added"
                assert kinds[at + 1:at + 3] == ["response.function_call_arguments.done", "response.output_item.done"]
            assert kinds[-1] == "response.completed"
            return events[-1].response

        first = await turn(codex_input("run: cat note.txt"))
        calls = [item for item in first.output if item.type == "function_call"]
        assert [(c.name, json.loads(c.arguments)) for c in calls] == [("exec_command", {"cmd": "cat note.txt"})]
        later = codex_input("run: cat note.txt") + [item.model_dump(exclude_none=True) for item in first.output] + [
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": f"Output:\n{TOKEN}\n"}]
        second = await turn(later)
        assert second.status == "completed" and second.output_text == f"gpt The tool said: Output: {TOKEN}"


async def test_responses_a_tool_in_a_namespace_is_called_with_its_namespace(gpt: SimServer) -> None:
    tools = [{"type": "namespace", "name": "box", "description": "d", "tools": [
        {"type": "function", "name": "exec_command", "strict": False, "parameters": EXEC_SCHEMA}]}]
    async with openai.AsyncOpenAI(base_url=gpt.base_url, api_key="k", max_retries=0) as client:
        answer = await client.responses.create(model="m", input=codex_input("run: ls"), tools=tools)  # type: ignore[list-item]
    raw = answer.output[0].model_dump()
    assert (raw["type"], raw["name"], raw.get("namespace")) == ("function_call", "exec_command", "box")


async def test_responses_anything_else_is_text_though_tools_are_offered(gpt: SimServer) -> None:
    async with openai.AsyncOpenAI(base_url=gpt.base_url, api_key="k", max_retries=0) as client:
        answer = await client.responses.create(model="m", input=codex_input("say hi"), **CODEX)
    assert [item.type for item in answer.output] == ["reasoning", "message"]
    assert answer.output_text.startswith("gpt ")


CHAT_TOOLS: Any = [{"type": "function", "function": {"name": "spawn", "parameters": OTHER_SCHEMA}},
                   {"type": "function", "function": {"name": "exec_command", "parameters": EXEC_SCHEMA}}]


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_a_run_request_calls_the_shell_tool_then_the_output_is_told(gpt: SimServer, stream: bool) -> None:
    async with openai.AsyncOpenAI(base_url=gpt.base_url, api_key="k", max_retries=0) as client:
        async def turn(messages: list[Any]) -> tuple[str, list[tuple[str, str, str]], str | None]:
            if not stream:
                answer = await client.chat.completions.create(model="m", messages=messages, tools=CHAT_TOOLS)
                message = answer.choices[0].message
                calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()
                         if c.type == "function"]
                return message.content or "", calls, answer.choices[0].finish_reason
            text, parts, finish = "", {}, None
            async for chunk in await client.chat.completions.create(model="m", messages=messages, tools=CHAT_TOOLS,
                                                                    stream=True):
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    for d in choice.delta.tool_calls or ():
                        got = parts.setdefault(d.index, ["", "", ""])
                        got[0] = d.id or got[0]
                        got[1] = (d.function.name if d.function and d.function.name else got[1])
                        got[2] += d.function.arguments if d.function and d.function.arguments else ""
                    finish = choice.finish_reason or finish
            return text, [(p[0], p[1], p[2]) for p in parts.values()], finish

        asked = [{"role": "system", "content": "rules"}, {"role": "user", "content": "run: cat note.txt"}]
        _, calls, finish = await turn(asked)
        assert [(name, json.loads(args)) for _, name, args in calls] == [("exec_command", {"cmd": "cat note.txt"})]
        assert finish == "tool_calls"
        call_id, name, args = calls[0]
        text, calls, finish = await turn(asked + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]},
            {"role": "tool", "tool_call_id": call_id, "content": TOKEN}])
        assert (text, calls, finish) == (f"gpt The tool said: {TOKEN}", [], "stop")


async def test_chat_anything_else_is_text_though_tools_are_offered(gpt: SimServer) -> None:
    async with openai.AsyncOpenAI(base_url=gpt.base_url, api_key="k", max_retries=0) as client:
        answer = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}],
                                                      tools=CHAT_TOOLS)
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].finish_reason == "stop"


# Messages, as Claude Code asks: a dozen tools, Bash among them, and a system message inside messages.
CLAUDE_TOOLS: Any = [{"name": "Agent", "input_schema": OTHER_SCHEMA}, {"name": "Bash", "input_schema": BASH_SCHEMA},
                     {"name": "DeferredToolPlaceholder", "defer_loading": True}]
CLAUDE: Any = {"max_tokens": 4096, "tools": CLAUDE_TOOLS, "extra_body": {
    "thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}},
    "extra_headers": {"anthropic-beta": "claude-code-20250219,context-management-2025-06-27"},
    "extra_query": {"beta": "true"}}


def claude_messages(prompt: str) -> list[Any]:
    return [{"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"},
                                         {"type": "text", "text": prompt}]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}]}]


@pytest.mark.parametrize("stream", [False, True])
async def test_messages_a_run_request_calls_bash_then_the_output_is_told(claude: SimServer, stream: bool) -> None:
    async with anthropic.AsyncAnthropic(base_url=claude.base_url, api_key="k", max_retries=0) as client:
        async def turn(messages: list[Any]) -> Any:
            if not stream:
                return await client.messages.create(model="m", messages=messages, **CLAUDE)
            async with client.messages.stream(model="m", messages=messages, **CLAUDE) as events:
                kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) async for e in events]
                answer = await events.get_final_message()
            if answer.stop_reason == "tool_use":
                assert ("content_block_delta", "input_json_delta") in kinds
            return answer

        first = await turn(claude_messages("run: cat note.txt"))
        uses = [b for b in first.content if b.type == "tool_use"]
        assert first.stop_reason == "tool_use" and [(u.name, u.input["command"]) for u in uses] == [("Bash", "cat note.txt")]
        assert isinstance(uses[0].input["description"], str)
        second = await turn(claude_messages("run: cat note.txt") + [
            {"role": "assistant", "content": [u.model_dump() for u in uses]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id,
                                          "content": [{"type": "text", "text": TOKEN}]}]}])
        assert second.stop_reason == "end_turn"
        assert [b.text for b in second.content if b.type == "text"] == [f"claude The tool said: {TOKEN}"]


async def test_messages_anything_else_is_text_though_tools_are_offered(claude: SimServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=claude.base_url, api_key="k", max_retries=0) as client:
        answer = await client.messages.create(model="m", messages=claude_messages("hello"), **CLAUDE)
    assert answer.stop_reason == "end_turn" and [b.type for b in answer.content] == ["text"]
