"""The checks on live answers: each defect found, and each guard that keeps an ordinary answer clean."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.policy.answer_checks import AnswerChecks
from gateway.quality.answer_checks import (EMPTY, REPETITION, STRUCTURED_OUTPUT, TOOL_ARGS_NOT_JSON, TOOL_ARGS_SCHEMA,
                                           WRONG_SCRIPT, Answer, Asked, ToolCall, defects, dominant_script, looping)
from gateway.providers.transcript import Transcript
from gateway.quality.answer_read import StreamWatch, whole_defects

ON = AnswerChecks()
ENGLISH = {"model": "m", "messages": [{"role": "user", "content": "Tell me about the weather in Oslo."}]}
THAI_TEXT = "นี่คือคำตอบที่ชัดเจนและครบถ้วนสำหรับคำถามของคุณโดยอธิบายทีละขั้นตอนอย่างละเอียด"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PROSE = ("The weather in Oslo today is cold and clear, with a light wind from the north and a high of two "
         "degrees. Tomorrow brings clouds from the west, some snow in the afternoon, and colder nights. ")


def chat(message: dict[str, Any], finish: str = "stop") -> bytes:
    return orjson.dumps({"object": "chat.completion", "choices": [{"index": 0, "message": message,
                                                                   "finish_reason": finish}]})


def test_an_english_answer_to_an_english_question_has_no_defect() -> None:
    assert defects(Asked(ENGLISH, "chat"), Answer(PROSE, finish="stop"), ON) == []


def test_thai_letters_answering_an_english_question_are_the_wrong_script() -> None:
    assert defects(Asked(ENGLISH, "chat"), Answer(THAI_TEXT, finish="stop"), ON) == [WRONG_SCRIPT]


def test_a_thai_answer_to_a_thai_question_is_fine() -> None:
    asked = Asked({"messages": [{"role": "user", "content": "อากาศที่ออสโลเป็นอย่างไร"}]}, "chat")
    assert defects(asked, Answer(THAI_TEXT, finish="stop"), ON) == []


def test_a_script_in_the_system_prompt_or_the_tools_counts_as_in_the_request() -> None:
    asked = Asked({"messages": [{"role": "system", "content": [{"type": "text", "text": "ตอบเป็นภาษาไทย"}]},
                                {"role": "user", "content": "hello"}]}, "chat")
    assert not defects(asked, Answer(THAI_TEXT, finish="stop"), ON)


def test_a_few_foreign_letters_in_an_english_answer_are_no_defect() -> None:
    assert defects(Asked(ENGLISH, "chat"), Answer(PROSE + " Hello is สวัสดี in Thai.", finish="stop"), ON) == []


def test_latin_answers_are_never_the_wrong_script() -> None:
    assert dominant_script("Ceci est une réponse en français, avec des accents: é è à ç ô û.") is None


def test_an_answer_with_nothing_that_finished_is_empty() -> None:
    assert defects(Asked(ENGLISH, "chat"), Answer("", finish="stop"), ON) == [EMPTY]


def test_an_answer_cut_by_the_token_limit_or_continuing_a_prefill_is_not_empty() -> None:
    assert defects(Asked(ENGLISH, "chat"), Answer("", finish="length"), ON) == []
    prefill = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]}
    assert defects(Asked(prefill, "messages"), Answer("", finish="stop"), ON) == []


def test_one_word_over_and_over_is_a_loop_and_long_prose_is_not() -> None:
    assert looping("the " * 400)
    assert looping("I am sorry. " * 200)
    assert not looping(PROSE * 2 + " ".join(f"word{i}" for i in range(300)))
    assert defects(Asked(ENGLISH, "chat"), Answer("the " * 400, finish="length"), ON) == [REPETITION]


def test_a_short_repetition_is_not_judged_a_loop() -> None:
    assert not looping("ha " * 50)


def test_a_loop_in_a_script_without_spaces_is_found_by_characters() -> None:
    assert looping("好的好的" * 300)
    assert not looping(THAI_TEXT * 1 + "".join(chr(0x4E00 + i * 7) for i in range(700)))


def test_tool_arguments_that_are_not_json_are_a_defect() -> None:
    asked = Asked({**ENGLISH, "tools": [WEATHER]}, "chat")
    answer = Answer("", [ToolCall("get_weather", '{"city": "Os')], "tool_calls")
    assert defects(asked, answer, ON) == [TOOL_ARGS_NOT_JSON]


def test_tool_arguments_breaking_the_declared_schema_are_a_defect_and_fitting_ones_are_not() -> None:
    asked = Asked({**ENGLISH, "tools": [WEATHER]}, "chat")
    assert defects(asked, Answer("", [ToolCall("get_weather", '{"town": 1}')], "tool_calls"), ON) == [TOOL_ARGS_SCHEMA]
    assert defects(asked, Answer("", [ToolCall("get_weather", '{"city": "Oslo"}')], "tool_calls"), ON) == []


def test_messages_tool_input_is_checked_against_its_input_schema() -> None:
    tool = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}  # type: ignore[index]
    asked = Asked({"messages": [{"role": "user", "content": "weather?"}], "tools": [tool]}, "messages")
    assert defects(asked, Answer("", [ToolCall("get_weather", None, {})], "tool_calls"), ON) == [TOOL_ARGS_SCHEMA]


def test_structured_output_that_breaks_each_wires_schema_is_a_defect() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    cases = [
        ({**ENGLISH, "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}}, "chat"),
        ({"input": "x", "text": {"format": {"type": "json_schema", "name": "a", "schema": schema}}}, "responses"),
        ({**ENGLISH, "output_config": {"format": {"type": "json_schema", "schema": schema}}}, "messages"),
    ]
    for body, endpoint in cases:
        asked = Asked(body, endpoint)
        assert defects(asked, Answer('{"town": "Oslo"}', finish="stop"), ON) == [STRUCTURED_OUTPUT], endpoint
        assert defects(asked, Answer("Here it is: {city: Oslo}", finish="stop"), ON) == [STRUCTURED_OUTPUT], endpoint
        assert defects(asked, Answer('{"city": "Oslo"}', finish="stop"), ON) == [], endpoint


def test_json_mode_wants_json_and_nothing_more() -> None:
    asked = Asked({**ENGLISH, "response_format": {"type": "json_object"}}, "chat")
    assert defects(asked, Answer("not json", finish="stop"), ON) == [STRUCTURED_OUTPUT]
    assert defects(asked, Answer('{"anything": 1}', finish="stop"), ON) == []


def test_each_check_can_be_turned_off() -> None:
    off = AnswerChecks(wrong_script=False, empty=False, repetition=False, tool_arguments=False,
                       structured_output=False)
    asked = Asked({**ENGLISH, "tools": [WEATHER], "response_format": {"type": "json_object"}}, "chat")
    assert defects(asked, Answer(THAI_TEXT, finish="stop"), off) == []
    assert defects(asked, Answer("", finish="stop"), off) == []
    assert defects(asked, Answer("the " * 400, finish="length"), off) == []
    assert defects(asked, Answer("", [ToolCall("get_weather", "{")], "tool_calls"), off) == []
    assert defects(asked, Answer("nope", finish="stop"), off) == []


def test_a_refusal_is_no_defect() -> None:
    body = chat({"role": "assistant", "content": None, "refusal": "I can't help with that."})
    assert whole_defects(Asked(ENGLISH, "chat"), body, "chat", ON) == []


def test_whole_bodies_of_each_wire_are_read() -> None:
    assert whole_defects(Asked(ENGLISH, "chat"), chat({"role": "assistant", "content": ""}), "chat", ON) == [EMPTY]
    response = orjson.dumps({"object": "response", "status": "completed", "output": [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": THAI_TEXT}]}]})
    assert whole_defects(Asked({"input": "hello there"}, "responses"), response, "responses", ON) == [WRONG_SCRIPT]
    message = orjson.dumps({"type": "message", "content": [], "stop_reason": "end_turn"})
    assert whole_defects(Asked(ENGLISH, "messages"), message, "messages", ON) == [EMPTY]
    call = chat({"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"ci'}}]}, "tool_calls")
    assert whole_defects(Asked({**ENGLISH, "tools": [WEATHER]}, "chat"), call, "chat", ON) == [TOOL_ARGS_NOT_JSON]


class Relayed:
    """A stream relayed as the gateway relays it: its transcript parses each event once, the watch reads it."""

    def __init__(self, asked: Asked) -> None:
        self.watch = StreamWatch(asked, ON)
        self.transcript = Transcript(asked.endpoint, None, self.watch)
        self.watch.text, self.watch.text_bytes = self.transcript.text, self.transcript.text_bytes

    def feed(self, chunk: bytes) -> list[str]:
        self.transcript.add(chunk)
        return self.watch.look()

    def end(self) -> list[str]:
        return self.watch.end()


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"


def test_a_stream_loop_is_found_while_it_flows_before_it_ends() -> None:
    watch = Relayed(Asked(ENGLISH, "chat"))
    found: list[str] = []
    for _ in range(400):
        found += watch.feed(chunk({"content": "the "}))
    assert found == [REPETITION]
    assert watch.end() == []   # reported once


def test_a_stream_with_broken_tool_arguments_is_found_at_its_end() -> None:
    watch = Relayed(Asked({**ENGLISH, "tools": [WEATHER]}, "chat"))
    watch.feed(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "get_weather", "arguments": ""}}]}))
    watch.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Os'}}]}))
    watch.feed(chunk({}, "tool_calls") + b"data: [DONE]\n\n")
    assert watch.end() == [TOOL_ARGS_NOT_JSON]


def test_an_ordinary_stream_has_no_defect() -> None:
    watch = Relayed(Asked(ENGLISH, "chat"))
    for word in PROSE.split():
        assert watch.feed(chunk({"content": word + " "})) == []
    watch.feed(chunk({}, "stop"))
    assert watch.end() == []


def test_messages_and_responses_streams_are_read() -> None:
    watch = Relayed(Asked(ENGLISH, "messages"))
    events = [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": THAI_TEXT}},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}]
    for e in events:
        watch.feed(b"event: x\ndata: " + orjson.dumps(e) + b"\n\n")
    assert watch.end() == [WRONG_SCRIPT]
    watch = Relayed(Asked({"input": "hi"}, "responses"))
    for e in [{"type": "response.output_item.added", "output_index": 0, "item": {"type": "function_call", "name": "f"}},
              {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{oops"},
              {"type": "response.completed", "response": {"status": "completed"}}]:
        watch.feed(b"data: " + orjson.dumps(e) + b"\n\n")
    assert watch.end() == [TOOL_ARGS_NOT_JSON]


def test_a_schema_with_regular_expressions_is_not_run_in_the_gateway() -> None:
    evil = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}}}
    asked = Asked({**ENGLISH, "tools": [evil]}, "chat")
    answer = Answer("", [ToolCall("f", orjson.dumps({"s": "a" * 40 + "!"}).decode())], "tool_calls")
    assert defects(asked, answer, ON) == []     # not validated at all: the catastrophic regex never runs


def test_a_deeply_nested_request_is_searched_without_recursion() -> None:
    deep: Any = "hello"
    for _ in range(5000):
        deep = [deep]
    asked = Asked({"messages": [{"role": "user", "content": deep}]}, "chat")
    assert defects(asked, Answer(THAI_TEXT, finish="stop"), ON) == [WRONG_SCRIPT]


def test_a_long_streams_watch_keeps_tool_call_arguments_in_few_pieces_not_one_per_event() -> None:
    from gateway.quality.answer_read import PIECES

    relayed = Relayed(Asked({**ENGLISH, "tools": [WEATHER]}, "chat"))
    for piece in ['{"city": ', '"Os', 'lo"}'] * 100:
        call = {"index": 0, "function": {"arguments": piece}}
        relayed.feed(b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}) + b"\n\n")
    parts = relayed.watch.calls[0]
    assert len(parts) <= PIECES + 1 and "".join(parts[1:]) == '{"city": "Oslo"}' * 100


def test_a_streamed_tool_call_finishing_with_arguments_that_are_not_json_is_flagged_at_its_finish() -> None:
    watch = Relayed(Asked({**ENGLISH, "tools": [WEATHER]}, "chat"))
    watch.feed(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "get_weather", "arguments": '{"ci'}}]}))
    assert not watch.watch.broken_call            # not finished yet: arguments still coming
    watch.feed(chunk({}, "tool_calls"))
    assert watch.watch.broken_call


def test_a_streamed_tool_call_cut_by_the_token_limit_or_whole_is_not_flagged() -> None:
    for args, finish in (('{"ci', "length"), ('{"city": "Oslo"}', "tool_calls")):
        watch = Relayed(Asked({**ENGLISH, "tools": [WEATHER]}, "chat"))
        watch.feed(chunk({"tool_calls": [{"index": 0, "function": {"name": "get_weather", "arguments": args}}]}))
        watch.feed(chunk({}, finish))
        assert not watch.watch.broken_call, (args, finish)


def test_messages_and_responses_tool_calls_are_flagged_before_the_event_a_client_acts_on() -> None:
    watch = Relayed(Asked(ENGLISH, "messages"))
    for e in [{"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "name": "f", "input": {}}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a'}},
              {"type": "content_block_stop", "index": 0},
              {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}]:
        watch.feed(b"data: " + orjson.dumps(e) + b"\n\n")
    assert watch.watch.broken_call
    watch = Relayed(Asked({"input": "hi"}, "responses"))
    for e in [{"type": "response.output_item.added", "output_index": 0, "item": {"type": "function_call", "name": "f"}},
              {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{oops"},
              {"type": "response.function_call_arguments.done", "output_index": 0, "arguments": "{oops"}]:
        watch.feed(b"data: " + orjson.dumps(e) + b"\n\n")
    assert watch.watch.broken_call
