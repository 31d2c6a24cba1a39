"""Anthropic Messages answers, stream events and errors → OpenAI chat completion shapes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.wires.anthropic_answer import DONE, StreamState, answer_in, error_in, events_in, usage_in
from gateway.wires.anthropic_chat import ANSWER_TOOL

USAGE = {"input_tokens": 10, "output_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def message(content: list[dict[str, Any]], stop_reason: str, usage: dict[str, Any] = USAGE) -> bytes:
    return orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                         "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage})


def test_a_text_answer_is_a_chat_completion() -> None:
    out = orjson.loads(answer_in(message([{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
                                         "end_turn"), created=1700))
    assert out["object"] == "chat.completion" and out["id"] == "msg_1" and out["created"] == 1700
    assert out["model"] == "claude-x"
    assert out["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                               "logprobs": None, "finish_reason": "stop"}]
    assert out["usage"]["prompt_tokens"] == 10 and out["usage"]["completion_tokens"] == 4
    assert out["usage"]["total_tokens"] == 14


@pytest.mark.parametrize("stop_reason,finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("model_context_window_exceeded", "length"), ("pause_turn", "stop")])
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish: str) -> None:
    out = orjson.loads(answer_in(message([{"type": "text", "text": "x"}], stop_reason), 0))
    assert out["choices"][0]["finish_reason"] == finish


def test_parallel_tool_uses_are_tool_calls_with_json_arguments() -> None:
    out = orjson.loads(answer_in(message([
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}}], "tool_use"), 0))
    msg = out["choices"][0]["message"]
    assert msg["content"] == "Checking."
    assert msg["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]
    assert out["choices"][0]["finish_reason"] == "tool_calls"


def test_a_tool_call_alone_has_no_content() -> None:
    out = orjson.loads(answer_in(message([{"type": "tool_use", "id": "t", "name": "f", "input": {}}], "tool_use"), 0))
    assert out["choices"][0]["message"]["content"] is None


def test_the_answer_tool_of_a_response_format_becomes_the_content() -> None:
    raw = message([{"type": "tool_use", "id": "t", "name": ANSWER_TOOL, "input": {"t": 21}}], "tool_use")
    out = orjson.loads(answer_in(raw, 0, json_answer=True))
    assert out["choices"][0]["message"] == {"role": "assistant", "content": '{"t":21}'}
    assert out["choices"][0]["finish_reason"] == "stop"


def test_cache_writes_and_reads_count_as_prompt_tokens_and_are_named_apart() -> None:
    usage = usage_in({"input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000,
                      "output_tokens": 7})
    assert usage["prompt_tokens"] == 1105 and usage["total_tokens"] == 1112
    assert usage["prompt_tokens_details"] == {"cached_tokens": 1000, "cache_creation_tokens": 100}
    assert usage["cache_creation_input_tokens"] == 100 and usage["cache_read_input_tokens"] == 1000


@pytest.mark.parametrize("status,anthropic_type,openai_type,code", [
    (400, "invalid_request_error", "invalid_request_error", None),
    (401, "authentication_error", "authentication_error", "invalid_api_key"),
    (429, "rate_limit_error", "rate_limit_error", "rate_limit_exceeded"),
    (500, "api_error", "server_error", None),
    (529, "overloaded_error", "server_error", "overloaded")])
def test_errors_take_the_openai_shape(status: int, anthropic_type: str, openai_type: str, code: str | None) -> None:
    raw = orjson.dumps({"type": "error", "error": {"type": anthropic_type, "message": "why"}})
    assert orjson.loads(error_in(status, raw)) == {"error": {"message": "why", "type": openai_type, "param": None,
                                                              "code": code}}


def test_a_prompt_too_long_is_a_context_length_error() -> None:
    raw = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": "prompt is too long: 210000 tokens > 200000 maximum"}})
    assert orjson.loads(error_in(400, raw))["error"]["code"] == "context_length_exceeded"


def test_an_error_body_that_is_not_json_still_gives_the_openai_shape() -> None:
    assert orjson.loads(error_in(502, b"<html>bad gateway</html>"))["error"]["type"] == "server_error"


# A stream as Anthropic documents it: text, then a tool use streamed as partial JSON.
TEXT_STREAM: list[dict[str, Any]] = [
    {"type": "message_start", "message": {"id": "msg_s", "model": "claude-x", "content": [], "stop_reason": None,
                                          "usage": {"input_tokens": 12, "cache_creation_input_tokens": 3,
                                                    "cache_read_input_tokens": 5, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " you"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_9",
                                                                  "name": "weather", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ' "Oslo"}'}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
]


def run(state: StreamState, events: list[dict[str, Any]]) -> list[Any]:
    out: list[bytes] = []
    for e in events:
        out += events_in(state, e)
    return [orjson.loads(line[6:]) if line != DONE else "[DONE]" for line in out]


def test_a_stream_translates_event_by_event() -> None:
    chunks = run(StreamState(created=5), TEXT_STREAM)
    assert all(c == "[DONE]" or (c["id"] == "msg_s" and c["object"] == "chat.completion.chunk") for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks[:-2]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {"content": " you"},
        {"tool_calls": [{"index": 0, "id": "toolu_9", "type": "function", "function": {"name": "weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]},
        {},
    ]
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"
    usage = chunks[-2]
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] == 20 and usage["usage"]["completion_tokens"] == 9
    assert usage["usage"]["cache_creation_input_tokens"] == 3 and usage["usage"]["prompt_tokens_details"]["cached_tokens"] == 5
    assert chunks[-1] == "[DONE]"


def test_a_stream_without_usage_asked_ends_with_done_alone() -> None:
    chunks = run(StreamState(created=5, include_usage=False), TEXT_STREAM)
    assert chunks[-1] == "[DONE]" and "usage" not in chunks[-2]


def test_the_second_tool_of_a_stream_has_the_next_index() -> None:
    start = {"type": "content_block_start", "content_block": {"type": "tool_use", "id": "b", "name": "f", "input": {}}}
    chunks = run(StreamState(created=0), [TEXT_STREAM[0], {**start, "index": 0}, {**start, "index": 1}])
    assert [c["choices"][0]["delta"]["tool_calls"][0]["index"] for c in chunks[1:]] == [0, 1]


def test_content_is_marked_started_only_by_text_or_a_tool_call() -> None:
    state = StreamState(created=0)
    run(state, TEXT_STREAM[:3])
    assert not state.content_started
    run(state, TEXT_STREAM[3:4])
    assert state.content_started


def test_an_error_event_is_held_in_the_state_with_its_status() -> None:
    state = StreamState(created=0)
    assert run(state, [TEXT_STREAM[0], {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}])
    assert state.error is not None
    status, body = state.error
    assert status == 529
    assert orjson.loads(body)["error"] == {"message": "Overloaded", "type": "server_error", "param": None,
                                           "code": "overloaded"}


def test_a_streamed_answer_tool_is_streamed_as_content() -> None:
    state = StreamState(created=0, json_answer=True)
    chunks = run(state, [
        TEXT_STREAM[0],
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": ANSWER_TOOL,
                                                                      "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"t": 1}'}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}])
    assert chunks[1]["choices"][0]["delta"] == {"content": '{"t": 1}'}
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"


def test_the_meter_reads_cache_reads_and_writes_from_a_translated_answer() -> None:
    from gateway.metering.usage import usage_from_body

    raw = message([{"type": "text", "text": "x"}], "end_turn", {"input_tokens": 5, "cache_creation_input_tokens": 100,
                                                                "cache_read_input_tokens": 1000, "output_tokens": 7})
    usage = usage_from_body(answer_in(raw, 0))
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_input_tokens, usage.output_tokens) == \
        (1105, 1000, 100, 7)


def test_stream_bytes_are_translated_up_to_an_error_event_and_no_further() -> None:
    from gateway.providers.anthropic_wire import translate

    def sse(event: dict[str, Any]) -> bytes:
        return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"

    state = StreamState(created=0)
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    raw = b"".join(sse(e) for e in [*TEXT_STREAM[:4], error, TEXT_STREAM[4]]) + b"event: ping\ndata: {"
    out, rest = translate(state, raw)
    assert [orjson.loads(line[6:])["choices"][0]["delta"] for line in out] == [{"role": "assistant", "content": ""},
                                                                              {"content": "Hi"}]
    assert state.error is not None and state.error[0] == 529
    assert rest == b"event: ping\ndata: {"
