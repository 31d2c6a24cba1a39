"""Stitching a Messages continuation into the client's stream: events dropped, merged, renumbered."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.flow.resume.chat import Diverged
from gateway.flow.resume.messages import MessagesSplice, messages_so_far
from gateway.wires.events import event_data, named_event, split_events


def ev(kind: str, **data: Any) -> bytes:
    return named_event(kind, {"type": kind, **data})


START = ev("message_start", message={"id": "m", "usage": {"input_tokens": 7, "output_tokens": 1}})


def text_block(index: int, *texts: str, stop: bool = True) -> bytes:
    out = ev("content_block_start", index=index, content_block={"type": "text", "text": ""})
    out += b"".join(ev("content_block_delta", index=index, delta={"type": "text_delta", "text": t}) for t in texts)
    return out + (ev("content_block_stop", index=index) if stop else b"")


END = ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 9}) + ev("message_stop")


def events(raw: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(event_data(e)) for e in split_events(raw)[0]]


def test_the_client_s_partial_answer_and_its_open_block() -> None:
    so_far = messages_so_far([START, text_block(0, "Hel", "lo", stop=False)])
    assert (so_far.text, so_far.stitchable, so_far.open_block, so_far.next_index) == ("Hello", True, 0, 1)
    tool = ev("content_block_start", index=1, content_block={"type": "tool_use", "id": "t", "name": "f", "input": {}})
    assert not messages_so_far([START, text_block(0, "Hi"), tool]).stitchable


def test_a_continuation_carries_on_the_open_block_as_one_message() -> None:
    so_far = messages_so_far([START, text_block(0, "Hello", stop=False)])
    out = events(MessagesSplice(so_far).feed(START + ev("ping") + text_block(0, " world") + END))
    assert [e["type"] for e in out] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert out[0]["index"] == 0 and out[0]["delta"]["text"] == " world"
    assert out[2]["usage"] == {"input_tokens": 7, "output_tokens": 9}   # the dropped start's input carried


def test_after_a_closed_block_the_continuation_s_blocks_are_numbered_after_the_client_s() -> None:
    so_far = messages_so_far([START, text_block(0, "Hello")])
    out = events(MessagesSplice(so_far).feed(START + text_block(0, "More") + END))
    assert [(e["type"], e.get("index")) for e in out[:3]] == [
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_stop", 1)]


def test_a_restart_relays_only_what_follows_the_client_s_text() -> None:
    so_far = messages_so_far([START, text_block(0, "Hello wo", stop=False)])
    out = events(MessagesSplice(so_far, skip="Hello wo").feed(START + text_block(0, "Hello", " world") + END))
    assert [e["delta"]["text"] for e in out if e["type"] == "content_block_delta"] == ["rld"]
    assert all(e.get("index", 0) == 0 for e in out)


@pytest.mark.parametrize("continuation", [
    text_block(0, "Goodbye") + END,
    text_block(0, "Hel") + END,
    ev("content_block_start", index=0, content_block={"type": "tool_use", "id": "t", "name": "f", "input": {}}),
])
def test_a_restart_that_goes_another_way_is_diverged(continuation: bytes) -> None:
    so_far = messages_so_far([START, text_block(0, "Hello", stop=False)])
    with pytest.raises(Diverged):
        MessagesSplice(so_far, skip="Hello").feed(START + continuation)
