"""Deterministic reply content, token counts and embeddings. Pure."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

import orjson

from gateway.core.content import text_of


def reply_words(name: str, reply_tokens: int, limit: int | None) -> tuple[list[str], str]:
    """The reply's words (`name`, then t1, t2, …) and the finish reason."""
    n = reply_tokens if limit is None else max(0, min(reply_tokens, limit))
    words = ([name] + [f"t{i}" for i in range(1, reply_tokens)])[:n]
    return words, ("length" if n < reply_tokens else "stop")


def prompt_tokens(messages: list[Any], system: Any = None) -> int:
    """Words across all message contents, plus one per message."""
    total = len(text_of(system).split()) if system else 0
    for m in messages:
        if isinstance(m, dict):
            total += len(text_of(m.get("content")).split()) + 1
    return total


def completion_prompt_tokens(prompt: Any) -> int:
    if isinstance(prompt, str):
        return len(prompt.split()) + 1
    if isinstance(prompt, list):
        return sum(len(str(p).split()) + 1 for p in prompt)
    return 1


def wants_tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the reply should call, or None for a text reply."""
    tools = body.get("tools")
    if not tools or body.get("tool_choice") == "none":
        return None
    messages = body.get("messages") or []
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") in ("tool", "user") \
            and isinstance(messages[-1].get("content"), list) \
            and any(isinstance(p, dict) and p.get("type") == "tool_result" for p in messages[-1]["content"]):
        return None  # an Anthropic tool result
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return None
    choice = body.get("tool_choice")
    named = None
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name") or choice.get("name")
    for tool in tools:
        fn = tool.get("function", tool) if isinstance(tool, dict) else {}
        if named is None or fn.get("name") == named:
            return fn
    return None


def tool_arguments(tool: dict[str, Any]) -> dict[str, Any]:
    """Arguments built from the tool's JSON schema: strings "sim", numbers 1, booleans true, arrays of
    one item, nested objects filled the same way."""
    return _fill(tool.get("parameters") or tool.get("input_schema") or {})


def _fill(schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        out[name] = _value(prop if isinstance(prop, dict) else {})
    return out


def _value(prop: dict[str, Any]) -> Any:
    kind = prop.get("type")
    if kind == "object":
        return _fill(prop)
    if kind == "array":
        items = prop.get("items")
        return [_value(items if isinstance(items, dict) else {})]
    return {"string": "sim", "number": 1, "integer": 1, "boolean": True}.get(str(kind), "sim")


def embedding(text: str, dim: int) -> list[float]:
    """A deterministic unit-ish vector from a hash of the text."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values += [(b - 127.5) / 127.5 for b in digest]
        counter += 1
    return [round(v, 6) for v in values[:dim]]


def embedding_b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [orjson.dumps(value).decode()]
    if isinstance(value, list):
        return [v if isinstance(v, str) else orjson.dumps(v).decode() for v in value]
    return []
