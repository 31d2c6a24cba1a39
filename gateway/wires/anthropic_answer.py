"""Anthropic Messages → OpenAI chat completions: the answer coming back, whole or streamed, and errors.

Shapes (Anthropic's Messages API and streaming references; OpenAI's chat completion objects):
- text blocks join into `message.content`; `tool_use` blocks become `tool_calls` (input as a JSON
  string); the forced `ANSWER_TOOL` of a `response_format` request becomes the content itself;
- stop reasons: end_turn, stop_sequence, pause_turn → stop; max_tokens and
  model_context_window_exceeded → length; tool_use → tool_calls (stop for `ANSWER_TOOL`);
  refusal → content_filter;
- usage: `prompt_tokens` counts every input token, cache writes and reads included;
  `prompt_tokens_details.cached_tokens` the cache reads, `prompt_tokens_details.cache_creation_tokens`
  and `cache_creation_input_tokens` the cache writes, `cache_read_input_tokens` the reads (as
  litellm reports them, so metering reads one shape);
- a stream: `message_start` → the role chunk, text deltas → content chunks, a `tool_use` block's
  start → a tool call's id and name, its `input_json_delta`s → argument chunks, `message_delta` →
  the finish chunk, `message_stop` → the usage chunk (when asked for) and `data: [DONE]`; `ping`
  and `content_block_stop` → nothing; `error` → `StreamState.error`, for the client to raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.wires.openai_error import error_body
from gateway.wires.anthropic_chat import ANSWER_TOOL

DONE = b"data: [DONE]\n\n"
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
          "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
# Anthropic's error types, the HTTP status each comes with, and the OpenAI type and code they become.
ERRORS: dict[str, tuple[int, str, str | None]] = {
    "invalid_request_error": (400, "invalid_request_error", None),
    "authentication_error": (401, "authentication_error", "invalid_api_key"),
    "permission_error": (403, "permission_error", None),
    "not_found_error": (404, "invalid_request_error", "model_not_found"),
    "request_too_large": (413, "invalid_request_error", "request_too_large"),
    "rate_limit_error": (429, "rate_limit_error", "rate_limit_exceeded"),
    "api_error": (500, "server_error", None),
    "timeout_error": (504, "server_error", "timeout"),
    "overloaded_error": (529, "server_error", "overloaded"),
}


def usage_in(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI usage from Anthropic's: input counts cache writes and reads, which are also named apart."""
    fresh = int(usage.get("input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    output = int(usage.get("output_tokens") or 0)
    prompt = fresh + written + read
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": written},
            "cache_creation_input_tokens": written, "cache_read_input_tokens": read}


def finish_reason(stop_reason: Any, answer_tool: bool = False) -> str | None:
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and answer_tool:
        return "stop"
    return FINISH.get(str(stop_reason), "stop")


def answer_in(raw: bytes, created: int, json_answer: bool = False) -> bytes:
    """A chat.completion for a Messages answer; `json_answer`: the request asked for a response_format."""
    msg = orjson.loads(raw)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    answered_by_tool = False
    for block in msg.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use" and json_answer and block.get("name") == ANSWER_TOOL:
            texts.append(orjson.dumps(block.get("input") or {}).decode())
            answered_by_tool = True
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return orjson.dumps({
        "id": msg.get("id"), "object": "chat.completion", "created": created, "model": msg.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(msg.get("stop_reason"), answered_by_tool)}],
        "usage": usage_in(msg.get("usage") or {})})


def error_in(status: int, raw: bytes) -> bytes:
    """An OpenAI error body for an Anthropic error body (or for whatever else came with `status`)."""
    try:
        err = orjson.loads(raw).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        err = {}
    return _error(status, str(err.get("type") or ""), str(err.get("message") or f"HTTP {status}"))


def _error(status: int, kind: str, message: str) -> bytes:
    _, openai_type, code = ERRORS.get(kind, (status, "server_error" if status >= 500 else "invalid_request_error",
                                             None))
    if kind == "invalid_request_error" and "prompt is too long" in message:
        code = "context_length_exceeded"   # what failover looks for: a larger window may take it
    return error_body(message, openai_type, code)


@dataclass(slots=True)
class StreamState:
    """What a stream's translation carries from one event to the next."""

    created: int
    include_usage: bool = True
    json_answer: bool = False           # the request asked for a response_format (see ANSWER_TOOL)
    id: str = ""
    model: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    tool_index: dict[int, int] = field(default_factory=dict)   # Anthropic block index → tool call index
    answer_blocks: set[int] = field(default_factory=set)       # blocks whose JSON is the answer's content
    content_started: bool = False       # a chunk with content (text or a tool call) was produced
    finished: bool = False              # message_stop arrived
    error: tuple[int, bytes] | None = None   # an `error` event: its status and OpenAI error body


def _chunk(state: StreamState, delta: dict[str, Any], finish: str | None = None) -> bytes:
    return b"data: " + orjson.dumps({
        "id": state.id, "object": "chat.completion.chunk", "created": state.created, "model": state.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}) + b"\n\n"


def events_in(state: StreamState, event: Mapping[str, Any]) -> list[bytes]:
    """The OpenAI chunk events (whole `data:` lines) for one Anthropic stream event."""
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event.get("delta") or {}
        index = int(event.get("index") or 0)
        if delta.get("type") == "text_delta" and delta.get("text"):
            state.content_started = True
            return [_chunk(state, {"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            if index in state.answer_blocks:
                state.content_started = True
                return [_chunk(state, {"content": delta["partial_json"]})]
            if index in state.tool_index:
                return [_chunk(state, {"tool_calls": [{"index": state.tool_index[index],
                                                       "function": {"arguments": delta["partial_json"]}}]})]
        return []
    if kind == "message_start":
        message = event.get("message") or {}
        state.id, state.model = str(message.get("id") or ""), str(message.get("model") or "")
        state.usage = dict(message.get("usage") or {})
        return [_chunk(state, {"role": "assistant", "content": ""})]
    if kind == "content_block_start":
        block = event.get("content_block") or {}
        index = int(event.get("index") or 0)
        if block.get("type") == "tool_use":
            if state.json_answer and block.get("name") == ANSWER_TOOL:
                state.answer_blocks.add(index)
                return []
            state.tool_index[index] = n = len(state.tool_index)
            state.content_started = True
            return [_chunk(state, {"tool_calls": [{"index": n, "id": block.get("id"), "type": "function",
                                                   "function": {"name": block.get("name"), "arguments": ""}}]})]
        if block.get("type") == "text" and block.get("text"):
            state.content_started = True
            return [_chunk(state, {"content": block["text"]})]
        return []
    if kind == "message_delta":
        state.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        stop = (event.get("delta") or {}).get("stop_reason")
        if stop is None:
            return []
        return [_chunk(state, {}, finish_reason(stop, bool(state.answer_blocks)))]
    if kind == "message_stop":
        state.finished = True
        if not state.include_usage:
            return [DONE]
        usage = b"data: " + orjson.dumps({"id": state.id, "object": "chat.completion.chunk", "created": state.created,
                                          "model": state.model, "choices": [], "usage": usage_in(state.usage)})
        return [usage + b"\n\n", DONE]
    if kind == "error":
        err = event.get("error") or {}
        error_kind = str(err.get("type") or "api_error")
        status = ERRORS.get(error_kind, (500, "", None))[0]
        state.error = (status, _error(status, error_kind, str(err.get("message") or error_kind)))
    return []   # ping, content_block_stop, and events this version does not know
