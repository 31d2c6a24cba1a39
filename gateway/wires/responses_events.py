"""Chat completion stream chunks back as a Responses stream: `response.*` events with their
`sequence_number`, items opened and closed as the chunks say, and the terminal event carrying the
whole Response. Pure; the request and the whole answer are `responses_chat.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.wires.events import named_event
from gateway.wires.responses_chat import call_item, finish_response, message_item, skeleton, usage_in
from gateway.wires.responses_tools import ToolName, as_client_named


@dataclass
class StreamState:
    """Where a translated stream is: the Response being built, and the items still open."""

    body: Mapping[str, Any]
    response_id: str
    created_at: int
    response: dict[str, Any] | None = None
    seq: int = 0
    text: list[str] | None = None           # the open message item's text so far
    text_index: int = -1
    calls: dict[int, int] = field(default_factory=dict)   # chat tool index → output index
    open_calls: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    names: Mapping[str, ToolName] = field(default_factory=dict)   # flattened tool names → the client's

    def event(self, data: dict[str, Any]) -> bytes:
        data["sequence_number"] = self.seq
        self.seq += 1
        return named_event(data["type"], data)


def events_in(state: StreamState, chunk: Mapping[str, Any]) -> list[bytes]:
    """One chat chunk → the `response.*` events it amounts to (0..n)."""
    out: list[bytes] = []
    if state.response is None:
        state.response = skeleton(state.body, state.response_id, state.created_at,
                                  chunk.get("model") or state.body.get("model") or "")
        out.append(state.event({"type": "response.created", "response": dict(state.response)}))
        out.append(state.event({"type": "response.in_progress", "response": dict(state.response)}))
    if chunk.get("usage"):
        state.usage = usage_in(chunk["usage"])
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content"):
            out += _text_delta(state, delta["content"])
        for call in delta.get("tool_calls") or ():
            out += _call_delta(state, call)
        if choice.get("finish_reason"):
            state.finish_reason = choice["finish_reason"]
    return out


def _text_delta(state: StreamState, text: str) -> list[bytes]:
    assert state.response is not None
    out: list[bytes] = []
    if state.text is None:
        state.text = []
        state.text_index = len(state.response["output"])
        item = message_item(f"msg_{state.response_id.removeprefix('resp_')}", "", "in_progress")
        state.response["output"].append(item)
        out.append(state.event({"type": "response.output_item.added", "output_index": state.text_index,
                                "item": item}))
        out.append(state.event({"type": "response.content_part.added", "item_id": item["id"],
                                "output_index": state.text_index, "content_index": 0,
                                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}))
    state.text.append(text)
    item_id = state.response["output"][state.text_index]["id"]
    out.append(state.event({"type": "response.output_text.delta", "item_id": item_id,
                            "output_index": state.text_index, "content_index": 0, "delta": text, "logprobs": []}))
    return out


def _call_delta(state: StreamState, call: Mapping[str, Any]) -> list[bytes]:
    assert state.response is not None
    out: list[bytes] = []
    index = call.get("index", 0)
    fn = call.get("function") or {}
    if index not in state.calls:
        out += _close_text(state)
        position = len(state.response["output"])
        suffix = state.response_id.removeprefix("resp_")
        item = call_item(f"fc_{suffix}_{index}", call.get("id") or f"call_{suffix}_{index}", fn.get("name") or "",
                          "", "in_progress")
        state.calls[index] = position
        state.open_calls.append(position)
        state.response["output"].append(item)
        out.append(state.event({"type": "response.output_item.added", "output_index": position,
                                "item": as_client_named(dict(item), state.names)}))
    position = state.calls[index]
    item = state.response["output"][position]
    if fn.get("arguments"):
        item["arguments"] += fn["arguments"]
        meant = state.names.get(item["name"])
        if meant is None or not meant.custom:   # a freeform tool's input arrives whole, when its item is done
            out.append(state.event({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                                    "output_index": position, "delta": fn["arguments"]}))
    return out


def _close_text(state: StreamState) -> list[bytes]:
    if state.text is None:
        return []
    assert state.response is not None
    text = "".join(state.text)
    position = state.text_index
    item = message_item(state.response["output"][position]["id"], text, "completed")
    state.response["output"][position] = item
    state.text = None
    part = item["content"][0]
    return [
        state.event({"type": "response.output_text.done", "item_id": item["id"], "output_index": position,
                     "content_index": 0, "text": text, "logprobs": []}),
        state.event({"type": "response.content_part.done", "item_id": item["id"], "output_index": position,
                     "content_index": 0, "part": part}),
        state.event({"type": "response.output_item.done", "output_index": position, "item": item}),
    ]


def finish(state: StreamState) -> list[bytes]:
    """The events that close a stream whose chat upstream ended cleanly: open items done, then the
    terminal `response.completed` (or `response.incomplete`) with the whole Response."""
    if state.response is None:
        state.response = skeleton(state.body, state.response_id, state.created_at, state.body.get("model") or "")
    out = _close_text(state)
    for position in state.open_calls:
        item = state.response["output"][position]
        item["status"] = "completed"
        item = state.response["output"][position] = as_client_named(item, state.names)
        if item["type"] == "function_call":
            out.append(state.event({"type": "response.function_call_arguments.done", "item_id": item["id"],
                                    "output_index": position, "arguments": item["arguments"]}))
        out.append(state.event({"type": "response.output_item.done", "output_index": position, "item": dict(item)}))
    state.open_calls = []
    finish_response(state.response, state.finish_reason)
    state.response["usage"] = state.usage
    kind = "response.completed" if state.response["status"] == "completed" else "response.incomplete"
    out.append(state.event({"type": kind, "response": state.response}))
    return out
