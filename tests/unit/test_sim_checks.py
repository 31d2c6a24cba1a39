"""What the simulated APIs accept and refuse: the shapes released clients send today pass, real errors don't."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.sim import anthropic_checks, chat_checks, responses_checks

USER = [{"role": "user", "content": "hi"}]
FN = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-x", "messages": USER, **extra}


CHAT_ACCEPTED = [
    ("today's fields", chat(prompt_cache_key="k", safety_identifier="s", reasoning_effort="xhigh", verbosity="low",
                            web_search_options={"search_context_size": "low"}, metadata={"a": "b"}, store=False,
                            modalities=["text"], prediction={"type": "content", "content": "x"},
                            audio={"voice": "alloy", "format": "mp3"}, service_tier="flex", parallel_tool_calls=True,
                            stream=True, stream_options={"include_usage": True}, logit_bias={"50256": -100},
                            max_completion_tokens=10, seed=1, n=1, stop=["a", "b"], temperature=2, top_p=1)),
    ("a developer message and every user part", chat(messages=[
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                                     {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                                     {"type": "file", "file": {"file_id": "file-1"}}]}])),
    ("a tool round trip", chat(tools=[FN], tool_choice={"type": "function", "function": {"name": "get_weather"}},
                               messages=USER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}])),
    ("json schema output", chat(response_format={"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object"}, "strict": True}})),
]
CHAT_REFUSED = [
    ("no messages", {"model": "m"}, "Missing required parameter: 'messages'"),
    ("an unknown field", chat(top_k=3), "Unrecognized request argument supplied: top_k"),
    ("a string temperature", chat(temperature="hot"), "'temperature'"),
    ("temperature above 2", chat(temperature=2.5), "'temperature'"),
    ("empty messages", chat(messages=[]), "empty array"),
    ("an Anthropic role", chat(messages=[{"role": "human", "content": "x"}]), "Invalid value: 'human'"),
    ("an Anthropic block", chat(messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]),
     "Invalid value: 'tool_result'"),
    ("a tool message answering no call", chat(messages=USER + [{"role": "tool", "tool_call_id": "c", "content": "x"}]),
     "must be a response to a preceeding message with 'tool_calls'"),
    ("a call left unanswered", chat(messages=USER + [
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}]}, *USER]),
     "did not have response messages: c1"),
    ("an Anthropic tool", chat(tools=[{"name": "w", "input_schema": {"type": "object"}}]), "Invalid value: 'None'"),
    ("stream_options without stream", chat(stream_options={"include_usage": True}), "only allowed when 'stream'"),
    ("a bad reasoning effort", chat(reasoning_effort="extreme"), "'reasoning_effort'"),
]


@pytest.mark.parametrize(("case", "body"), CHAT_ACCEPTED, ids=[c[0] for c in CHAT_ACCEPTED])
def test_chat_accepts(case: str, body: dict[str, Any]) -> None:
    assert chat_checks.problem(body) is None


@pytest.mark.parametrize(("case", "body", "reason"), CHAT_REFUSED, ids=[c[0] for c in CHAT_REFUSED])
def test_chat_refuses(case: str, body: dict[str, Any], reason: str) -> None:
    found = chat_checks.problem(body)
    assert found is not None and reason in found


def test_chat_on_the_wire_lets_unknown_names_pass_but_not_wrong_types() -> None:
    assert chat_checks.problem(chat(top_k=3), allow_unknown=True) is None
    assert chat_checks.problem(chat(temperature="hot"), allow_unknown=True) is not None


EXEC = {"type": "function", "name": "exec_command", "strict": False, "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"], "additionalProperties": False}}
CODEX_TOOLS = [EXEC, {"type": "namespace", "name": "multi_agent_v1", "description": "sub-agents", "tools": [
    {"type": "function", "name": "spawn_agent", "description": "d", "strict": False,
     "parameters": {"type": "object", "properties": {}}}]}, {"type": "web_search", "external_web_access": True}]


def codex(*later: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A Codex CLI 0.169 turn, as captured, with later input items appended."""
    return {"model": "gpt-x", "stream": True, "tools": CODEX_TOOLS, "tool_choice": "auto", "parallel_tool_calls": True,
            "reasoning": {"summary": "auto"}, "store": False, "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "01a2", "client_metadata": {"x-codex-turn-metadata": "{}"},
            "input": [{"type": "message", "id": "msg_1", "role": "developer",
                       "content": [{"type": "input_text", "text": "rules"}]},
                      {"type": "message", "id": "msg_2", "role": "user",
                       "content": [{"type": "input_text", "text": "run: ls"}]}, *later], **extra}


