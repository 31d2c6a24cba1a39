"""The simulated Claude: which reply a request gets, what its usage says, and which bodies the API refuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.sim import anthropic_reply
from gateway.sim.anthropic_checks import problem

WEATHER = {"name": "get_weather", "description": "Weather now", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}


def body(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


def reply(b: dict[str, Any], tokens: int = 6) -> anthropic_reply.Plan:
    return anthropic_reply.plan(b, "claude", tokens, 1)


def test_a_text_reply_is_the_name_then_numbered_words_ending_the_turn() -> None:
    p = reply(body())
    assert [b.text for b in p.blocks] == ["claude t1 t2 t3 t4 t5"]
    assert (p.stop_reason, p.stop_sequence, p.output_tokens) == ("end_turn", None, 6)


def test_max_tokens_cuts_the_reply_and_says_so() -> None:
    p = reply(body(max_tokens=3))
    assert (p.blocks[0].text, p.stop_reason, p.output_tokens) == ("claude t1 t2", "max_tokens", 3)


def test_a_stop_sequence_ends_the_text_before_it_and_is_reported() -> None:
    p = reply(body(stop_sequences=["END", "t3"]))
    assert (p.blocks[0].text, p.stop_reason, p.stop_sequence) == ("claude t1 t2 ", "stop_sequence", "t3")
    assert "".join(p.blocks[0].pieces) == "claude t1 t2 "


def test_with_tool_choice_auto_claude_says_a_few_words_before_calling_the_tool() -> None:
    p = reply(body("weather in Paris?", tools=[WEATHER]))
    assert [b.kind for b in p.blocks] == ["text", "tool_use"]
    assert p.blocks[1].name == "get_weather" and p.blocks[1].input == {"city": "sim", "days": 1}
    assert (p.stop_reason, p.output_tokens) == ("tool_use", 3 + anthropic_reply.TOOL_TOKENS)


def test_tools_named_in_the_question_are_called_in_parallel_in_the_order_offered() -> None:
    p = reply(body("use get_time and get_weather", tools=[WEATHER, TIME], tool_choice={"type": "any"}))
    assert [(b.kind, b.name, b.tool_id) for b in p.blocks] == [
        ("tool_use", "get_weather", "toolu_sim_1_0"), ("tool_use", "get_time", "toolu_sim_1_1")]


def test_disable_parallel_tool_use_leaves_one_call() -> None:
    choice = {"type": "any", "disable_parallel_tool_use": True}
    p = reply(body("use get_time and get_weather", tools=[WEATHER, TIME], tool_choice=choice))
    assert [b.name for b in p.blocks] == ["get_weather"]


def test_a_named_tool_choice_calls_that_tool_without_words() -> None:
    p = reply(body("hi", tools=[WEATHER, TIME], tool_choice={"type": "tool", "name": "get_time"}))
    assert [(b.kind, b.name) for b in p.blocks] == [("tool_use", "get_time")]


def test_a_turn_carrying_tool_results_gets_text() -> None:
    b = body(tools=[WEATHER])
    b["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}]
    assert [b.kind for b in reply(b).blocks] == ["text"]


def test_the_stream_carries_the_same_reply_in_the_documented_event_order() -> None:
    p = reply(body("use get_weather", tools=[WEATHER]))
    usage = {"input_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    events = anthropic_reply.events(p, usage)
    names = [name for name, _, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    data = [orjson.loads(d) for _, d, _ in events]
    assert all(d["type"] == n for d, (n, _, _) in zip(data, events, strict=True))
    tool_start = next(d for d in data if d["type"] == "content_block_start" and d["index"] == 1)
    assert tool_start["content_block"] == {"type": "tool_use", "id": "toolu_sim_1_0", "name": "get_weather", "input": {}}
    partial = [d["delta"]["partial_json"] for d in data if d["type"] == "content_block_delta" and d["index"] == 1]
    assert partial[0] == "" and len(partial) > 2 and orjson.loads("".join(partial)) == {"city": "sim", "days": 1}
    text = "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta" and d["index"] == 0)
    whole = anthropic_reply.message(p, usage)
    assert text == whole["content"][0]["text"]
    assert data[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert data[-2]["usage"] == {"output_tokens": whole["usage"]["output_tokens"]}


def test_a_prompt_without_cache_marks_is_all_plain_input() -> None:
    p = anthropic_reply.prompt(body("one two three", system="be brief"))
    assert (p.tokens, p.cached_prefix, p.cache_key) == (2 + 1 + 3, 0, None)
    assert anthropic_reply.usage(p, False) == {"input_tokens": 6, "cache_creation_input_tokens": 0,
                                               "cache_read_input_tokens": 0}


def test_the_prefix_up_to_the_last_cache_mark_is_written_then_read() -> None:
    system = [{"type": "text", "text": "a long shared preamble", "cache_control": {"type": "ephemeral"}}]
    p = anthropic_reply.prompt(body("one two", system=system))
    assert (p.tokens, p.cached_prefix) == (4 + 1 + 2, 4)
    assert anthropic_reply.usage(p, False) == {"input_tokens": 3, "cache_creation_input_tokens": 4,
                                               "cache_read_input_tokens": 0}
    assert anthropic_reply.usage(p, True) == {"input_tokens": 3, "cache_creation_input_tokens": 0,
                                              "cache_read_input_tokens": 4}


def test_the_cache_key_depends_on_the_prefix_not_on_what_follows() -> None:
    system = [{"type": "text", "text": "shared", "cache_control": {"type": "ephemeral"}}]
    first = anthropic_reply.prompt(body("one", system=system))
    assert anthropic_reply.prompt(body("two", system=system)).cache_key == first.cache_key
    other = [{"type": "text", "text": "different", "cache_control": {"type": "ephemeral"}}]
    assert anthropic_reply.prompt(body("one", system=other)).cache_key != first.cache_key


def _with(b: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**b, **changes}


def _tool_turns(result_id: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": result_id, "content": "sunny"}]}]


REFUSED = [
    ("no max_tokens", {"model": "m", "messages": []}, "max_tokens: Field required"),
    ("an OpenAI field", _with(body(), frequency_penalty=0.5), "frequency_penalty: Extra inputs are not permitted"),
    ("an OpenAI tool role in messages", _with(body(), messages=[{"role": "tool", "content": "x"}]),
     "messages.0.role: Input should be 'user' or 'assistant' or 'system'"),
    ("temperature above 1", _with(body(), temperature=1.5), "temperature:"),
    ("an OpenAI image part", _with(body(), messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]), "messages.0.content.0.type"),
    ("a base64 image without a media type", _with(body(), messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "data": "AAAA"}}]}]), "base64.media_type"),
    ("a tool in the OpenAI shape", _with(body(), tools=[{"type": "function", "function": {"name": "w"}}]), "tools.0"),
    ("a tool_result answering no tool_use", _with(body(), messages=_tool_turns("toolu_2")[:1] + [
        {"role": "assistant", "content": "let me see"}] + _tool_turns("toolu_2")[2:]),
     "unexpected `tool_use_id` found in `tool_result` blocks: toolu_2"),
    ("a tool_use left unanswered", _with(body(), messages=_tool_turns("toolu_1")[:2] + [{"role": "user", "content": "?"}]),
     "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    ("tool_choice without tools", _with(body(), tool_choice={"type": "any"}), "tool_choice may only be specified"),
    ("metadata other than user_id", _with(body(), metadata={"team": "x"}), "metadata.team"),
]


@pytest.mark.parametrize(("case", "bad", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
def test_the_api_refuses(case: str, bad: dict[str, Any], reason: str) -> None:
    found = problem(bad)
    assert found is not None and reason in found


def test_a_well_formed_tool_conversation_with_images_is_accepted() -> None:
    messages = _tool_turns("toolu_1")
    messages[0]["content"] = [{"type": "text", "text": "weather?"},
                              {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                              {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]
    good = _with(body(), messages=messages, system=[{"type": "text", "text": "s"}], temperature=0.2, top_p=0.9,
                 stop_sequences=["x"], metadata={"user_id": "u"}, tools=[WEATHER], tool_choice={"type": "auto"})
    assert problem(good) is None
