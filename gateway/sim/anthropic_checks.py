"""The request checks the real Messages API makes, so a translation that gets a shape wrong fails here.

Pure: a body in, the first problem found out (worded like the API's `invalid_request_error`
messages: `path: reason`), or None. What the API takes today (its betas included: Claude Code
calls `/v1/messages?beta=true` with an `anthropic-beta` header) is accepted; what it refuses is
refused. The tables below are what is known: a new field, block, tool or choice is one line.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.sim.anthropic_blocks import ROLES, block_problem, cache_control
from gateway.sim.checks import PYDANTIC, Check, Kit, any_value, is_int, nullable

_K = Kit(PYDANTIC)
string, boolean, integer, list_of, obj, one_of = _K.string, _K.boolean, _K.integer, _K.list_of, _K.obj, _K.one_of

_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_THINKING_DISPLAY = ("summarized", "omitted", "updates")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
# A server tool's type is its family and, mostly, a version date: web_search_20250305, bash_20250124 …
_SERVER_TOOL_FAMILIES = ("web_search", "web_fetch", "code_execution", "bash", "text_editor", "memory", "computer",
                         "tool_search_tool_regex", "tool_search_tool_bm25", "advisor", "browser_toolset",
                         "computer_toolset")
_SERVER_TOOL = re.compile(r"^(?:" + "|".join(_SERVER_TOOL_FAMILIES) + r")(?:_\d{8})?$")
_OTHER_TOOL_TYPES = frozenset({"mcp_toolset"})
MAX_CACHE_MARKS = 4


def _max_tokens(value: Any, at: str) -> str | None:
    # 0 is allowed: it warms the prompt cache without generating anything.
    return None if is_int(value) and value >= 0 else f"{at}: Input should be an integer greater than or equal to 0"


def _unit_interval(value: Any, at: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return f"{at}: Input should be less than or equal to 1"  # OpenAI allows up to 2; Anthropic does not
    return None


def _top_k(value: Any, at: str) -> str | None:
    return None if value is None or (is_int(value) and value >= 0) else f"{at}: Input should be a non-negative integer"


def _system(value: Any, at: str) -> str | None:
    if isinstance(value, str):
        return None
    if not isinstance(value, list):
        return f"{at}: Input should be a valid string or a list of text blocks"
    for i, block in enumerate(value):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            return f"{at}.{i}: Input should be a text block"
        found = cache_control(block.get("cache_control"), f"{at}.{i}.cache_control")
        if found:
            return found
    return None


def _stop_sequences(value: Any, at: str) -> str | None:
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        return f"{at}: Input should be a list of non-empty strings"
    return None


def _typed(table: dict[str, dict[str, Check]]) -> Check:
    """An object whose `type` picks its fields from `table`; unknown types and fields are refused."""
    # Pydantic places a tagged variant's fields under its tag (`thinking.enabled.budget_tokens`); `type` is the tag.
    variants = {kind: obj({**fields, "type": any_value}) for kind, fields in table.items()}

    def check(value: Any, at: str) -> str | None:
        if not isinstance(value, dict):
            return PYDANTIC.expected(at, "an object")
        kind = value.get("type")
        variant = variants.get(kind) if isinstance(kind, str) else None
        if variant is None:
            return PYDANTIC.unsupported(f"{at}.type", kind, table)
        return variant(value, f"{at}.{kind}")
    return check


_THINKING = _typed({
    "enabled": {"budget_tokens": integer(minimum=1024), "display": nullable(one_of(*_THINKING_DISPLAY)),
                "block_binding": any_value},
    "adaptive": {"display": nullable(one_of(*_THINKING_DISPLAY)), "block_binding": any_value},
    "disabled": {},
    "between_tools": {},
})
_TOOL_CHOICE = _typed({
    "auto": {"disable_parallel_tool_use": boolean},
    "any": {"disable_parallel_tool_use": boolean},
    "tool": {"name": string, "disable_parallel_tool_use": boolean},
    "none": {},
})
_EDIT = _typed({
    "clear_tool_uses_20250919": {"trigger": any_value, "keep": any_value, "clear_at_least": any_value,
                                 "clear_tool_inputs": any_value, "exclude_tools": nullable(list_of(string))},
    "clear_thinking_20251015": {"keep": any_value},
    "compact_20260112": {"trigger": any_value, "instructions": nullable(string), "pause_after_compaction": any_value},
})
_OUTPUT_FORMAT = _typed({"json_schema": {"schema": obj({})}})
_MCP_SERVER = _typed({"url": {"name": string, "url": string, "authorization_token": nullable(string),
                              "tool_configuration": any_value}})

# Top-level fields and what each value must be ("Extra inputs are not permitted" for any other).
# `messages`, `tools` and `tool_choice` are checked as a whole afterwards.
FIELDS: dict[str, Check] = {
    "model": string,
    "messages": any_value,
    "max_tokens": _max_tokens,
    "system": _system,
    "metadata": obj({"user_id": nullable(string)}),
    "stop_sequences": _stop_sequences,
    "stream": boolean,
    "temperature": _unit_interval,
    "top_p": _unit_interval,
    "top_k": _top_k,
    "tools": any_value,
    "tool_choice": _TOOL_CHOICE,
    "thinking": _THINKING,
    "service_tier": one_of("auto", "standard_only"),
    "cache_control": cache_control,
    "container": nullable(_K.either("a string or an object", string, obj(None))),
    "mcp_servers": list_of(_MCP_SERVER),
    "output_config": obj({"effort": nullable(one_of(*_EFFORTS)), "format": nullable(_OUTPUT_FORMAT),
                          "task_budget": any_value}),
    "context_management": nullable(obj({"edits": list_of(_EDIT)})),
    "inference_geo": nullable(string),
    "speed": nullable(one_of("standard", "fast")),
    "diagnostics": nullable(obj({"previous_message_id": nullable(string)})),
    "user_profile_id": string,
    "workspace_id": string,
    # Betas whose inner shape the sim does not check.
    "compaction": any_value, "thread": any_value, "fallbacks": any_value, "billing_policy": any_value,
    "fallback_credit_token": any_value,
}
REQUIRED = ("model", "messages", "max_tokens")

# The fields of a client tool (type absent or "custom").
CUSTOM_TOOL_FIELDS: dict[str, Check] = {
    "type": any_value, "name": any_value, "input_schema": any_value,
    "description": string, "cache_control": cache_control, "strict": boolean, "defer_loading": boolean,
    "eager_input_streaming": nullable(boolean), "input_examples": list_of(obj(None)), "allowed_callers": list_of(string),
}
_CUSTOM_TOOL = obj(CUSTOM_TOOL_FIELDS)


def problem(body: Any) -> str | None:
    """The first reason the real API would answer 400 to this body, or None."""
    if not isinstance(body, dict):
        return "The request body is not a JSON object."
    for name in REQUIRED:
        if name not in body:
            return f"{name}: Field required"
    for name, value in body.items():
        check = FIELDS.get(name)
        if check is None:
            return f"{name}: Extra inputs are not permitted"
        found = check(value, name)
        if found:
            return found
    return _tools(body) or _messages(body["messages"]) or _cache_marks(body)


def _tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        names: set[str] = set()
        for i, tool in enumerate(tools):
            found = _tool(tool, f"tools.{i}")
            if found:
                return found
            name = tool.get("name")
            if isinstance(name, str):
                if name in names:
                    return f"tools: Tool names must be unique. Found duplicate: {name}"
                names.add(name)
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") != "none" and not tools:
        return "tool_choice may only be specified while providing tools"
    return None


def _tool(tool: Any, at: str) -> str | None:
    if not isinstance(tool, dict):
        return f"{at}: Input should be an object"
    kind = tool.get("type")
    if isinstance(kind, str) and (_SERVER_TOOL.match(kind) or kind in _OTHER_TOOL_TYPES):
        return cache_control(tool.get("cache_control"), f"{at}.cache_control")
    if kind not in (None, "custom"):
        return f"{at}.type: Input tag '{kind}' does not match any of the expected tags"
    if not isinstance(tool.get("name"), str) or not _TOOL_NAME.match(tool["name"]):
        return f"{at}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
    schema = tool.get("input_schema")
    # A deferred tool (tool search) may stand in by name alone until it is loaded.
    if not (schema is None and tool.get("defer_loading") is True) \
            and (not isinstance(schema, dict) or schema.get("type") != "object"):
        return f"{at}.custom.input_schema: Input should be a JSON schema of type 'object'"
    return _CUSTOM_TOOL(tool, f"{at}.custom")


def _messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"messages.{i}: Input should be an object"
        role = m.get("role")
        allowed = ROLES.get(role) if isinstance(role, str) else None
        if allowed is None:
            return f"messages.{i}.role: Input should be {' or '.join(repr(r) for r in ROLES)}"
        for name in m:
            if name not in ("role", "content"):
                return f"messages.{i}.{name}: Extra inputs are not permitted"
        content = m.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            return f"messages.{i}.content: Input should be a valid string or list"
        for j, block in enumerate(content):
            found = block_problem(block, allowed, f"messages.{i}.content.{j}")
            if found:
                return found
    return _tool_pairing(messages)


def _blocks(m: dict[str, Any]) -> list[dict[str, Any]]:
    return m["content"] if isinstance(m["content"], list) else []


def _tool_pairing(messages: list[dict[str, Any]]) -> str | None:
    """Each tool_use is answered by a tool_result in the very next turn, and only then.

    A turn is a run of messages of one role (the API joins them); system messages between turns
    are instructions, not turns, and do not break a pair.
    """
    turns: list[tuple[int, str, list[dict[str, Any]]]] = []     # (first message index, role, blocks)
    for i, m in enumerate(messages):
        if m["role"] == "system":
            continue
        if turns and turns[-1][1] == m["role"]:
            turns[-1][2].extend(_blocks(m))
        else:
            turns.append((i, m["role"], list(_blocks(m))))
    for i, m in enumerate(messages):
        results = [j for j, b in enumerate(_blocks(m)) if b.get("type") == "tool_result"]
        if results and results != list(range(len(results))):
            return f"messages.{i}: `tool_result` blocks must come first in the content, before any other block"
    for t, (first, role, blocks) in enumerate(turns):
        if role == "assistant":
            used = [b["id"] for b in blocks if b.get("type") == "tool_use"]
            if not used or t + 1 == len(turns):
                continue
            answered = {b.get("tool_use_id") for b in turns[t + 1][2] if b.get("type") == "tool_result"}
            missing = [u for u in used if u not in answered]
            if missing:
                return (f"messages.{turns[t + 1][0]}: `tool_use` ids were found without `tool_result` blocks "
                        f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                        f"`tool_result` block in the next message.")
        else:
            used_before = {b.get("id") for b in turns[t - 1][2] if b.get("type") == "tool_use"} \
                if t > 0 and turns[t - 1][1] == "assistant" else set()
            for b in blocks:
                if b.get("type") == "tool_result" and b.get("tool_use_id") not in used_before:
                    return (f"messages.{first}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                            f"`tool_use` block in the previous message.")
    return None


def _cache_marks(body: dict[str, Any]) -> str | None:
    """The API caches at most four breakpoints a request."""
    marked = sum(1 for t in body.get("tools") or () if isinstance(t, dict) and t.get("cache_control"))
    system = body.get("system")
    if isinstance(system, list):
        marked += sum(1 for b in system if b.get("cache_control"))
    for m in body["messages"]:
        for b in _blocks(m):
            marked += 1 if b.get("cache_control") else 0
            if b.get("type") == "tool_result" and isinstance(b.get("content"), list):
                marked += sum(1 for p in b["content"] if p.get("cache_control"))
    if marked > MAX_CACHE_MARKS:
        return f"A maximum of {MAX_CACHE_MARKS} blocks with cache_control may be provided. Found {marked}."
    return None
