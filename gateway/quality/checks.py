"""Judging one canary answer against its item's `expect`. Pure: an answer body in, a verdict out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.policy.quality import CanaryItem

SHOWN_CHARS = 120   # what an admin view shows of a wrong answer


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: str
    check: str                 # "contains", "regex", "json_schema", "tool_call"
    result: str                # "pass", "fail", "error" (the call failed) or "skipped" (over the daily budget)
    got: str = ""              # what came back, truncated (for a failure or an error)
    latency_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.result == "pass"


def truncate(text: str, limit: int = SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
        message = data["choices"][0]["message"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    return message if isinstance(message, dict) else None


def _tool_schema(item: CanaryItem, name: str) -> dict[str, Any] | None:
    for tool in item.tools or []:
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if isinstance(fn, dict) and fn.get("name") == name:
            params = fn.get("parameters")
            return params if isinstance(params, dict) else None
    return None


def _schema_error(instance: Any, schema: dict[str, Any]) -> str | None:
    from jsonschema import Draft202012Validator

    error = next(iter(Draft202012Validator(schema).iter_errors(instance)), None)
    return None if error is None else error.message


def _check_tool_call(item: CanaryItem, message: dict[str, Any], name: str) -> tuple[bool, str]:
    calls = message.get("tool_calls") or []
    if not calls:
        return False, "no tool call: " + str(message.get("content") or "")
    fn = calls[0].get("function") if isinstance(calls[0], dict) else None
    if not isinstance(fn, dict) or fn.get("name") != name:
        return False, f"called {fn.get('name') if isinstance(fn, dict) else '?'!s}"
    raw = fn.get("arguments")
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        return False, f"{name}({raw}): arguments are not JSON"
    if not isinstance(args, dict):
        return False, f"{name}({raw}): arguments are not an object"
    schema = _tool_schema(item, name)
    problem = _schema_error(args, schema) if schema is not None else None
    if problem is not None:
        return False, f"{name}({raw}): {problem}"
    return True, ""


def judge(item: CanaryItem, body: bytes, latency_s: float = 0.0) -> ItemResult:
    """Did this chat.completion body pass the item's check? `got` says what came back when it did not."""
    expect = item.expect
    check = expect.kind
    message = _message(body)
    if message is None:
        return ItemResult(item.name, check, "fail", truncate("not a chat completion: " + body.decode(errors="replace")),
                          latency_s)
    if expect.tool_call is not None:
        ok, got = _check_tool_call(item, message, expect.tool_call)
        return ItemResult(item.name, check, "pass" if ok else "fail", truncate(got), latency_s)
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    assert isinstance(text, str)
    if expect.contains is not None:
        ok = expect.contains.lower() in text.lower()
    elif expect.regex is not None:
        ok = re.search(expect.regex, text) is not None
    else:
        assert expect.json_schema is not None
        try:
            ok = _schema_error(orjson.loads(text), expect.json_schema) is None
        except orjson.JSONDecodeError:
            ok = False
    return ItemResult(item.name, check, "pass" if ok else "fail", "" if ok else truncate(text), latency_s)
