"""Each `expect` check against chat.completion bodies: pass, fail, and what a failure shows."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.quality.checks import SHOWN_CHARS, judge
from gateway.policy.quality import CanaryItem
from gateway.quality.suite import DEFAULT_SUITE, WEATHER_TOOL


def item(expect: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> CanaryItem:
    return CanaryItem.model_validate({"name": "x", "messages": [{"role": "user", "content": "q"}],
                                      "expect": expect, "tools": tools})


def text(content: str | None) -> bytes:
    return orjson.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


def tool_call(name: str, arguments: str) -> bytes:
    return orjson.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": name, "arguments": arguments}}]}}]})


def test_contains_ignores_case() -> None:
    assert judge(item({"contains": "paris"}), text("It is Paris.")).passed
    assert judge(item({"contains": "paris"}), text("It is Lyon.")).result == "fail"


def test_regex_is_searched_in_the_answer() -> None:
    assert judge(item({"regex": r"^\s*42\s*$"}), text("42")).passed
    failed = judge(item({"regex": r"^\s*42\s*$"}), text("The answer is 43."))
    assert failed.result == "fail" and failed.got == "The answer is 43."


def test_json_schema_needs_the_whole_answer_to_parse_and_validate() -> None:
    check = item({"json_schema": {"type": "object", "required": ["city"]}})
    assert judge(check, text('{"city": "Paris"}')).passed
    assert not judge(check, text('Here you go: {"city": "Paris"}')).passed
    assert not judge(check, text('{"town": "Paris"}')).passed


def test_tool_call_needs_the_tool_and_arguments_valid_for_its_schema() -> None:
    check = item({"tool_call": "get_weather"}, tools=[WEATHER_TOOL])
    assert judge(check, tool_call("get_weather", '{"city": "Oslo"}')).passed
    broken = judge(check, tool_call("get_weather", '{"city": "Os'))
    assert broken.result == "fail" and "not JSON" in broken.got
    assert "'city' is a required property" in judge(check, tool_call("get_weather", "{}")).got
    assert judge(check, tool_call("get_time", "{}")).got == "called get_time"
    assert judge(check, text("It is sunny in Oslo.")).got.startswith("no tool call")


def test_what_a_failure_shows_is_truncated() -> None:
    failed = judge(item({"contains": "Paris"}), text("blah " * 200))
    assert len(failed.got) == SHOWN_CHARS and failed.got.endswith("…")


def test_an_answer_that_is_no_chat_completion_fails() -> None:
    assert judge(item({"contains": "x"}), b"<html>oops</html>").got.startswith("not a chat completion")


def test_the_built_in_suite_has_about_ten_cheap_items_of_every_kind() -> None:
    assert 8 <= len(DEFAULT_SUITE) <= 12
    assert {i.expect.kind for i in DEFAULT_SUITE} >= {"regex", "json_schema", "tool_call"}
    assert len({i.name for i in DEFAULT_SUITE}) == len(DEFAULT_SUITE)
