"""OpenAI chat requests that real applications send, each with the answer Anthropic's documentation implies.

The upstream is the Anthropic-wire simulator (reply_tokens=8, so a full text answer is
"claude t1 … t7"; with tools offered it calls each tool the last user turn names, after a short
text block when tool_choice is auto). The expectations follow Anthropic's documented mapping:
`end_turn`/`stop_sequence` → `stop`, `max_tokens` → `length`, `tool_use` → `tool_calls`; text
blocks → `content`; `tool_use` blocks → `tool_calls` with JSON arguments; usage `prompt_tokens` =
`input_tokens` + `cache_creation_input_tokens` + `cache_read_input_tokens` (the OpenAI convention:
cached tokens are part of the prompt), `cached_tokens` = `cache_read_input_tokens`. Prompt token
counts are taken from what the upstream counted for the request it received; everything else is
spelled out per case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.sim import Fault
from tests.fidelity.answers import Answer, ToolCall

FULL = "claude t1 t2 t3 t4 t5 t6 t7"
TOOL_TOKENS = 10
HELLO = [{"role": "user", "content": "hello"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
STREAM = {"stream": True, "stream_options": {"include_usage": True}}


def tool(name: str, properties: dict[str, Any] | None = None, description: str | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name, "parameters": {"type": "object", "properties": properties or {}}}
    if description:
        fn["description"] = description
    return {"type": "function", "function": fn}


WEATHER = tool("get_weather", {"city": {"type": "string"}}, "Current weather in a city")
TIME = tool("get_time", {"zone": {"type": "string"}})
STATUS = tool("get_status")
BOOKING = tool("book_trip", {"traveller": {"type": "object", "properties": {"name": {"type": "string"},
                                                                              "age": {"type": "integer"}}},
                             "stops": {"type": "array", "items": {"type": "string"}},
                             "refundable": {"type": "boolean"}})


def text(content: str, completion: int, finish: str = "stop") -> Answer:
    return Answer(content=content, finish=finish, completion_tokens=completion)


def calls(*names_args: tuple[str, Any], said: str | None = None) -> Answer:
    """Tool calls; `said`: the text block Claude writes first (tool_choice auto)."""
    words = len(said.split()) if said else 0
    return Answer(content=said, tool_calls=tuple(ToolCall(n, a) for n, a in names_args), finish="tool_calls",
                  completion_tokens=words + TOOL_TOKENS * len(names_args))


def failed(status: int | None, retry_after_s: float | None = None) -> Answer:
    return Answer(status=status, retry_after_s=retry_after_s, failure="status")


def broke_off(content: str | None) -> Answer:
    return Answer(content=content, failed_mid_stream=True)


def tool_turns(*results: tuple[str, str, str], said: str | None = None) -> list[dict[str, Any]]:
    """A user question, the assistant's tool calls (id, name, result), and one tool message per result."""
    assistant: dict[str, Any] = {"role": "assistant", "content": said, "tool_calls": [
        {"id": i, "type": "function", "function": {"name": n, "arguments": "{}"}} for i, n, _ in results]}
    return [{"role": "user", "content": "weather and time please"}, assistant] + [
        {"role": "tool", "tool_call_id": i, "content": r} for i, _, r in results]


@dataclass(frozen=True)
class Case:
    name: str
    body: dict[str, Any]
    expect: Answer
    sent: dict[str, Any] = field(default_factory=dict)   # what the Messages request must carry (see upstream_view)
    fault: Fault | None = None
    warm: bool = False                                  # send it once before: the prompt cache holds its prefix
    # Fields of the answer where litellm departs from the documented answer, and why: asserted to
    # differ, so the case notices when litellm changes.
    litellm_wrong: dict[str, str] = field(default_factory=dict)