RESPONSES_ACCEPTED = [
    ("a Codex first turn", codex()),
    ("a Codex turn after a call", codex(
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": None, "encrypted_content": "enc"},
        {"type": "function_call", "status": "completed", "id": "fc_1", "name": "exec_command",
         "arguments": "{\"cmd\":\"ls\"}", "call_id": "call_1"},
        {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "a.txt"})),
    ("a namespaced call and an output as content parts", codex(
        {"type": "function_call", "name": "spawn_agent", "namespace": "multi_agent_v1", "arguments": "{}",
         "call_id": "c2"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "ok"}]})),
    ("item references and an earlier assistant message", codex(
        {"type": "item_reference", "id": "msg_0"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "hi", "annotations": []}]})),
    ("hosted tools", {"model": "m", "input": "x", "tools": [
        {"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "image_generation"}, {"type": "mcp", "server_label": "s", "server_url": "https://x"},
        {"type": "local_shell"}, {"type": "custom", "name": "apply", "description": "d"}]}),
    ("reasoning effort and text verbosity", {"model": "m", "input": "x", "reasoning": {"effort": "high", "summary": "auto"},
                                             "text": {"verbosity": "low", "format": {"type": "text"}}}),
]
RESPONSES_REFUSED = [
    ("no model", {"input": "x"}, "Missing required parameter: 'model'"),
    ("an unknown parameter", {"model": "m", "input": "x", "messages": []}, "Unknown parameter: 'messages'"),
    ("an unknown tool type", {"model": "m", "input": "x", "tools": [{"type": "telepathy"}]}, "Invalid value: 'telepathy'"),
    ("a chat-shaped tool", {"model": "m", "input": "x", "tools": [FN]}, "Unknown parameter: 'tools[0].function'"),
    ("an unknown input item", {"model": "m", "input": [{"type": "tool_result", "content": "x"}]},
     "Invalid value: 'tool_result'"),
    ("an unknown include", {"model": "m", "input": "x", "include": ["everything"]}, "'include[0]'"),
    ("a string max_output_tokens", {"model": "m", "input": "x", "max_output_tokens": "10"}, "'max_output_tokens'"),
    ("a chat content part", {"model": "m", "input": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
     "Invalid value: 'text'"),
    ("a tool role", {"model": "m", "input": [{"role": "tool", "content": "x"}]}, "Invalid value: 'tool'"),
    ("two tools of one name", {"model": "m", "input": "x", "tools": [EXEC, EXEC]}, "Duplicate tool name"),
]


@pytest.mark.parametrize(("case", "body"), RESPONSES_ACCEPTED, ids=[c[0] for c in RESPONSES_ACCEPTED])
def test_responses_accepts(case: str, body: dict[str, Any]) -> None:
    assert responses_checks.problem(body) is None


@pytest.mark.parametrize(("case", "body", "reason"), RESPONSES_REFUSED, ids=[c[0] for c in RESPONSES_REFUSED])
def test_responses_refuses(case: str, body: dict[str, Any], reason: str) -> None:
    found = responses_checks.problem(body)
    assert found is not None and reason in found


BASH = {"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {
    "command": {"type": "string"}}, "required": ["command"]}}


