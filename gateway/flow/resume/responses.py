"""Continuing a broken Responses stream on another deployment, stitched into one.

The Responses API has no prefill (an assistant message at the end of the input starts a new turn),
so a broken stream is *restarted*: the same request goes to the next deployment and only what comes
after the text the client already has is relayed, provided the new answer begins with exactly that
text (else `Diverged`: no honest continuation exists). The continuation's own `response.created` and
`in_progress` are dropped, its message item carries on the client's open one, later items are
renumbered after the client's, every event gets the client's next `sequence_number`, and the
terminal event's Response keeps the client's id and holds the whole text. Pure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.flow.resume.chat import Diverged, fed_through
from gateway.providers.transcript import folded_text
from gateway.wires.events import event_data, named_event, split_events

_TERMINAL = frozenset({"response.completed", "response.incomplete"})


@dataclass(frozen=True, slots=True)
class ResponsesSoFar:
    text: str                        # the text the client has
    stitchable: bool                 # only message text so far: a function call cannot be continued
    response_id: str | None          # the id the client was given
    item_id: str | None              # the message item that text is in
    open_index: int | None           # its output_index while it is still open
    next_index: int                  # the output_index a new item takes
    next_seq: int                    # the sequence_number the next event takes
    # Reasoning items the client was sent, as it was sent them (by output_index), and the one still
    # open at the break: the restart reasons afresh, and its own reasoning is not the client's.
    reasoning: tuple[tuple[int, dict[str, Any]], ...] = ()
    open_reasoning: int | None = None


class ResponsesFold:
    """What the client has of a Responses stream's items, event by event (the text is the transcript's)."""

    __slots__ = ("stitchable", "response_id", "item_id", "open_index", "next_index", "next_seq", "reasoning",
                 "open_reasoning")

    def __init__(self) -> None:
        self.stitchable = True
        self.response_id: str | None = None
        self.item_id: str | None = None
        self.open_index: int | None = None
        self.next_index = 0
        self.next_seq = 0
        self.reasoning: dict[int, dict[str, Any]] = {}
        self.open_reasoning: int | None = None

    def event(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        self.next_seq = max(self.next_seq, int(data.get("sequence_number", -1)) + 1)
        if kind == "response.created":
            self.response_id = (data.get("response") or {}).get("id")
        elif kind == "response.output_item.added":
            item = data.get("item") or {}
            index = int(data.get("output_index", self.next_index))
            self.next_index = max(self.next_index, index + 1)
            if item.get("type") == "reasoning":
                self.reasoning[index], self.open_reasoning = dict(item), index
                return
            self.stitchable = self.stitchable and item.get("type") == "message"
            self.item_id, self.open_index = item.get("id"), index
        elif kind == "response.output_item.done":
            index = int(data.get("output_index", -1))
            if index in self.reasoning:
                self.reasoning[index], self.open_reasoning = dict(data.get("item") or self.reasoning[index]), None
            else:
                self.open_index = None
        elif isinstance(kind, str) and kind.startswith("response.reasoning"):
            return   # a reasoning summary's parts and text: whole as they are
        elif kind not in ("response.in_progress", "response.content_part.added", "response.content_part.done",
                          "response.output_text.delta", "response.output_text.done"):
            self.stitchable = False   # a function call's arguments, refusals…

    def so_far(self, text: str) -> ResponsesSoFar:
        return ResponsesSoFar(text, self.stitchable, self.response_id, self.item_id, self.open_index,
                              self.next_index, self.next_seq, tuple(sorted(self.reasoning.items())),
                              self.open_reasoning)


def responses_so_far(relayed: Iterable[bytes]) -> ResponsesSoFar:
    """What the client has of a Responses stream, from the stream's bytes."""
    fold = ResponsesFold()
    return fold.so_far(folded_text(relayed, "responses", fold))