def _cached_system(words: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": [{"type": "text", "text": words, "cache_control": {"type": "ephemeral"}}]}]


CASES: list[Case] = [
    # Text, system and developer prompts, conversations.
    Case("plain text", {"messages": HELLO}, text(FULL, 8)),
    Case("system prompt", {"messages": [{"role": "system", "content": "be brief"}] + HELLO}, text(FULL, 8),
         sent={"system": "be brief"}),
    Case("developer prompt", {"messages": [{"role": "developer", "content": "answer in French"}] + HELLO},
         text(FULL, 8), sent={"system": "answer in French"}),
    Case("system and developer prompts", {"messages": [{"role": "system", "content": "be brief"},
                                                       {"role": "developer", "content": "no lists"}] + HELLO},
         text(FULL, 8), sent={"system": "be brief no lists"}),
    Case("system prompt as text parts", {"messages": [{"role": "system", "content": [
        {"type": "text", "text": "be"}, {"type": "text", "text": "brief"}]}] + HELLO}, text(FULL, 8),
         sent={"system": "be brief"}),
    Case("multi-turn", {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"},
                                     {"role": "user", "content": "how are you"}]}, text(FULL, 8),
         sent={"roles": ["user", "assistant", "user"]}),
    Case("user content as text parts", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "first part"}, {"type": "text", "text": "second part"}]}]}, text(FULL, 8),
         sent={"blocks": [["text", "text"]]}),
    Case("assistant content as text parts", {"messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "hello!"}]},
        {"role": "user", "content": "go on"}]}, text(FULL, 8)),
    # Images.
    Case("image as base64 data URL", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]}, text(FULL, 8),
         sent={"images": [{"type": "base64", "media_type": "image/png", "data": PNG}]}),
    Case("image by URL", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}]}]},
         text(FULL, 8), sent={"images": [{"type": "url", "url": "https://example.com/cat.jpg"}]}),
    # Tools.
    Case("one tool, tool_choice auto", {"messages": [{"role": "user", "content": "weather in Paris?"}],
                                        "tools": [WEATHER]},
         calls(("get_weather", {"city": "sim"}), said="claude calls get_weather"), sent={"tools": ["get_weather"]}),
    Case("tool_choice required", {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER, TIME],
                                  "tool_choice": "required"},
         calls(("get_weather", {"city": "sim"})), sent={"tool_choice": {"type": "any"}}),
    Case("tool_choice naming a function", {"messages": [{"role": "user", "content": "weather?"}],
                                           "tools": [WEATHER, TIME],
                                           "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
         calls(("get_time", {"zone": "sim"})), sent={"tool_choice": {"type": "tool", "name": "get_time"}}),
    Case("tool_choice none", {"messages": [{"role": "user", "content": "use get_weather"}], "tools": [WEATHER],
                              "tool_choice": "none"}, text(FULL, 8)),
    Case("parallel tool calls", {"messages": [{"role": "user", "content": "use get_weather and get_time"}],
                                 "tools": [WEATHER, TIME]},
         calls(("get_weather", {"city": "sim"}), ("get_time", {"zone": "sim"}),
               said="claude calls get_weather get_time")),
    Case("parallel_tool_calls false", {"messages": [{"role": "user", "content": "use get_weather and get_time"}],
                                       "tools": [WEATHER, TIME], "parallel_tool_calls": False},
         calls(("get_weather", {"city": "sim"}), said="claude calls get_weather"),
         sent={"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}),
    Case("tool without parameters", {"messages": [{"role": "user", "content": "status?"}], "tools": [STATUS],
                                     "tool_choice": "required"}, calls(("get_status", {}))),
    Case("nested tool arguments", {"messages": [{"role": "user", "content": "book it"}], "tools": [BOOKING],
                                   "tool_choice": "required"},
         calls(("book_trip", {"traveller": {"name": "sim", "age": 1}, "stops": ["sim"], "refundable": True}))),
    Case("a tool result", {"messages": tool_turns(("call_1", "get_weather", "sunny, 21 C")), "tools": [WEATHER]},
         text(FULL, 8), sent={"blocks": [["text"], ["tool_use"], ["tool_result"]]}),
    Case("parallel tool results", {"messages": tool_turns(("call_1", "get_weather", "sunny"),
                                                          ("call_2", "get_time", "noon")),
                                   "tools": [WEATHER, TIME]},
         text(FULL, 8), sent={"blocks": [["text"], ["tool_use", "tool_use"], ["tool_result", "tool_result"]]}),
    Case("tool calls with words before them, then results", {
        "messages": tool_turns(("call_1", "get_weather", "sunny"), said="let me look"), "tools": [WEATHER]},
         text(FULL, 8), sent={"blocks": [["text"], ["text", "tool_use"], ["tool_result"]]}),
    Case("a tool result then a user question", {
        "messages": tool_turns(("call_1", "get_weather", "sunny")) + [{"role": "user", "content": "and tomorrow"}],
        "tools": [WEATHER]}, text(FULL, 8)),
    # Stops and limits.
    Case("stop sequence", {"messages": HELLO, "stop": ["t3"]}, text("claude t1 t2 ", 3),
         sent={"stop_sequences": ["t3"]}),
    Case("stop as one string", {"messages": HELLO, "stop": "t5"}, text("claude t1 t2 t3 t4 ", 5),
         sent={"stop_sequences": ["t5"]}),
    Case("max_tokens reached", {"messages": HELLO, "max_tokens": 3}, text("claude t1 t2", 3, "length"),
         sent={"max_tokens": 3}),
    Case("max_completion_tokens reached", {"messages": HELLO, "max_completion_tokens": 4},
         text("claude t1 t2 t3", 4, "length"), sent={"max_tokens": 4}),
    Case("temperature and top_p", {"messages": HELLO, "temperature": 0.3, "top_p": 0.9}, text(FULL, 8),
         sent={"temperature": 0.3, "top_p": 0.9}),
    Case("user becomes metadata.user_id", {"messages": HELLO, "user": "user-42"}, text(FULL, 8),
         sent={"metadata": {"user_id": "user-42"}}),
    # Fields the Messages API has no counterpart for: a clear 400 naming the field, never a silent
    # drop that answers something other than what was asked.
    Case("n above 1 is refused", {"messages": HELLO, "n": 2}, failed(400),
         litellm_wrong={"failed before the answer": "litellm drops n (drop_params) and answers one choice",
                        "status": "so it answers 200"}),
    Case("seed is refused", {"messages": HELLO, "seed": 7}, failed(400),
         litellm_wrong={"failed before the answer": "litellm drops seed (drop_params): no determinism, no word said",
                        "status": "so it answers 200"}),
    Case("temperature above Anthropic's range", {"messages": HELLO, "temperature": 1.5}, failed(400)),
    # Prompt caching: a prefix marked with cache_control is written once, then read.
    Case("prompt cache write", {"messages": _cached_system("a long shared preamble one") + HELLO}, text(FULL, 8)),
    Case("prompt cache read", {"messages": _cached_system("a long shared preamble two") + HELLO}, text(FULL, 8),
         warm=True),
    # Errors before any answer.
    # litellm itself reports a 529 as a 500 and keeps Retry-After off the exception's response; the
    # bridge (gateway/providers/litellm_bridge.py) puts both right, so the documented answer holds.
    Case("529 overloaded", {"messages": HELLO}, failed(529), fault=Fault(status=529)),
    Case("429 with retry-after", {"messages": HELLO}, failed(429, 7.0), fault=Fault(status=429, retry_after_s=7)),
    Case("400 invalid request", {"messages": HELLO}, failed(400), fault=Fault(status=400)),
    Case("500 api error", {"messages": HELLO}, failed(500), fault=Fault(status=500)),
    # Streams.
    Case("stream of text", {"messages": HELLO, **STREAM}, text(FULL, 8)),
    Case("stream with a system prompt", {"messages": [{"role": "system", "content": "be brief"}] + HELLO, **STREAM},
         text(FULL, 8)),
    Case("stream of one tool call", {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER],
                                     "tool_choice": "required", **STREAM}, calls(("get_weather", {"city": "sim"}))),
    Case("stream of parallel tool calls after words", {
        "messages": [{"role": "user", "content": "use get_weather and get_time"}], "tools": [WEATHER, TIME], **STREAM},
         calls(("get_weather", {"city": "sim"}), ("get_time", {"zone": "sim"}), said="claude calls get_weather get_time")),
    Case("stream of a tool call without parameters", {"messages": [{"role": "user", "content": "status?"}],
                                                      "tools": [STATUS], "tool_choice": "required", **STREAM},
         calls(("get_status", {}))),
    Case("stream after a tool result", {"messages": tool_turns(("call_1", "get_weather", "sunny")),
                                        "tools": [WEATHER], **STREAM}, text(FULL, 8)),
    Case("stream cut by a stop sequence", {"messages": HELLO, "stop": ["t3"], **STREAM}, text("claude t1 t2 ", 3)),
    Case("stream reaching max_tokens", {"messages": HELLO, "max_tokens": 2, **STREAM}, text("claude t1", 2, "length")),
    Case("stream reading the prompt cache", {"messages": _cached_system("a long shared preamble three") + HELLO,
                                             **STREAM}, text(FULL, 8), warm=True),
    Case("stream refused with 529", {"messages": HELLO, **STREAM}, failed(529), fault=Fault(status=529)),
    Case("stream overloaded_error event before any content", {"messages": HELLO, **STREAM}, failed(529),
         fault=Fault(error_event_after_chunks=0)),
    # Spaced chunks, so the first content is handed on before the error event arrives (a client that
    # read it all at once would rightly fail the attempt before handing anything on).
    Case("stream overloaded_error event mid-answer", {"messages": HELLO, **STREAM}, broke_off("claude t1 t2"),
         fault=Fault(error_event_after_chunks=3, chunk_delay_s=0.05)),
]
