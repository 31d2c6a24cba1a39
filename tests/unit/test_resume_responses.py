"""Stitching a restarted Responses stream onto the one the client has, event by event."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.flow.resume.chat import Diverged
from gateway.flow.resume.responses import ResponsesSplice, responses_so_far
from gateway.wires.events import json_events, named_event, split_events


def stream(response_id: str, words: list[str], first_seq: int = 0, done: bool = True) -> list[dict[str, Any]]:
    item = f"msg_{response_id}"
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": response_id, "output": []}},
        {"type": "response.in_progress", "response": {"id": response_id, "output": []}},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": item, "type": "message", "role": "assistant", "content": []}},
        {"type": "response.content_part.added", "item_id": item, "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": ""}}]
    events += [{"type": "response.output_text.delta", "item_id": item, "output_index": 0, "content_index": 0,
                "delta": w} for w in words]
    if done:
        text = "".join(words)
        whole = {"id": item, "type": "message", "content": [{"type": "output_text", "text": text}]}
        events += [{"type": "response.output_text.done", "item_id": item, "output_index": 0, "text": text},
                   {"type": "response.content_part.done", "item_id": item, "output_index": 0,
                    "part": {"type": "output_text", "text": text}},
                   {"type": "response.output_item.done", "output_index": 0, "item": whole},
                   {"type": "response.completed", "response": {"id": response_id, "output": [whole]}}]
    for n, e in enumerate(events):
        e["sequence_number"] = first_seq + n
    return events


def raw(events: list[dict[str, Any]]) -> bytes:
    return b"".join(named_event(e["type"], e) for e in events)


def test_the_client_gets_only_what_follows_its_text_under_its_own_ids_and_sequence() -> None:
    had = stream("resp_client", ["Hel", "lo"], done=False)
    so_far = responses_so_far([raw(had)])
    assert (so_far.text, so_far.stitchable, so_far.open_index, so_far.next_seq) == ("Hello", True, 0, len(had))
    out = ResponsesSplice(so_far).feed(raw(stream("resp_other", ["Hello", " world"])))
    events = list(json_events(split_events(out)[0]))
    assert [e["type"] for e in events] == ["response.output_text.delta", "response.output_text.done",
                                           "response.content_part.done", "response.output_item.done",
                                           "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(had), len(had) + 5))
    assert events[0]["delta"] == " world" and events[0]["item_id"] == "msg_resp_client"
    assert events[1]["text"] == "Hello world"
    final = events[-1]["response"]
    assert final["id"] == "resp_client"
    assert final["output"][0]["id"] == "msg_resp_client"
    assert final["output"][0]["content"][0]["text"] == "Hello world"


def test_a_restart_that_says_something_else_diverges() -> None:
    so_far = responses_so_far([raw(stream("resp_client", ["Hello"], done=False))])
    with pytest.raises(Diverged):
        ResponsesSplice(so_far).feed(raw(stream("resp_other", ["Goodbye"])))


def test_a_stream_with_a_function_call_cannot_be_stitched() -> None:
    had = [{"type": "response.created", "response": {"id": "r"}, "sequence_number": 0},
           {"type": "response.output_item.added", "output_index": 0, "sequence_number": 1,
            "item": {"id": "fc", "type": "function_call", "arguments": ""}},
           {"type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "fc",
            "delta": '{"ci', "sequence_number": 2}]
    assert not responses_so_far([raw(had)]).stitchable


def reasoned(events: list[dict[str, Any]], sealed: str, left_open: bool = False) -> list[dict[str, Any]]:
    """The same stream with a reasoning item before the message, as Codex asks for it."""
    item = {"id": f"rs_{sealed}", "type": "reasoning", "summary": [], "encrypted_content": sealed}
    out = [e for e in events[:2]] + [{"type": "response.output_item.added", "output_index": 0,
                                      "item": {**item, "encrypted_content": None}}]
    if not left_open:
        out.append({"type": "response.output_item.done", "output_index": 0, "item": item})
        for e in events[2:]:
            e = dict(e)
            if "output_index" in e:
                e["output_index"] += 1
            if e["type"] == "response.completed":
                e["response"] = {**e["response"], "output": [item, *e["response"]["output"]]}
            out.append(e)
    for n, e in enumerate(out):
        e["sequence_number"] = n
    return out


def test_a_reasoning_item_before_the_text_still_lets_the_restart_carry_on_the_text() -> None:
    had = reasoned(stream("resp_client", ["Hel", "lo"], done=False), "sealed-by-primary")
    so_far = responses_so_far([raw(had)])
    assert so_far.stitchable and so_far.text == "Hello" and so_far.open_index == 1
    out = ResponsesSplice(so_far).feed(raw(reasoned(stream("resp_other", ["Hello", " world"]), "sealed-by-secondary")))
    events = list(json_events(split_events(out)[0]))
    assert all(e.get("output_index") in (None, 1) for e in events)   # the restart's own reasoning is not relayed
    assert events[0]["delta"] == " world"
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["encrypted_content"] == "sealed-by-primary"
    assert final["output"][1]["content"][0]["text"] == "Hello world"


def test_a_reasoning_item_the_break_left_open_is_closed_before_the_restart_answers() -> None:
    had = reasoned(stream("resp_client", [], done=False), "sealed-by-primary", left_open=True)
    so_far = responses_so_far([raw(had)])
    assert so_far.stitchable and so_far.open_reasoning == 0
    out = ResponsesSplice(so_far).feed(raw(reasoned(stream("resp_other", ["Hi"]), "sealed-by-secondary")))
    events = list(json_events(split_events(out)[0]))
    assert events[0]["type"] == "response.output_item.done" and events[0]["output_index"] == 0
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["type"]) for e in added] == [(1, "message")]
    assert events[-1]["response"]["output"][-1]["content"][0]["text"] == "Hi"