def claude_code(*later: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A Claude Code 2.1.328 request, as captured: a system message inside messages, adaptive thinking …"""
    return {"model": "agent", "max_tokens": 32000, "stream": True,
            "system": [{"type": "text", "text": "billing"},
                       {"type": "text", "text": "You are an agent", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "<reminder>"},
                                                      {"type": "text", "text": "run: ls"}]},
                         {"role": "system", "content": [{"type": "text", "text": "# Environment",
                                                         "cache_control": {"type": "ephemeral"}}]}, *later],
            "tools": [BASH, {"name": "DeferredToolPlaceholder", "defer_loading": True}],
            "metadata": {"user_id": "{\"device_id\":\"d\"}"}, "thinking": {"type": "adaptive", "display": "omitted"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "high"}, **extra}


MESSAGES_ACCEPTED = [
    ("a Claude Code first turn", claude_code()),
    ("a Claude Code tool round trip", claude_code(
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt",
                                      "is_error": False, "cache_control": {"type": "ephemeral"}}]})),
    ("Vercel AI SDK tools", {"model": "m", "max_tokens": 10, "messages": USER, "tools": [
        {**BASH, "eager_input_streaming": True, "strict": True, "input_examples": [{"command": "ls"}]}]}),
    ("server tools and today's fields", {"model": "m", "max_tokens": 0, "messages": USER, "tools": [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}, {"type": "web_fetch_20250910", "name": "web_fetch"},
        {"type": "code_execution_20250825", "name": "code_execution"}, {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}, {"type": "memory_20250818", "name": "memory"},
        {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True}, "container": "c_1", "service_tier": "auto",
        "top_k": 5, "inference_geo": "us", "speed": "fast", "mcp_servers": [{"type": "url", "name": "s", "url": "https://x"}],
        "thinking": {"type": "enabled", "budget_tokens": 2048}}),
    ("server tool results, documents and tool references", {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}},
                                     {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                                     {"type": "search_result", "source": "s", "title": "t", "content": []}]},
        {"role": "assistant", "content": [{"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
                                          {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []},
                                          {"type": "redacted_thinking", "data": "x"},
                                          {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": [
            {"type": "tool_reference", "tool_name": "Bash"}]}]}]}),
]
MESSAGES_REFUSED = [
    ("a negative max_tokens", {"model": "m", "max_tokens": -1, "messages": USER}, "max_tokens"),
    ("messages not a list", {"model": "m", "max_tokens": 1, "messages": "hi"}, "messages: at least one message"),
    ("an unknown thinking type", claude_code(thinking={"type": "sometimes"}), "thinking.type"),
    ("an unknown effort", claude_code(output_config={"effort": "extreme"}), "output_config.effort"),
    ("an unknown context edit", claude_code(context_management={"edits": [{"type": "forget_all"}]}),
     "context_management.edits.0.type"),
    ("an unknown tool field", {"model": "m", "max_tokens": 1, "messages": USER, "tools": [{**BASH, "color": "red"}]},
     "tools.0.custom.color: Extra inputs are not permitted"),
    ("a custom tool without a schema", {"model": "m", "max_tokens": 1, "messages": USER, "tools": [{"name": "x"}]},
     "input_schema"),
    ("an unknown server tool", {"model": "m", "max_tokens": 1, "messages": USER, "tools": [{"type": "teleport_20250101"}]},
     "tools.0.type"),
    ("two tools of one name", {"model": "m", "max_tokens": 1, "messages": USER, "tools": [BASH, BASH]},
     "Tool names must be unique"),
    ("a tool_use in a user message", {"model": "m", "max_tokens": 1, "messages": [
        {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}]}]}, "messages.0.content.0.type"),
    ("an image in a system message", claude_code(messages=[{"role": "system", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}, *USER]), "messages.0.content.0.type"),
    ("five cache marks", {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}} for i in range(5)]}]},
     "A maximum of 4 blocks with cache_control"),
    ("a tool result across a system message still needs its call", claude_code(
        {"role": "assistant", "content": "no call"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}),
     "unexpected `tool_use_id`"),
]


@pytest.mark.parametrize(("case", "body"), MESSAGES_ACCEPTED, ids=[c[0] for c in MESSAGES_ACCEPTED])
def test_messages_accepts(case: str, body: dict[str, Any]) -> None:
    assert anthropic_checks.problem(body) is None


@pytest.mark.parametrize(("case", "body", "reason"), MESSAGES_REFUSED, ids=[c[0] for c in MESSAGES_REFUSED])
def test_messages_refuses(case: str, body: dict[str, Any], reason: str) -> None:
    found = anthropic_checks.problem(body)
    assert found is not None and reason in found
