"""Responses tools as chat tools, and their calls named back: a `namespace` tool's tools flattened
to `<namespace>__<name>`, a freeform (`custom`) tool as a function taking its input as one string, a
tool OpenAI runs on its side left out. Pure.

Chat has neither namespaces nor freeform tools; the client must still see its own names (Codex runs
`multi_agent_v1.spawn_agent`, not `multi_agent_v1__spawn_agent`), so every call coming back is mapped
by `as_client_named` from the table `tool_names` makes of the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.wires import features
from gateway.wires.refused import Refused

# A flattened namespace tool's name: `<namespace>__<name>`, as chat has no namespaces.
SEPARATOR = "__"
# The one argument a freeform (custom) tool's input travels in, as chat tools take JSON arguments.
CUSTOM_INPUT = "input"


@dataclass(frozen=True, slots=True)
class ToolName:
    """What a chat tool name stands for in the client's request: a namespaced or a freeform tool."""

    name: str
    namespace: str | None = None
    custom: bool = False


def tool_names(body: Mapping[str, Any]) -> dict[str, ToolName]:
    """The chat names of the request's tools that are not plain function tools, and what they were."""
    names: dict[str, ToolName] = {}
    for tool in body.get("tools") or ():
        if not isinstance(tool, Mapping):
            continue
        if tool.get("type") == "namespace":
            for inner in tool.get("tools") or ():
                if isinstance(inner, Mapping) and isinstance(inner.get("name"), str):
                    names[flat_name(tool.get("name"), inner["name"])] = ToolName(
                        inner["name"], str(tool.get("name")), inner.get("type") == "custom")
        elif tool.get("type") == "custom" and isinstance(tool.get("name"), str):
            names[tool["name"]] = ToolName(tool["name"], None, True)
    return names


def flat_name(namespace: Any, name: str) -> str:
    return f"{namespace}{SEPARATOR}{name}" if namespace else name


def chat_tools(tool: Any, i: int, dropped: list[str] | None) -> list[dict[str, Any]]:
    """A client tool as chat function tools: a namespace's tools flattened, a freeform tool taking its
    input as one string; a tool OpenAI runs on its side is dropped (no one here would run it)."""
    kind = tool.get("type") if isinstance(tool, Mapping) else None
    if kind == "function":
        return [_function(tool, tool.get("name"))]
    if kind == "custom":
        return [_custom(tool, tool.get("name"))]
    if kind == "namespace":
        out = []
        for inner in tool.get("tools") or ():
            if isinstance(inner, Mapping) and inner.get("type", "function") in ("function", "custom"):
                name = flat_name(tool.get("name"), str(inner.get("name")))
                out.append(_custom(inner, name) if inner.get("type") == "custom" else _function(inner, name))
        return out
    if not isinstance(tool, Mapping):
        raise Refused(f"'tools[{i}]' must be an object.", f"tools[{i}]")
    features.drop(dropped, features.WEB_SEARCH if str(kind).startswith("web_search") else features.HOSTED_TOOLS)
    return []


def _function(tool: Mapping[str, Any], name: Any) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name, "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    if tool.get("strict") is not None:
        fn["strict"] = tool["strict"]
    return {"type": "function", "function": fn}


def _custom(tool: Mapping[str, Any], name: Any) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name, "parameters": {
        "type": "object", "properties": {CUSTOM_INPUT: {"type": "string"}}, "required": [CUSTOM_INPUT]}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def chat_tool_choice(choice: Any, dropped: list[str] | None) -> Any:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, Mapping) and choice.get("type") in ("function", "custom"):
        return {"type": "function", "function": {"name": flat_name(choice.get("namespace"), str(choice.get("name")))}}
    if isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        return "required" if choice.get("mode") == "required" else "auto"
    features.drop(dropped, features.HOSTED_TOOLS)   # a hosted tool chosen: the model may use the others
    return "auto"


def as_client_named(item: dict[str, Any], names: Mapping[str, ToolName]) -> dict[str, Any]:
    """A function call item under the name the client gave its tool: a namespaced tool's call names
    its namespace, a freeform tool's call carries its input as the custom tool call it was."""
    meant = names.get(item["name"])
    if meant is None:
        return item
    if meant.custom:
        try:
            value = orjson.loads(item["arguments"] or "{}")
        except orjson.JSONDecodeError:
            value = {}
        text = value.get(CUSTOM_INPUT, "") if isinstance(value, dict) else ""
        out = {"id": item["id"].replace("fc_", "ctc_", 1), "type": "custom_tool_call", "status": item["status"],
               "call_id": item["call_id"], "name": meant.name, "input": text if isinstance(text, str) else ""}
    else:
        out = {**item, "name": meant.name}
    if meant.namespace is not None:
        out["namespace"] = meant.namespace
    return out
