"""Stitching a restarted Responses stream onto the one the client has, event by event."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.resume import Diverged
from gateway.resume_responses import ResponsesSplice, responses_so_far
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
