"""Reading an answer in the client's API (chat, Responses, Messages) into what the answer checks look
at: its text, tool calls and finish. A whole body is parsed once; a stream is read event by event as
it is relayed, from the events the relay's transcript parses anyway and the text it keeps anyway:
the watch itself keeps only the tool calls' arguments apart, and judges the text each time it has
doubled, and at the end."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.policy.answer_checks import AnswerChecks
from gateway.quality.answer_checks import Answer, Asked, ToolCall, defects, not_json, text_defects

_CHAT_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
                "content_filter": "refusal"}
_MESSAGES_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                    "refusal": "refusal", "model_context_window_exceeded": "length"}
_QUIET_ITEMS = frozenset({"message", "reasoning", "function_call"})
_QUIET_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})
FIRST_LOOK = 1024      # a stream's text is first judged at this length, then each time it doubles
# Pieces of a tool call's arguments kept apart before they are joined: a str per event costs about
# 60 bytes, far more than the few characters a delta carries.
PIECES = 64


def answer_of(data: Any, endpoint: str) -> Answer | None:
    """A parsed whole answer (chat.completion, Response or Message) read for the checks; None if it is none."""
    if not isinstance(data, Mapping):
        return None
    if endpoint == "responses":
        return _response(data)
    if endpoint == "messages":
        return _message(data)
    if endpoint != "chat":
        return None
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return None
    message = choices[0].get("message")
    if not isinstance(message, Mapping):
        return None
    calls = [ToolCall(str(fn.get("name")), fn.get("arguments") if isinstance(fn.get("arguments"), str) else None,
                      fn.get("arguments"))
             for c in message.get("tool_calls") or () if isinstance(c, Mapping)
             for fn in (c.get("function"),) if isinstance(fn, Mapping)]
    finish = _CHAT_FINISH.get(str(choices[0].get("finish_reason")), "other")
    content = message.get("content")
    refusal = message.get("refusal")
    return Answer(content if isinstance(content, str) else "", calls,
                  "refusal" if isinstance(refusal, str) and refusal else finish)


def _response(data: Mapping[str, Any]) -> Answer:
    answer = Answer()
    texts = []
    for item in data.get("output") or ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if isinstance(part, Mapping) and part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                elif isinstance(part, Mapping) and part.get("type") == "refusal":
                    answer.finish = "refusal"
        elif kind == "function_call":
            raw = item.get("arguments")
            answer.tool_calls.append(ToolCall(str(item.get("name")), raw if isinstance(raw, str) else None, raw))
        elif kind not in _QUIET_ITEMS:
            answer.acted = True    # a hosted tool, a custom tool's free-form input …
    answer.text = "".join(texts)
    if not answer.finish:
        answer.finish = _response_finish(data, bool(answer.tool_calls))
    return answer


def _response_finish(data: Mapping[str, Any], called: bool) -> str:
    status = data.get("status")
    if status == "completed":
        return "tool_calls" if called else "stop"
    details = data.get("incomplete_details")
    if status == "incomplete" and isinstance(details, Mapping) and details.get("reason") == "max_output_tokens":
        return "length"
    return "other"


def _message(data: Mapping[str, Any]) -> Answer:
    answer = Answer(finish=_MESSAGES_FINISH.get(str(data.get("stop_reason")), "other"))
    texts = []
    for block in data.get("content") or ():
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            answer.tool_calls.append(ToolCall(str(block.get("name")), None, block.get("input")))
        elif kind not in _QUIET_BLOCKS:
            answer.acted = True    # a server tool's use or result
    answer.text = "".join(texts)
    return answer


def whole_defects(asked: Asked, body: bytes, endpoint: str, checks: AnswerChecks) -> list[str]:
    """The defects of a whole answer body (none when it is no answer these checks can read)."""
    try:
        answer = answer_of(orjson.loads(body), endpoint)
    except orjson.JSONDecodeError:
        return []
    return [] if answer is None else defects(asked, answer, checks)


def _appended(parts: list[str], piece: str, keep: int = 0) -> None:
    """Appends `piece`; once PIECES follow the first `keep` (a tool call's name), they are joined into one."""
    parts.append(piece)
    if len(parts) - keep >= PIECES:
        parts[keep:] = ["".join(parts[keep:])]


NONE_SEEN: frozenset[str] = frozenset()   # shared: an empty frozenset is a new object each time


def _no_text() -> str:
    return ""


def _no_bytes() -> int:
    return 0


class StreamWatch:
    """Follows one stream as it is relayed: each parsed `event`, then `look` for the text's defects found
    so far (as soon as they show), and `end` for the defects of the finished answer."""

    # One per open stream, thousands at once: no per-instance dict.
    __slots__ = ("asked", "checks", "endpoint", "text", "text_bytes", "next_look", "calls", "finish", "acted",
                 "seen", "judged", "broken_call")

    def __init__(self, asked: Asked, checks: AnswerChecks) -> None:
        self.asked = asked
        self.checks = checks
        self.endpoint = asked.endpoint
        # The stream's text so far, and its length in UTF-8 bytes: the relay's transcript keeps it.
        self.text: Callable[[], str] = _no_text
        self.text_bytes: Callable[[], int] = _no_bytes
        self.next_look = FIRST_LOOK
        self.calls: dict[Any, list[str]] = {}   # tool call index → [name, arguments so far …]
        self.finish = ""
        self.acted = False
        self.seen = NONE_SEEN          # defects already reported for this stream (rarely any)
        self.judged = False            # its answer has been counted (at its first defect, or at its end)
        # A tool call finished with arguments that are not JSON: the relay withholds the rest of the stream
        # (the finish the client would act on) and ends it with an error event instead.
        self.broken_call = False

    def look(self) -> list[str]:
        """After some events: the text's defects newly seen, judged each time the text has doubled
        (usually none, and usually not judged at all)."""
        length = self.text_bytes()
        if length < self.next_look:
            return []
        while self.next_look <= length:
            self.next_look *= 2
        return self._new(text_defects(self.asked, self.text(), self.checks))

    def _new(self, found: list[str]) -> list[str]:
        fresh = [d for d in found if d not in self.seen]
        if fresh:
            self.seen = self.seen.union(fresh)
        return fresh

    def end(self) -> list[str]:
        """The finished answer's defects not reported while it flowed."""
        calls = [ToolCall(parts[0], "".join(parts[1:])) for parts in self.calls.values()]
        answer = Answer(self.text(), calls, self.finish, self.acted)
        return self._new(defects(self.asked, answer, self.checks))

    def _calls_done(self) -> None:
        """The tool calls so far are finished: is one's arguments not JSON? (Not judged when the client's
        own token limit cut the answer, nor when the route relays such answers as they are.)"""
        if self.calls and self.finish != "length" and self.checks.tool_arguments and self.checks.rescue:
            calls = [ToolCall(parts[0], "".join(parts[1:])) for parts in self.calls.values()]
            self.broken_call = not_json(calls)

    def event(self, event: dict[str, Any]) -> None:
        """One parsed event of the stream (the relay's transcript parses each event once, for all)."""
        if self.endpoint == "chat":
            self._chat(event)
        elif self.endpoint == "messages":
            self._messages(event)
        elif self.endpoint == "responses":
            self._responses(event)

    def _chat(self, event: dict[str, Any]) -> None:
        # Runs per event: the text is the transcript's, so most events need no more than a glance.
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and self.finish != "refusal":
                self.finish = _CHAT_FINISH.get(reason, "other")
                self._calls_done()
            delta = choice.get("delta")
            if not isinstance(delta, dict) or ("tool_calls" not in delta and "refusal" not in delta):
                continue
            if delta.get("refusal"):
                self.finish = "refusal"
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") or {}
                parts = self.calls.setdefault(call.get("index", 0), [""])
                if fn.get("name"):
                    parts[0] = str(fn["name"])
                if isinstance(fn.get("arguments"), str):
                    _appended(parts, fn["arguments"], keep=1)

    def _messages(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
                _appended(self.calls.setdefault(event.get("index"), [""]), delta["partial_json"], keep=1)
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                parts = self.calls.setdefault(event.get("index"), [""])
                parts[0] = str(block.get("name"))
                if block.get("input"):   # a whole input given at the start (rare): the deltas then add nothing
                    parts.append(orjson.dumps(block["input"]).decode())
            elif block.get("type") not in _QUIET_BLOCKS:
                self.acted = True
        elif kind == "message_delta":
            reason = (event.get("delta") or {}).get("stop_reason")
            if isinstance(reason, str):
                self.finish = _MESSAGES_FINISH.get(reason, "other")
                self._calls_done()

    def _responses(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            return   # the text is the transcript's
        if kind == "response.function_call_arguments.delta" and isinstance(event.get("delta"), str):
            _appended(self.calls.setdefault(event.get("output_index"), [""]), event["delta"], keep=1)
        elif kind == "response.function_call_arguments.done":
            self._calls_done()   # before the item's `done`, on which a client may run the call
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                self.calls.setdefault(event.get("output_index"), [""])[0] = str(item.get("name"))
            elif item.get("type") not in _QUIET_ITEMS:
                self.acted = True
        elif kind == "response.refusal.delta":
            self.finish = "refusal"
        elif kind in ("response.completed", "response.incomplete", "response.failed") \
                and isinstance(event.get("response"), dict) and self.finish != "refusal":
            self.finish = _response_finish(event["response"], bool(self.calls))
