"""Anthropic Messages ⇄ chat: each row a documented shape, translated one way and checked field by field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.wires import messages_chat as mc
from gateway.wires.events import json_events, split_events
from gateway.wires.refused import Refused

TOOL = {"name": "get_weather", "description": "Weather now",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}

REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("system string, user string",
     {"model": "m", "max_tokens": 10, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]},
     {"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "be brief"},
                                                   {"role": "user", "content": "hi"}]}),
    ("system blocks with cache_control, sampling, stop sequences, user id",
     {"model": "m", "max_tokens": 10, "temperature": 0.1, "top_p": 0.5, "top_k": 5, "stop_sequences": ["END"],
      "metadata": {"user_id": "u1"},
      "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "b"}],
      "messages": [{"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}]}]},
     {"model": "m", "max_tokens": 10, "temperature": 0.1, "top_p": 0.5, "stop": ["END"], "user": "u1",
      "messages": [{"role": "system", "content": "a\nb"}, {"role": "user", "content": "q"}]}),
    ("tool use, thinking dropped, tool result first in the next turn",
     {"model": "m", "max_tokens": 10, "tools": [TOOL], "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
      "messages": [
          {"role": "user", "content": "weather?"},
          {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                                            {"type": "text", "text": "Looking."},
                                            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                             "input": {"city": "Paris"}}]},
          {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                                       {"type": "text", "text": "and tomorrow?"}]}]},
     {"model": "m", "max_tokens": 10, "parallel_tool_calls": False, "tool_choice": "required",
      "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                                  "parameters": TOOL["input_schema"]}}],
      "messages": [
          {"role": "user", "content": "weather?"},
          {"role": "assistant", "content": "Looking.", "tool_calls": [
              {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
          {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
          {"role": "user", "content": "and tomorrow?"}]}),
    ("an image and an error result",
     {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
         {"type": "tool_result", "tool_use_id": "t", "is_error": True, "content": [{"type": "text", "text": "boom"}]},
         {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
         {"type": "text", "text": "what is it?"}]}]},
     {"model": "m", "max_tokens": 10, "messages": [
         {"role": "tool", "tool_call_id": "t", "content": "Error: boom"},
         {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                                      {"type": "text", "text": "what is it?"}]}]}),
    ("a named tool choice, and a stream asking for usage",
     {"model": "m", "max_tokens": 10, "stream": True, "tools": [TOOL], "tool_choice": {"type": "tool", "name": "get_weather"},
      "messages": [{"role": "user", "content": "x"}]},
     {"model": "m", "max_tokens": 10, "stream": True, "stream_options": {"include_usage": True},
      "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                                  "parameters": TOOL["input_schema"]}}],
      "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
      "messages": [{"role": "user", "content": "x"}]}),
]


@pytest.mark.parametrize(("name", "messages", "chat"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_a_messages_request_becomes_the_chat_request(name: str, messages: dict[str, Any], chat: dict[str, Any]) -> None:
    assert mc.request_out(messages) == chat


REFUSED = [
    ("documents other than text", {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}]},
     "messages[0].content[0]"),
    ("a role chat has no counterpart for", {"messages": [{"role": "narrator", "content": "x"}]}, "messages[0].role"),
]


DROPPED = [
    ("server tools", {"tools": [{"type": "web_search_20250305", "name": "web_search"},
                                {"type": "code_execution_20250825", "name": "code_execution"}]},
     ["web_search", "hosted_tools"]),
    ("adaptive thinking and effort", {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}},
     ["thinking", "effort"]),
    ("context management and top_k", {"context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
                                      "top_k": 5}, ["context_management", "top_k"]),
    ("thinking blocks of an earlier turn", {"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                          {"type": "text", "text": "y"}]},
        {"role": "user", "content": "z"}]}, ["thinking"]),
    ("disabled thinking and cache marks", {"thinking": {"type": "disabled"}, "system": [
        {"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}]}, []),
]


@pytest.mark.parametrize(("name", "fields", "names"), DROPPED, ids=[r[0] for r in DROPPED])
def test_what_chat_has_no_counterpart_for_is_dropped_and_named(name: str, fields: dict[str, Any],
                                                                names: list[str]) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], **fields}
    dropped: list[str] = []
    chat = mc.request_out(body, dropped)
    assert dropped == names
    assert "tools" not in chat and "thinking" not in chat and "top_k" not in chat


def test_system_turns_inside_the_conversation_stay_where_they_stand() -> None:
    body = {"model": "m", "max_tokens": 5, "system": "top", "messages": [
        {"role": "user", "content": "first"},
        {"role": "system", "content": [{"type": "text", "text": "# Environment", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "second"}]}
    assert [(m["role"], m["content"]) for m in mc.request_out(body)["messages"]] == [
        ("system", "top"), ("user", "first"), ("system", "# Environment"), ("user", "second")]


def test_a_tool_results_images_follow_it_as_the_users() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "a.png"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "an image"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]}]}]}
    messages = mc.request_out(body)["messages"]
    assert messages[2] == {"role": "tool", "tool_call_id": "t1", "content": "an image"}
    assert messages[3] == {"role": "user", "content": [{"type": "image_url",
                                                        "image_url": {"url": "data:image/png;base64,iVBO"}}]}


@pytest.mark.parametrize(("name", "fields", "param"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_chat_cannot_express_is_refused_naming_the_field(name: str, fields: dict[str, Any], param: str) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], **fields}
    with pytest.raises(Refused) as caught:
        mc.request_out(body)
    assert caught.value.param == param


def chat_answer(message: dict[str, Any], finish: str) -> bytes:
    return orjson.dumps({"id": "chatcmpl-1", "model": "up-model", "choices": [
        {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 3}}})


ANSWERS = [
    ("text", {"content": "hello"}, "stop", [{"type": "text", "text": "hello"}], "end_turn"),
    ("max tokens", {"content": "hel"}, "length", [{"type": "text", "text": "hel"}], "max_tokens"),
    ("tool use", {"content": None, "tool_calls": [{"id": "call_8xQ2mZtB7w", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}]}, "tool_calls",
     [{"type": "tool_use", "id": "call_8xQ2mZtB7w", "name": "get_weather", "input": {"city": "Paris"}}], "tool_use"),
]


@pytest.mark.parametrize(("name", "message", "finish", "content", "stop"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_a_chat_answer_becomes_a_message(name: str, message: dict[str, Any], finish: str,
                                         content: list[dict[str, Any]], stop: str) -> None:
    answer = mc.answer_in(chat_answer(message, finish), "msg_1")
    assert answer["type"] == "message" and answer["role"] == "assistant" and answer["id"] == "msg_1"
    assert answer["content"] == content and answer["stop_reason"] == stop
    # Anthropic counts cache reads apart from input tokens.
    assert answer["usage"] == {"input_tokens": 6, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0,
                               "output_tokens": 4}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "model": "up-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def translate(chunks: list[dict[str, Any]]) -> list[tuple[bytes, dict[str, Any]]]:
    state = mc.StreamState("msg_s")
    raw = b"".join(b"".join(mc.events_in(state, c)) for c in chunks) + b"".join(mc.finish(state))
    events, rest = split_events(raw)
    assert rest == b""
    return [(e.split(b"\n", 1)[0].removeprefix(b"event: "), data) for e, data in zip(events, json_events(events))]


def test_a_text_stream_is_anthropics_event_sequence_with_usage_at_the_end() -> None:
    events = translate([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}),
                        chunk({"content": " there"}), chunk({}, "stop"),
                        {"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}])
    assert [name for name, _ in events] == [b"message_start", b"content_block_start", b"content_block_delta",
                                            b"content_block_delta", b"content_block_stop", b"message_delta",
                                            b"message_stop"]
    assert all(name.decode() == data["type"] for name, data in events)
    assert events[0][1]["message"]["id"] == "msg_s"
    assert "".join(d["delta"]["text"] for n, d in events if n == b"content_block_delta") == "Hi there"
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] == 2 and events[-2][1]["usage"]["input_tokens"] == 5


def test_a_tool_stream_opens_a_tool_use_block_and_streams_its_json() -> None:
    events = translate([chunk({"content": "Checking."}),
                        chunk({"tool_calls": [{"index": 0, "id": "call_7fK2pQ9xLm", "function": {"name": "get_weather",
                                                                                       "arguments": ""}}]}),
                        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]}),
                        chunk({}, "tool_calls")])
    starts = [d for n, d in events if n == b"content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use"]
    assert starts[1]["index"] == 1 and starts[1]["content_block"]["id"] == "call_7fK2pQ9xLm"
    partial = [d["delta"]["partial_json"] for n, d in events
               if n == b"content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert partial == ['{"city":"Paris"}']
    assert [d["index"] for n, d in events if n == b"content_block_stop"] == [0, 1]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_an_openai_error_body_is_given_anthropics_shape() -> None:
    raw = orjson.dumps({"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}})
    assert orjson.loads(mc.error_in(429, raw)) == {"type": "error", "error": {"type": "rate_limit_error",
                                                                              "message": "slow down"}}
    assert orjson.loads(mc.error_in(503, b"not json"))["error"]["type"] == "overloaded_error"


def test_a_short_or_missing_tool_call_id_becomes_one_of_the_gateways_unique_to_the_message() -> None:
    for given in ("call_0", None):
        answer = chat_answer({"content": None, "tool_calls": [{"id": given, "type": "function", "function": {
            "name": "get_weather", "arguments": "{}"}}]}, "tool_calls")
        block = mc.answer_in(answer, "msg_0123456789abcdef")["content"][0]
        assert block["id"] == "toolu_0123456789abcdef_0"
