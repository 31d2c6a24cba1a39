"""Responses ⇄ chat: each row a documented shape, translated one way and checked field by field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.wires import responses_chat as rc
from gateway.wires import responses_events as revents
from gateway.wires import responses_tools as rt
from gateway.wires.events import json_events, split_events
from gateway.wires.refused import Refused

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather now",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}

REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("string input with instructions",
     {"model": "m", "input": "hi", "instructions": "be brief"},
     {"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}),
    ("message items, developer as system, parts as text",
     {"model": "m", "input": [{"role": "developer", "content": "rules"},
                              {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
                              {"role": "assistant", "content": [{"type": "output_text", "text": "b"}]}]},
     {"model": "m", "messages": [{"role": "system", "content": "rules"},
                                 {"role": "user", "content": [{"type": "text", "text": "a"}]},
                                 {"role": "assistant", "content": "b"}]}),
    ("function call and its output, reasoning dropped",
     {"model": "m", "input": [{"role": "user", "content": "weather?"},
                              {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
                              {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
                              {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{}"},
                              {"type": "function_call_output", "call_id": "c1", "output": "sunny"}]},
     {"model": "m", "messages": [
         {"role": "user", "content": "weather?"},
         {"role": "assistant", "content": None, "tool_calls": [
             {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
             {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
         {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}),
    ("function tools, tool choice, sampling, max_output_tokens, json schema",
     {"model": "m", "input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"},
      "temperature": 0.2, "top_p": 0.9, "max_output_tokens": 64, "parallel_tool_calls": False,
      "metadata": {"k": "v"}, "store": True,
      "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}}},
     {"model": "m", "messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                                  "parameters": WEATHER["parameters"], "strict": True}}],
      "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "temperature": 0.2, "top_p": 0.9,
      "max_tokens": 64, "parallel_tool_calls": False,
      "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"},
                                                                 "strict": True}}}),
    ("a stream asks for usage",
     {"model": "m", "input": "x", "stream": True},
     {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True,
      "stream_options": {"include_usage": True}}),
]


@pytest.mark.parametrize(("name", "responses", "chat"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_a_responses_request_becomes_the_chat_request(name: str, responses: dict[str, Any], chat: dict[str, Any]) -> None:
    assert rc.request_out(responses) == chat


def test_history_comes_before_the_new_input() -> None:
    history = [{"type": "message", "role": "user", "content": "one"},
               {"type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "two", "annotations": []}]}]
    chat = rc.request_out({"model": "m", "input": "three", "instructions": "sys"}, history)
    assert chat["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "one"},
                                {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"}]


REFUSED = [
    ("background", {"background": True}, "background"),
    ("prompt templates", {"prompt": {"id": "pmpt_1"}}, "prompt"),
    ("item references", {"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ("file parts", {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0]"),
]


@pytest.mark.parametrize(("name", "fields", "param"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_chat_cannot_express_is_refused_naming_the_field(name: str, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(Refused) as caught:
        rc.request_out({"model": "m", "input": "x", **fields})
    assert caught.value.param == param


DROPPED = [
    ("a hosted web search", {"tools": [{"type": "web_search", "external_web_access": False}]}, ["web_search"]),
    ("other hosted tools, and choosing one", {"tools": [{"type": "file_search", "vector_store_ids": ["v"]}],
                                              "tool_choice": {"type": "file_search"}}, ["hosted_tools"]),
    ("encrypted reasoning asked back", {"include": ["reasoning.encrypted_content"], "reasoning": {"summary": "auto"}},
     ["reasoning"]),
    ("reasoning items of earlier turns", {"input": [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}]}, ["reasoning"]),
    ("the client's bookkeeping", {"client_metadata": {"session_id": "s"}, "store": False,
                                  "prompt_cache_key": "s", "metadata": {"k": "v"}}, []),
]


@pytest.mark.parametrize(("name", "fields", "names"), DROPPED, ids=[r[0] for r in DROPPED])
def test_what_chat_has_no_counterpart_for_is_dropped_and_named(name: str, fields: dict[str, Any],
                                                                names: list[str]) -> None:
    dropped: list[str] = []
    chat = rc.request_out({"model": "m", "input": "x", **fields}, (), dropped)
    assert dropped == names
    assert "tools" not in chat and "client_metadata" not in chat and "include" not in chat


NAMESPACED = {"type": "namespace", "name": "multi_agent_v1", "description": "agents", "tools": [
    {"type": "function", "name": "spawn_agent", "parameters": {"type": "object", "properties": {"task": {"type": "string"}}}},
    {"type": "custom", "name": "apply_patch", "description": "a patch"}]}


def test_namespace_tools_are_flattened_and_their_calls_named_back() -> None:
    body = {"model": "m", "input": "x", "tools": [NAMESPACED], "prompt_cache_key": "s",
            "reasoning": {"effort": "high"}}
    chat = rc.request_out(body)
    assert [t["function"]["name"] for t in chat["tools"]] == ["multi_agent_v1__spawn_agent", "multi_agent_v1__apply_patch"]
    assert chat["tools"][1]["function"]["parameters"]["required"] == ["input"]
    assert chat["prompt_cache_key"] == "s" and chat["reasoning_effort"] == "high"
    answer = chat_answer({"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "multi_agent_v1__spawn_agent", "arguments": '{"task":"t"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "multi_agent_v1__apply_patch",
                                                          "arguments": '{"input":"*** Begin Patch"}'}}]}, "tool_calls")
    output = rc.answer_in(answer, body, "resp_1", 0, rt.tool_names(body))["output"]
    assert (output[0]["type"], output[0]["name"], output[0]["namespace"]) == ("function_call", "spawn_agent", "multi_agent_v1")
    assert (output[1]["type"], output[1]["name"], output[1]["input"]) == ("custom_tool_call", "apply_patch", "*** Begin Patch")


def test_namespaced_calls_in_the_history_go_out_under_their_flattened_names() -> None:
    chat = rc.request_out({"model": "m", "tools": [NAMESPACED], "input": [
        {"type": "message", "role": "user", "content": "x"},
        {"type": "function_call", "call_id": "c1", "namespace": "multi_agent_v1", "name": "spawn_agent", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}]})
    assert chat["messages"][1]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__spawn_agent"
    assert chat["messages"][2] == {"role": "tool", "tool_call_id": "c1", "content": "ok"}


def test_a_namespaced_call_streams_under_the_clients_names() -> None:
    body = {"model": "m", "input": "x", "tools": [NAMESPACED], "stream": True}
    state = revents.StreamState(body, "resp_1", 0, names=rt.tool_names(body))
    events = revents.events_in(state, {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "function": {"name": "multi_agent_v1__spawn_agent", "arguments": "{}"}}]}}]})
    events += revents.events_in(state, {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    events += revents.finish(state)
    done = [orjson.loads(e.split(b"data: ", 1)[1]) for e in events if b"response.output_item.done" in e]
    assert done[0]["item"]["name"] == "spawn_agent" and done[0]["item"]["namespace"] == "multi_agent_v1"


def test_an_item_reference_is_resolved_from_the_items_the_gateway_kept() -> None:
    kept = {"msg_9": {"id": "msg_9", "type": "message", "role": "assistant",
                      "content": [{"type": "output_text", "text": "earlier answer"}]}}
    chat = rc.request_out({"model": "m", "input": [{"type": "item_reference", "id": "msg_9"},
                                                   {"role": "user", "content": "and now?"}]}, (), None, kept)
    assert chat["messages"] == [{"role": "assistant", "content": "earlier answer"},
                                {"role": "user", "content": "and now?"}]


def chat_answer(message: dict[str, Any], finish: str, usage: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "up-model", "choices": [
        {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
                           "prompt_tokens_details": {"cached_tokens": 2}}})


def test_a_chat_answer_becomes_a_completed_response_with_usage_and_echoed_settings() -> None:
    body = {"model": "route", "input": "x", "metadata": {"k": "v"}, "instructions": "sys", "max_output_tokens": 9}
    response = rc.answer_in(chat_answer({"content": "hello"}, "stop"), body, "resp_abc", 123)
    assert response["id"] == "resp_abc" and response["object"] == "response" and response["created_at"] == 123
    assert response["status"] == "completed" and response["incomplete_details"] is None
    assert response["output"] == [{"id": "msg_abc", "type": "message", "status": "completed", "role": "assistant",
                                   "content": [{"type": "output_text", "text": "hello", "annotations": [],
                                                "logprobs": []}]}]
    assert response["usage"] == {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 2},
                                 "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0},
                                 "total_tokens": 10}
    assert (response["metadata"], response["instructions"], response["max_output_tokens"]) == ({"k": "v"}, "sys", 9)


def test_tool_calls_become_function_call_items() -> None:
    answer = chat_answer({"content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        "tool_calls")
    response = rc.answer_in(answer, {"model": "r", "input": "x"}, "resp_abc", 1)
    assert response["output"] == [{"id": "fc_abc_0", "type": "function_call", "status": "completed",
                                   "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}]


def test_a_length_stop_is_an_incomplete_response() -> None:
    response = rc.answer_in(chat_answer({"content": "cut"}, "length"), {"model": "r", "input": "x"}, "resp_a", 1)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "model": "up-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def translate(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    state = revents.StreamState({"model": "r", "input": "x"}, "resp_s", 5)
    raw = b"".join(b"".join(revents.events_in(state, c)) for c in chunks) + b"".join(revents.finish(state))
    events, rest = split_events(raw)
    assert rest == b""
    for event in events:  # every event is named after its type
        assert event.startswith(b"event: " + orjson.loads(event.split(b"data: ", 1)[1])["type"].encode())
    return list(json_events(events))


def test_a_text_stream_is_the_documented_event_sequence_with_sequence_numbers() -> None:
    events = translate([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
                        chunk({"content": "lo"}), chunk({}, "stop"),
                        {"id": "c", "model": "up-model", "choices": [],
                         "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}])
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Hello"
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["text"] == "Hello"
    assert done["usage"]["input_tokens"] == 4 and done["usage"]["output_tokens"] == 2


def test_a_tool_call_stream_carries_argument_deltas_and_the_whole_item() -> None:
    events = translate([
        chunk({"role": "assistant"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls")])
    kinds = [e["type"] for e in events]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.function_call_arguments.delta", "response.function_call_arguments.delta",
                     "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert events[2]["item"]["call_id"] == "call_9" and events[2]["item"]["name"] == "get_weather"
    assert events[5]["arguments"] == '{"city":"Paris"}'
    item = events[-1]["response"]["output"][0]
    assert (item["type"], item["arguments"], item["status"]) == ("function_call", '{"city":"Paris"}', "completed")


def test_text_then_a_tool_call_closes_the_message_before_the_call_opens() -> None:
    events = translate([chunk({"content": "Let me look."}),
                        chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}),
                        chunk({}, "tool_calls")])
    kinds = [e["type"] for e in events]
    assert kinds.index("response.output_item.done") < kinds.index("response.function_call_arguments.delta")
    assert [o["type"] for o in events[-1]["response"]["output"]] == ["message", "function_call"]
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1]