class ResponsesSplice:
    """Turns a restarted answer's Responses events into the events that carry on the client's stream."""

    def __init__(self, so_far: ResponsesSoFar) -> None:
        self.so_far = so_far
        self.left = so_far.text              # the text to take out first
        self.seq = so_far.next_seq
        self.next_index = so_far.next_index
        self.indices: dict[int, int] = {}    # the continuation's output_index → the client's
        self.merged: int | None = None       # the continuation's item carried on the client's open one
        self.added: list[str] = []           # text the merged item added
        self.unsaid: set[int] = set()        # the continuation's own reasoning items: not relayed
        self.closing = so_far.open_reasoning  # the client's reasoning item the break left open

    def feed(self, chunk: bytes) -> bytes:
        events, _ = split_events(chunk)
        out = b""
        for event in events:
            try:
                data = orjson.loads(event_data(event))
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict):
                out += self._event(data)
        return out

    def _emit(self, data: dict[str, Any]) -> bytes:
        data["sequence_number"] = self.seq
        self.seq += 1
        return named_event(str(data["type"]), data)

    def _event(self, data: dict[str, Any]) -> bytes:
        kind = data.get("type")
        if kind in ("response.created", "response.in_progress"):
            return b""
        out = self._close_reasoning()
        return out + self._carried_on(kind, data)

    def _close_reasoning(self) -> bytes:
        """The client's reasoning item the break left open, closed as it stands, before anything else."""
        if self.closing is None:
            return b""
        index, self.closing = self.closing, None
        item = {**dict(self.so_far.reasoning)[index], "status": "completed"}
        return self._emit({"type": "response.output_item.done", "output_index": index, "item": item})

    def _carried_on(self, kind: Any, data: dict[str, Any]) -> bytes:
        index = data.get("output_index")
        if kind == "response.output_item.added" and (data.get("item") or {}).get("type") == "reasoning":
            self.unsaid.add(int(index or 0))
        if index is not None and int(index) in self.unsaid:
            return b""
        if kind in _TERMINAL:
            if self.left:
                raise Diverged()
            return self._emit({**data, "response": self._whole(data.get("response") or {})})
        if kind == "response.output_item.added":
            item = data.get("item") or {}
            if self.left and item.get("type") != "message":
                raise Diverged()
            if item.get("type") == "message" and self.so_far.open_index is not None and self.merged is None:
                self.merged = int(index or 0)
                return b""   # it carries on the item the client has open
            self.indices[int(index or 0)] = self.next_index
            self.next_index += 1
        if index is None or kind is None:
            return self._emit(data)
        if int(index) == self.merged:
            return self._merged(kind, data)
        return self._emit({**data, "output_index": self.indices.get(int(index), int(index))})

    def _merged(self, kind: str, data: dict[str, Any]) -> bytes:
        """An event of the continuation's message item, as one of the client's open item."""
        ids = {"output_index": self.so_far.open_index, "item_id": self.so_far.item_id}
        if kind == "response.content_part.added":
            return b""
        if kind == "response.output_text.delta":
            text = str(data.get("delta") or "")
            if self.left:
                if self.left.startswith(text):
                    self.left = self.left[len(text):]
                    return b""
                if not text.startswith(self.left):
                    raise Diverged()
                text, self.left = text[len(self.left):], ""
            self.added.append(text)
            return self._emit({**data, **ids, "delta": text}) if text else b""
        if self.left:
            raise Diverged()
        whole = self.so_far.text + "".join(self.added)
        if kind == "response.output_text.done":
            return self._emit({**data, **ids, "text": whole})
        if kind == "response.content_part.done":
            return self._emit({**data, **ids, "part": {**(data.get("part") or {}), "text": whole}})
        if kind == "response.output_item.done":
            return self._emit({**data, "output_index": self.so_far.open_index, "item": self._item(data.get("item"))})
        return self._emit({**data, **ids})

    def _item(self, given: Any) -> dict[str, Any]:
        item: dict[str, Any] = dict(given or {})
        item["id"] = self.so_far.item_id
        parts = list(item.get("content") or [{"type": "output_text", "annotations": []}])
        parts[0] = {**parts[0], "text": self.so_far.text + "".join(self.added)}
        item["content"] = parts
        return item

    def _whole(self, response: dict[str, Any]) -> dict[str, Any]:
        """The terminal Response under the client's id, its merged item whole."""
        mine = [{**item, "status": "completed"} for _, item in self.so_far.reasoning]
        output = mine + [self._item(item) if i == self.merged else item
                         for i, item in enumerate(response.get("output") or []) if i not in self.unsaid]
        return {**response, "id": self.so_far.response_id or response.get("id"), "output": output}


def responses_spliced(first: bytes, rest: AsyncIterator[bytes] | None, so_far: ResponsesSoFar) -> AsyncIterator[bytes]:
    """A restarted Responses stream as the rest of the client's one."""
    return fed_through(first, rest, ResponsesSplice(so_far).feed)
