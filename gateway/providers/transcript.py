"""What the gateway keeps of a stream it relays: only what a resume and the meter need, never the
bytes it relayed.

A stream may last minutes and carry thousands of events; keeping each chunk made a long answer's
memory grow with its length (a few hundred bytes per event, per open stream). What is kept instead,
folded as events pass:

- the answer's text and its tool-call arguments so far, as UTF-8 (what a resume continues from, what
  a cut stream is charged for), bounded by the upstream answer limit that bounds the stream;
- the events relayed (a Responses error event's sequence number);
- the first and last events of the answering stream that carry usage (the meter's reading), and a
  Responses stream's terminal event (the Response the client was given);
- for Messages and Responses, a fold of their own (flow/resume/) that tracks blocks and items.

Each event is parsed once, here; an event split across chunks waits for its end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from gateway.providers.sse import complete_events
from gateway.wires.events import event_data, split_events

_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
_TERMINAL = (b"response.completed", b"response.incomplete")


class EventFold(Protocol):
    """Reads each parsed event of a stream, for what a resume of its API needs."""

    def event(self, data: dict[str, Any]) -> None: ...


class Transcript:
    """One stream's text, tool-call arguments, usage events and counts, fed chunk by chunk."""

    __slots__ = ("endpoint", "fold", "watch", "events", "had_tools", "terminal", "_tail", "_text", "_arguments",
                 "_text_from", "_arguments_from", "_usage")

    def __init__(self, endpoint: str = "chat", fold: EventFold | None = None, watch: EventFold | None = None) -> None:
        self.endpoint = endpoint
        self.fold = fold
        self.watch = watch              # the answer checks' reading of the same parsed events
        self.events = 0                 # complete events relayed
        self.had_tools = False          # a chat stream carried tool calls
        self.terminal: bytes | None = None   # a Responses stream's terminal event data
        self._tail = b""                # the start of an event whose end has not come yet
        self._text = bytearray()
        self._arguments = bytearray()
        self._text_from = 0             # where the answering stream's part begins (after a resume)
        self._arguments_from = 0
        self._usage: list[bytes] = []   # the answering stream's first and last usage events

    def add(self, chunk: bytes) -> None:
        """Folds in one relayed chunk."""
        if self._tail:
            chunk = self._tail + chunk
        if b"\r" in chunk:     # CRLF framing: the general path
            end = complete_events(chunk)
            self._tail = chunk[end:]
            events, _ = split_events(chunk[:end])
        else:                   # LF framing, as nearly every upstream sends: split once, no copies
            events = chunk.split(b"\n\n")
            self._tail = events.pop()
        for event in events:
            if not event.strip():
                continue
            self.events += 1
            # One `data:` line is the usual event: its payload without joining lines.
            data = event[6:] if event.startswith(b"data: ") and b"\n" not in event else event_data(event)
            if data and data != b"[DONE]":
                self._read(data)

    def _read(self, payload: bytes) -> None:
        if b'"usage"' in payload and _USAGE_OBJECT.search(payload):
            if len(self._usage) < 2:
                self._usage.append(payload)
            else:
                self._usage[1] = payload
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        if self.endpoint == "messages":
            self._messages(data)
        elif self.endpoint == "responses":
            self._responses(data, payload)
        else:
            self._chat(data)
        if self.fold is not None:
            self.fold.event(data)
        if self.watch is not None:
            self.watch.event(data)

    def _chat(self, data: dict[str, Any]) -> None:
        for choice in data.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            content = delta.get("content")
            if content and isinstance(content, str):
                self._text += content.encode()
            calls = delta.get("tool_calls")
            if calls:
                self.had_tools = True
                for call in calls if isinstance(calls, list) else ():
                    function = call.get("function") if isinstance(call, dict) else None
                    arguments = function.get("arguments") if isinstance(function, dict) else None
                    if isinstance(arguments, str):
                        self._arguments += arguments.encode()

    def _messages(self, data: dict[str, Any]) -> None:
        if data.get("type") != "content_block_delta":
            return
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return
        if isinstance(delta.get("text"), str):
            self._text += delta["text"].encode()
        elif isinstance(delta.get("partial_json"), str):
            self._arguments += delta["partial_json"].encode()

    def _responses(self, data: dict[str, Any], payload: bytes) -> None:
        kind = data.get("type")
        if kind == "response.output_text.delta" and isinstance(data.get("delta"), str):
            self._text += data["delta"].encode()
        elif kind == "response.function_call_arguments.delta" and isinstance(data.get("delta"), str):
            self._arguments += data["delta"].encode()
        elif isinstance(kind, str) and kind.encode() in _TERMINAL:
            self.terminal = payload

    def answering_from_here(self) -> None:
        """A resumed or restarted stream answers from now on: its usage and its own text start here."""
        self._text_from, self._arguments_from = len(self._text), len(self._arguments)
        self._usage = []

    def text(self) -> str:
        """The answer's text the client has, across resumes."""
        return self._text.decode("utf-8", "replace")

    def text_bytes(self) -> int:
        """How long the answer's text is so far, in UTF-8 bytes (without decoding it)."""
        return len(self._text)

    def answering_text(self) -> str:
        """The text the answering stream carried (since the last resume)."""
        return self._text[self._text_from:].decode("utf-8", "replace")

    def answering_output(self) -> str:
        """What the answering stream produced, tool-call arguments included: what it is charged for
        when it reported no usage."""
        return (self._text[self._text_from:] + self._arguments[self._arguments_from:]).decode("utf-8", "replace")

    def usage_events(self) -> list[bytes]:
        """The answering stream's first and last events that carry usage, as SSE data lines."""
        return [b"data: " + payload + b"\n\n" for payload in self._usage]

    def kept_bytes(self) -> int:
        """What this transcript holds beyond its fixed size (for the memory benchmark)."""
        return len(self._tail) + len(self._text) + len(self._arguments) + sum(map(len, self._usage)) \
            + len(self.terminal or b"")


def folded_text(relayed: Iterable[bytes], endpoint: str, fold: EventFold) -> str:
    """Feeds a stream's bytes through `fold`; returns the stream's text."""
    transcript = Transcript(endpoint, fold)
    for chunk in relayed:
        transcript.add(chunk)
    return transcript.text()
