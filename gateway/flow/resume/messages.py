"""Continuing a broken Messages (Anthropic API) stream on another deployment, stitched into one.

The client already has a `message_start` and some content blocks, the last text block perhaps still
open. The continuation is a whole new message: its `message_start` and pings are dropped (their
usage carried into the closing `message_delta`, so the meter still sees the input tokens), its first
text block is merged into the client's open one, and later blocks are renumbered after the client's.
For a restart (no prefill), the text the client already has is first taken out, as for chat. Pure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.flow.resume.chat import Diverged, fed_through
from gateway.providers.transcript import folded_text
from gateway.wires.events import event_data, named_event, split_events


@dataclass(frozen=True, slots=True)
class MessagesSoFar:
    text: str                   # the text the client has
    stitchable: bool            # only text blocks so far: a tool_use or thinking block cannot be continued
    open_block: int | None      # the index of a text block still open, if any
    next_index: int             # the index the next new block takes


class MessagesFold:
    """What the client has of a Messages stream's blocks, event by event (the text is the transcript's)."""

    __slots__ = ("stitchable", "open_block", "next_index")

    def __init__(self) -> None:
        self.stitchable = True
        self.open_block: int | None = None
        self.next_index = 0

    def event(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "content_block_start":
            index = int(data.get("index", self.next_index))
            self.stitchable = self.stitchable and (data.get("content_block") or {}).get("type") == "text"
            self.open_block, self.next_index = index, max(self.next_index, index + 1)
        elif kind == "content_block_delta":
            if (data.get("delta") or {}).get("type") != "text_delta":
                self.stitchable = False
        elif kind == "content_block_stop":
            self.open_block = None

    def so_far(self, text: str) -> MessagesSoFar:
        return MessagesSoFar(text, self.stitchable, self.open_block, self.next_index)


def messages_so_far(relayed: Iterable[bytes]) -> MessagesSoFar:
    """What the client has of a Messages stream, from the stream's bytes."""
    fold = MessagesFold()
    return fold.so_far(folded_text(relayed, "messages", fold))


class MessagesSplice:
    """Turns a continuation's Messages events into the events that carry on the client's stream."""

    def __init__(self, so_far: MessagesSoFar, skip: str = "") -> None:
        self.open_block = so_far.open_block
        self.next_index = so_far.next_index
        self.left = skip                        # restart: the text to take out first
        self.indices: dict[int, int] = {}       # continuation's block index → the client's
        self.dropped: set[int] = set()          # continuation blocks that were all prefix, not shown
        self.start_usage: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> bytes:
        events, _ = split_events(chunk)
        return b"".join(self._event(e) for e in events)

    def _event(self, event: bytes) -> bytes:
        try:
            data = orjson.loads(event_data(event))
        except orjson.JSONDecodeError:
            return b""
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "message_start":
            self.start_usage = (data.get("message") or {}).get("usage") or {}
            return b""
        if kind == "ping":
            return b""
        if kind == "content_block_start":
            return self._start(data)
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_stop":
            index = data.get("index", 0)
            if index in self.dropped or self.indices.get(index) is None:
                return b""
            return named_event(kind, {**data, "index": self.indices[index]})
        if kind == "message_delta":
            if self.left:
                raise Diverged()
            usage = {**{k: v for k, v in self.start_usage.items() if isinstance(v, int)}, **(data.get("usage") or {})}
            return named_event(kind, {**data, "usage": usage})
        if kind == "message_stop" and self.left:
            raise Diverged()
        return event + b"\n\n"

    def _start(self, data: dict[str, Any]) -> bytes:
        index = data.get("index", 0)
        text = (data.get("content_block") or {}).get("type") == "text"
        if self.left and not text:
            raise Diverged()
        if text and self.open_block is not None:
            self.indices[index], self.open_block = self.open_block, None   # carries on the client's open block
            return b""
        if self.left:   # a restart's text block that may turn out to be all prefix: shown once it says more
            self.dropped.add(index)
            return b""
        self.indices[index] = self.next_index
        self.next_index += 1
        return named_event("content_block_start", {**data, "index": self.indices[index]})

    def _delta(self, data: dict[str, Any]) -> bytes:
        index = data.get("index", 0)
        delta = data.get("delta") or {}
        if self.left:
            if delta.get("type") != "text_delta":
                raise Diverged()
            text = delta.get("text") or ""
            if self.left.startswith(text):
                self.left = self.left[len(text):]
                return b""
            if not text.startswith(self.left):
                raise Diverged()
            delta = {**delta, "text": text[len(self.left):]}
            self.left = ""
        out = b""
        if index in self.dropped:   # the rest of a restarted block: its start comes now
            self.dropped.discard(index)
            self.indices[index] = self.next_index
            self.next_index += 1
            out = named_event("content_block_start", {"type": "content_block_start", "index": self.indices[index],
                                                      "content_block": {"type": "text", "text": ""}})
        return out + named_event("content_block_delta", {**data, "index": self.indices.get(index, index),
                                                         "delta": delta})


def spliced(first: bytes, rest: AsyncIterator[bytes] | None, so_far: MessagesSoFar,
            skip: str = "") -> AsyncIterator[bytes]:
    """A continuation Messages stream as the rest of the client's one."""
    return fed_through(first, rest, MessagesSplice(so_far, skip).feed)
