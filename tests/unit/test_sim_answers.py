"""The simulator's answers: the built-in canary suite passes against it, and fails in dumb mode."""

from __future__ import annotations

import orjson

from gateway.quality.checks import judge
from gateway.quality.suite import DEFAULT_SUITE
from gateway.sim.answers import answer, reply_words, tool_arguments_text

TEXT_ITEMS = [i for i in DEFAULT_SUITE if i.expect.tool_call is None]


def as_completion(content: str | None) -> bytes:
    return orjson.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


def messages(item_index: int) -> list[dict[str, str]]:
    return [m.model_dump() for m in TEXT_ITEMS[item_index].messages]


def test_every_text_item_of_the_suite_passes_against_a_healthy_simulator() -> None:
    for i, item in enumerate(TEXT_ITEMS):
        assert judge(item, as_completion(answer(messages(i), dumb=False))).passed, item.name


def test_every_text_item_fails_against_a_dumb_one_with_a_fluent_answer() -> None:
    for i, item in enumerate(TEXT_ITEMS):
        reply = answer(messages(i), dumb=True)
        assert reply is not None and len(reply.split()) >= 2, item.name
        assert not judge(item, as_completion(reply)).passed, item.name


def test_prompts_that_are_no_task_keep_the_usual_filler() -> None:
    hello = [{"role": "user", "content": "hello there"}]
    assert answer(hello, dumb=False) is None
    assert reply_words("alpha", 4, None, hello, dumb=False) == (["alpha", "t1", "t2", "t3"], "stop")
    words, _ = reply_words("alpha", 4, None, hello, dumb=True)
    assert len(words) == 4 and words[0] == "Certainly!"


def test_a_dumb_tool_call_has_broken_arguments() -> None:
    assert orjson.loads(tool_arguments_text({"city": "sim"}, dumb=False)) == {"city": "sim"}
    broken = tool_arguments_text({"city": "sim"}, dumb=True)
    try:
        orjson.loads(broken)
    except orjson.JSONDecodeError:
        return
    raise AssertionError(f"{broken!r} parsed")
