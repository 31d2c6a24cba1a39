"""OpenAI chat requests → Anthropic Messages requests, one documented shape per row."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.wires.anthropic_chat import ANSWER_TOOL, DEFAULT_MAX_TOKENS, request_out, wants_json_answer
from gateway.wires.refused import Refused

USER = {"role": "user", "content": "hi"}
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
CLAUDE_WEATHER = {"name": "weather", "description": "Weather in a city",
                  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
PNG = "iVBORw0KGgo="

# (what, OpenAI body without model, the Messages body's fields that matter)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("one user message, the default max_tokens",
     {"messages": [USER]},
     {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_tokens": DEFAULT_MAX_TOKENS}),
    ("a system prompt goes to the top-level system",
     {"messages": [{"role": "system", "content": "be brief"}, USER]},
     {"system": "be brief", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
    ("system and developer messages join the system blocks in order",
     {"messages": [{"role": "system", "content": "a"}, USER, {"role": "developer", "content": [{"type": "text", "text": "b"}]}]},
     {"system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
    ("multi-turn keeps the turns",
     {"messages": [USER, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"}]},
     {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                   {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
                   {"role": "user", "content": [{"type": "text", "text": "again"}]}]}),
    ("a base64 image becomes a base64 image block",
     {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is it"},
                                                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]},
     {"messages": [{"role": "user", "content": [
         {"type": "text", "text": "what is it"},
         {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}]}),
    ("an image URL becomes a url image block",
     {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]}]},
     {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}}]}]}),
    ("tools become input_schema tools; tool_choice auto",
     {"messages": [USER], "tools": [WEATHER], "tool_choice": "auto"},
     {"tools": [CLAUDE_WEATHER], "tool_choice": {"type": "auto"}}),
    ("tool_choice required is any",
     {"messages": [USER], "tools": [WEATHER], "tool_choice": "required"},
     {"tool_choice": {"type": "any"}}),
    ("tool_choice none is none",
     {"messages": [USER], "tools": [WEATHER], "tool_choice": "none"},
     {"tool_choice": {"type": "none"}}),
    ("a named tool_choice is a tool choice",
     {"messages": [USER], "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "weather"}}},
     {"tool_choice": {"type": "tool", "name": "weather"}}),
    ("parallel_tool_calls false disables parallel tool use",
     {"messages": [USER], "tools": [WEATHER], "parallel_tool_calls": False},
     {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}),
    ("parallel tool calls and their results: tool_use blocks, then one user turn of tool_result blocks",
     {"messages": [USER,
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
                       {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": "cold"},
                   {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "warm"}]}],
      "tools": [WEATHER]},
     {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                   {"role": "assistant", "content": [
                       {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}},
                       {"type": "tool_use", "id": "c2", "name": "weather", "input": {"city": "Rome"}}]},
                   {"role": "user", "content": [
                       {"type": "tool_result", "tool_use_id": "c1", "content": "cold"},
                       {"type": "tool_result", "tool_use_id": "c2", "content": [{"type": "text", "text": "warm"}]}]}]}),
    ("stop as a string is one stop sequence",
     {"messages": [USER], "stop": "END"}, {"stop_sequences": ["END"]}),
    ("stop as a list is the stop sequences",
     {"messages": [USER], "stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}),
    ("temperature and top_p pass as they are",
     {"messages": [USER], "temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
    ("max_completion_tokens wins over max_tokens",
     {"messages": [USER], "max_completion_tokens": 77, "max_tokens": 5}, {"max_tokens": 77}),
    ("max_tokens is taken when it is the only one",
     {"messages": [USER], "max_tokens": 5}, {"max_tokens": 5}),
    ("user becomes metadata.user_id",
     {"messages": [USER], "user": "u-42"}, {"metadata": {"user_id": "u-42"}}),
    ("json_schema response_format is one forced answer tool",
     {"messages": [USER], "response_format": {"type": "json_schema", "json_schema": {
         "name": "w", "schema": {"type": "object", "properties": {"t": {"type": "number"}}}}}},
     {"tools": [{"name": ANSWER_TOOL, "description": "Give the answer as this tool's input.",
                 "input_schema": {"type": "object", "properties": {"t": {"type": "number"}}}}],
      "tool_choice": {"type": "tool", "name": ANSWER_TOOL}}),
    ("response_format text changes nothing",
     {"messages": [USER], "response_format": {"type": "text"}}, {"tools": None, "tool_choice": None}),
    ("OpenAI defaults that change nothing are accepted",
     {"messages": [USER], "n": 1, "presence_penalty": 0, "logprobs": False, "store": False,
      "stream_options": {"include_usage": True}},
     {"max_tokens": DEFAULT_MAX_TOKENS}),
]


@pytest.mark.parametrize("body,expected", [(b, e) for _, b, e in CASES], ids=[c[0] for c in CASES])
def test_request_translation(body: dict[str, Any], expected: dict[str, Any]) -> None:
    out = orjson.loads(request_out({"model": "chat", **body}, "claude-x", stream=False))
    assert out["model"] == "claude-x"
    for key, value in expected.items():
        assert out.get(key) == value, key


def test_a_stream_request_asks_for_a_stream() -> None:
    out = orjson.loads(request_out({"model": "chat", "messages": [USER]}, "claude-x", stream=True))
    assert out["stream"] is True
    assert "stream_options" not in out


def test_max_tokens_falls_back_to_the_models_facts() -> None:
    out = orjson.loads(request_out({"model": "chat", "messages": [USER]}, "claude-x", False, facts_max_tokens=1234))
    assert out["max_tokens"] == 1234


def test_a_trailing_assistant_message_is_a_prefill() -> None:
    out = orjson.loads(request_out({"model": "chat", "messages": [USER, {"role": "assistant", "content": "Once"}]},
                                   "claude-x", False))
    assert out["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "Once"}]}


REFUSED = [
    ("n above one", {"n": 2}, "n"),
    ("a seed", {"seed": 7}, "seed"),
    ("logprobs", {"logprobs": True}, "logprobs"),
    ("an audio part", {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0].type"),
    ("a message name", {"messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "messages[0].name"),
    ("a non-image data URL", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}]}]}, "messages[0].content[0].image_url.url"),
    ("tool arguments that are not JSON", {"messages": [USER, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{nope"}}]}]},
     "messages[1].tool_calls[0].function.arguments"),
    ("response_format with tools", {"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
    ("max_tokens that is not a positive integer", {"max_tokens": 0}, "max_tokens"),
    ("the legacy function role", {"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
]


@pytest.mark.parametrize("extra,param", [(e, p) for _, e, p in REFUSED], ids=[r[0] for r in REFUSED])
def test_what_cannot_be_translated_is_refused_by_name(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(Refused) as caught:
        request_out({"model": "chat", "messages": [USER], **extra}, "claude-x", False)
    assert caught.value.param == param
    assert param in str(caught.value)


DROPPED = [
    ("a field newer than the table", {"frobnicate": 1}, ["other_fields"]),
    ("a prompt-cache key", {"prompt_cache_key": "session-1"}, ["prompt_cache_key"]),
    ("a reasoning effort", {"reasoning_effort": "high"}, ["effort"]),
    ("web search options", {"web_search_options": {}}, ["web_search"]),
    ("verbosity and a service tier", {"verbosity": "low", "service_tier": "flex"}, ["verbosity", "service_tier"]),
    ("the origin's own bookkeeping", {"metadata": {"a": "b"}, "store": True, "safety_identifier": "u1"}, []),
]


@pytest.mark.parametrize("extra,names", [(e, n) for _, e, n in DROPPED], ids=[r[0] for r in DROPPED])
def test_what_has_no_counterpart_is_dropped_and_named(extra: dict[str, Any], names: list[str]) -> None:
    dropped: list[str] = []
    out = orjson.loads(request_out({"model": "chat", "messages": [USER], **extra}, "claude-x", False, None, dropped))
    assert dropped == names
    assert not set(extra) & set(out)


def test_json_answers_are_recognised_from_the_response_format() -> None:
    assert wants_json_answer({"response_format": {"type": "json_object"}})
    assert not wants_json_answer({"response_format": {"type": "text"}})
    assert not wants_json_answer({})
