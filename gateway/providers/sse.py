"""Server-sent events, parsed only as far as the gateway must: event boundaries and chat deltas."""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson

DONE_EVENT = b"data: [DONE]\n\n"
_FINISH_REASON = re.compile(rb'"finish_reason"\s*:\s*"')


def finishes_a_choice(chunk: bytes) -> bool:
    """Does an event in `chunk` carry a finish reason (a string, not null)? A regex, not a parse:
    it runs on every relayed chunk."""
    return _FINISH_REASON.search(chunk) is not None


def complete_events(buffer: bytes) -> int:
    """Where the last complete event in `buffer` ends (0 if none): relaying whole events only means
    an upstream that breaks off mid-event never leaves half a line in the client's stream."""
    lf = buffer.rfind(b"\n\n")
    crlf = buffer.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def data_payloads(stream: Iterable[bytes]) -> list[bytes]:
    """The `data:` payloads of the events in relayed stream bytes, `[DONE]` left out."""
    out = []
    for line in b"".join(stream).splitlines():
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if payload and payload != b"[DONE]":
                out.append(payload)
    return out


def chat_so_far(stream: Iterable[bytes]) -> tuple[str, bool]:
    """The assistant text a chat stream has produced, and whether it contained tool calls."""
    text: list[str] = []
    tools = False
    for payload in data_payloads(stream):
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
            if delta.get("tool_calls"):
                tools = True
    return "".join(text), tools
