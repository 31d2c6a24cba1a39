"""What the simulated Claude answers to a Messages request, as a whole message or as stream events. Pure.

The reply is deterministic so tests can compare paths:
- no tools (or `tool_choice: none`, or the last turn carries tool results): text, the sim's name then
  t1, t2 …, cut by `max_tokens` (`stop_reason: max_tokens`) or before the first of `stop_sequences`
  it contains (`stop_reason: stop_sequence`, the text stops before the sequence, as the API's does);
- tools offered: one `tool_use` block per tool named in the last user text (in the order offered),
  else for the first tool; one only with `disable_parallel_tool_use`; the named one with
  `tool_choice: {type: tool}`. With `auto` a short text block comes first, as Claude thinks aloud;
  with `any` or `tool` it does not (the API prefills the turn to force a tool).
Usage counts a word as a token; a prompt prefix up to a `cache_control` mark is written to the
prompt cache the first time and read from it after (the sim has no minimum cacheable length).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.core.content import text_of
from gateway.sim import answers, replies
from gateway.sim.agent import decide, messages_situation

TOOL_TOKENS = 10           # output tokens a tool_use block costs
JSON_PIECE = 12            # characters per input_json_delta after the first, empty, one


@dataclass(frozen=True, slots=True)
class Block:
    kind: str                            # "text" or "tool_use"
    text: str = ""
    pieces: tuple[str, ...] = ()         # a text block's deltas, in order
    tool_id: str = ""
    name: str = ""
    input: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    tokens: int                          # every input token, cached or not
    cached_prefix: int                   # tokens up to the last cache_control mark (0: none)
    cache_key: str | None                # what identifies that prefix in the prompt cache


@dataclass(frozen=True, slots=True)
class Plan:
    message_id: str
    model: str
    blocks: tuple[Block, ...]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int


def plan(body: dict[str, Any], name: str, reply_tokens: int, n: int, dumb: bool = False, agent: bool = False,
         broken: str | None = None) -> Plan:
    """The reply to request number `n` of a sim called `name` (dumb: fluent, wrong, tools called without arguments;
    agent: see gateway.sim.agent)."""
    message_id, model = f"msg_sim_{n}", str(body["model"])
    if agent:
        decided = decide(messages_situation(body), name)
        if decided.call is not None:
            block = Block("tool_use", tool_id=f"toolu_sim_{n}_0", name=decided.call.name, input=decided.call.arguments)
            return Plan(message_id, model, (block,), "tool_use", None, TOOL_TOKENS)
        if decided.text is not None:
            words = decided.text.split(" ")
            return Plan(message_id, model, (Block("text", decided.text, pieces=_pieces(words)),), "end_turn", None,
                        len(words))
    tools = [] if agent or broken == "empty" else _tools_called(body)
    if tools:
        blocks: list[Block] = []
        choice = body.get("tool_choice") or {"type": "auto"}
        if choice.get("type") == "auto":
            words = [name, "calls"] + [t["name"] for t in tools]
            blocks.append(Block("text", " ".join(words), pieces=_pieces(words)))
        for i, tool in enumerate(tools):
            blocks.append(Block("tool_use", tool_id=f"toolu_sim_{n}_{i}", name=tool["name"],
                                input={} if dumb or broken == "bad_tool_args" else replies.tool_arguments(tool)))
        output = sum(len(b.text.split()) for b in blocks) + TOOL_TOKENS * len(tools)
        return Plan(message_id, model, tuple(blocks), "tool_use", None, output)
    words, finish = answers.reply_words(name, reply_tokens, body.get("max_tokens"), body.get("messages"), dumb,
                                        broken)
    pieces = _pieces(words)
    text = "".join(pieces)
    stop_reason, stop_sequence = ("max_tokens" if finish == "length" else "end_turn"), None
    cut = _first_stop(text, body.get("stop_sequences") or [])
    if cut is not None:
        at, stop_sequence = cut
        text, stop_reason = text[:at], "stop_sequence"
        pieces = _truncate(pieces, at)
    return Plan(message_id, model, (Block("text", text, pieces=pieces),), stop_reason, stop_sequence,
                len(text.split()))


def prompt(body: dict[str, Any]) -> Prompt:
    """Input tokens in the order the API caches them (tools, system, messages) and the cached prefix."""
    items: list[tuple[int, bool, Any]] = []
    for tool in body.get("tools") or []:
        items.append((len(f"{tool.get('name', '')} {tool.get('description', '')}".split()), "cache_control" in tool, tool))
    system = body.get("system")
    if isinstance(system, str):
        items.append((len(system.split()), False, system))
    elif isinstance(system, list):
        items += [(len(text_of([b]).split()), "cache_control" in b, b) for b in system]
    for m in body.get("messages") or []:
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        items.append((1, False, m.get("role")))  # one token of framing per message
        items += [(_block_tokens(b), isinstance(b, dict) and "cache_control" in b, b) for b in blocks]
    marked = [i for i, item in enumerate(items) if item[1]]
    if body.get("cache_control") and items:
        marked.append(len(items) - 1)  # a top-level mark applies to the last cacheable block
    total = sum(tokens for tokens, _, _ in items)
    if not marked:
        return Prompt(total, 0, None)
    end = max(marked) + 1
    key = hashlib.sha256(orjson.dumps([body.get("model"), [it for _, _, it in items[:end]]],
                                      option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Prompt(total, sum(tokens for tokens, _, _ in items[:end]), key)


def usage(p: Prompt, cache_hit: bool) -> dict[str, int]:
    """Input usage as the API reports it: `input_tokens` excludes what was written to or read from the cache."""
    written = 0 if cache_hit else p.cached_prefix
    read = p.cached_prefix if cache_hit else 0
    return {"input_tokens": p.tokens - p.cached_prefix, "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read}


def message(p: Plan, input_usage: dict[str, int]) -> dict[str, Any]:
    """The whole non-stream answer."""
    content: list[dict[str, Any]] = []
    for b in p.blocks:
        if b.kind == "text":
            content.append({"type": "text", "text": b.text})
        else:
            content.append({"type": "tool_use", "id": b.tool_id, "name": b.name, "input": b.input})
    return {"id": p.message_id, "type": "message", "role": "assistant", "model": p.model, "content": content,
            "stop_reason": p.stop_reason, "stop_sequence": p.stop_sequence,
            "usage": {**input_usage, "output_tokens": p.output_tokens}}


def events(p: Plan, input_usage: dict[str, int]) -> list[tuple[str, bytes, bool]]:
    """The stream: (event name, data, whether it carries content) in the API's order, a ping after the first block starts."""
    start: dict[str, Any] = {"id": p.message_id, "type": "message", "role": "assistant", "model": p.model, "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": {**input_usage, "output_tokens": 1}}
    out = [_event("message_start", {"message": start})]
    for index, b in enumerate(p.blocks):
        if b.kind == "text":
            out.append(_event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
            deltas = [{"type": "text_delta", "text": piece} for piece in b.pieces]
        else:
            out.append(_event("content_block_start", {"index": index, "content_block": {
                "type": "tool_use", "id": b.tool_id, "name": b.name, "input": {}}}))
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in _json_pieces(b.input or {})]
        if index == 0:
            out.append(("ping", b'{"type": "ping"}', False))
        out += [_event("content_block_delta", {"index": index, "delta": d}, content=True) for d in deltas]
        out.append(_event("content_block_stop", {"index": index}))
    out.append(_event("message_delta", {"delta": {"stop_reason": p.stop_reason, "stop_sequence": p.stop_sequence},
                                        "usage": {"output_tokens": p.output_tokens}}))
    out.append(_event("message_stop", {}))
    return out


def _event(name: str, data: dict[str, Any], content: bool = False) -> tuple[str, bytes, bool]:
    return name, orjson.dumps({"type": name, **data}), content


def _tools_called(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none" or _answers_tools(body.get("messages") or []):
        return []
    if choice.get("type") == "tool":
        return [t for t in tools if t["name"] == choice.get("name")][:1]
    said = _last_user_text(body.get("messages") or [])
    named = [t for t in tools if t["name"] in said] or tools[:1]
    return named[:1] if choice.get("disable_parallel_tool_use") else named


def _answers_tools(messages: list[Any]) -> bool:
    last = messages[-1] if messages else None
    return isinstance(last, dict) and isinstance(last.get("content"), list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last["content"])


def _last_user_text(messages: list[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


def _block_tokens(block: Any) -> int:
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "text":
        return len(str(block.get("text", "")).split())
    if kind == "tool_result":
        content = block.get("content")
        return len((content if isinstance(content, str) else text_of(content)).split()) + 1
    if kind == "tool_use":
        return len(orjson.dumps(block.get("input") or {}).split(b",")) + 1
    return 1  # an image or a document: one token, so they still count


def _pieces(words: list[str]) -> tuple[str, ...]:
    return tuple(w if i == 0 else " " + w for i, w in enumerate(words))


def _first_stop(text: str, stops: list[str]) -> tuple[int, str] | None:
    found = [(text.find(s), s) for s in stops if s and s in text]
    return min(found) if found else None


def _truncate(pieces: tuple[str, ...], at: int) -> tuple[str, ...]:
    out: list[str] = []
    used = 0
    for piece in pieces:
        if used >= at:
            break
        out.append(piece[: at - used])
        used += len(piece)
    return tuple(p for p in out if p)


def _json_pieces(value: dict[str, Any]) -> list[str]:
    """The tool input as the API streams it: an empty first delta, then the JSON text in slices."""
    text = orjson.dumps(value).decode() if value else ""
    return [""] + [text[i:i + JSON_PIECE] for i in range(0, len(text), JSON_PIECE)]
