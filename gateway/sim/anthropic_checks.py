"""The request checks the real Messages API makes, so a translation that gets a shape wrong fails here.

Pure: a body in, the first problem found out (worded like the API's `invalid_request_error`
messages: `path: reason`), or None. Only what the API documents or is known to refuse.
"""

from __future__ import annotations

import re
from typing import Any

# Top-level fields the Messages API accepts; anything else is "Extra inputs are not permitted".
FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "service_tier", "cache_control", "container", "mcp_servers",
    "output_config", "context_management", "inference_geo", "speed",
})
_USER_BLOCKS = frozenset({"text", "image", "document", "tool_result", "search_result"})
_ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_SERVER_TOOL = re.compile(r"_\d{8}$")       # web_search_20250305, bash_20250124 …
_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})


def problem(body: Any) -> str | None:
    """The first reason the real API would answer 400 to this body, or None."""
    if not isinstance(body, dict):
        return "The request body is not a JSON object."
    for name in ("model", "messages", "max_tokens"):
        if name not in body:
            return f"{name}: Field required"
    for name in body:
        if name not in FIELDS:
            return f"{name}: Extra inputs are not permitted"
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Input should be an integer greater than or equal to 1"
    return (_sampling(body) or _system(body.get("system")) or _stop_sequences(body.get("stop_sequences"))
            or _tools(body) or _metadata(body.get("metadata")) or _messages(body["messages"]))


def _sampling(body: dict[str, Any]) -> str | None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or not 0 <= value <= 1):
            return f"{name}: Input should be less than or equal to 1"  # OpenAI allows up to 2; Anthropic does not
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
        return "top_k: Input should be a non-negative integer"
    return None


def _system(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid string or a list of text blocks"
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            return f"system.{i}: Input should be a text block"
    return None


def _stop_sequences(stops: Any) -> str | None:
    if stops is None:
        return None
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        return "stop_sequences: Input should be a list of non-empty strings"
    return None


def _metadata(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return "metadata: Input should be an object"
    for name in metadata:
        if name != "user_id":
            return f"metadata.{name}: Extra inputs are not permitted"
    return None


def _tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return f"tools.{i}: Input should be an object"
            kind = tool.get("type")
            if isinstance(kind, str) and _SERVER_TOOL.search(kind):
                continue  # a server tool (web search, code execution …), versioned by its type
            if kind not in (None, "custom"):
                return f"tools.{i}.type: Input tag '{kind}' does not match any of the expected tags"
            if not isinstance(tool.get("name"), str) or not _TOOL_NAME.match(tool["name"]):
                return f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                return f"tools.{i}.custom.input_schema: Input should be a JSON schema of type 'object'"
            for name in tool:
                if name not in ("type", "name", "description", "input_schema", "cache_control", "strict"):
                    return f"tools.{i}.custom.{name}: Extra inputs are not permitted"
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES:
        return "tool_choice: Input should be an object with type 'auto', 'any', 'tool' or 'none'"
    if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        return "tool_choice.tool.name: Field required"
    if choice["type"] != "none" and not tools:
        return "tool_choice may only be specified while providing tools"
    return None


def _messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"messages.{i}: Input should be an object"
        if m.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = m.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            return f"messages.{i}.content: Input should be a valid string or list"
        allowed = _USER_BLOCKS if m["role"] == "user" else _ASSISTANT_BLOCKS
        for j, block in enumerate(content):
            found = _block(block, allowed, f"messages.{i}.content.{j}")
            if found:
                return found
    return _tool_pairing(messages)


def _block(block: Any, allowed: frozenset[str], at: str) -> str | None:
    if not isinstance(block, dict) or block.get("type") not in allowed:
        kind = block.get("type") if isinstance(block, dict) else None
        return f"{at}.type: Input tag '{kind}' does not match any of the expected tags: {sorted(allowed)}"
    kind = block["type"]
    if kind == "text" and not isinstance(block.get("text"), str):
        return f"{at}.text.text: Field required"
    if kind == "image":
        return _image_source(block.get("source"), f"{at}.image.source")
    if kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            return f"{at}.tool_use: id and name are required"
        if not isinstance(block.get("input"), dict):
            return f"{at}.tool_use.input: Input should be a valid dictionary"
    if kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            return f"{at}.tool_result.tool_use_id: Field required"
        content = block.get("content")
        if content is not None and not isinstance(content, str):
            if not isinstance(content, list):
                return f"{at}.tool_result.content: Input should be a valid string or list"
            for k, part in enumerate(content):
                found = _block(part, frozenset({"text", "image", "document", "search_result"}), f"{at}.content.{k}")
                if found:
                    return found
    return None


def _image_source(source: Any, at: str) -> str | None:
    if not isinstance(source, dict):
        return f"{at}: Field required"
    if source.get("type") == "base64":
        if source.get("media_type") not in _IMAGE_TYPES:
            return f"{at}.base64.media_type: Input should be one of {sorted(_IMAGE_TYPES)}"
        if not isinstance(source.get("data"), str) or not source["data"]:
            return f"{at}.base64.data: Field required"
        return None
    if source.get("type") == "url":
        url = source.get("url")
        return None if isinstance(url, str) and url.startswith(("http://", "https://")) else f"{at}.url.url: invalid URL"
    return f"{at}.type: Input tag '{source.get('type')}' does not match any of the expected tags: ['base64', 'url']"


def _tool_pairing(messages: list[dict[str, Any]]) -> str | None:
    """Each tool_use is answered by a tool_result in the very next user message, and only then."""
    for i, m in enumerate(messages):
        content = m["content"] if isinstance(m["content"], list) else []
        if m["role"] == "assistant":
            used = [b["id"] for b in content if b.get("type") == "tool_use"]
            if not used or i + 1 == len(messages):
                continue
            following = messages[i + 1]
            answered = {b.get("tool_use_id") for b in following["content"] if isinstance(b, dict)} \
                if following["role"] == "user" and isinstance(following["content"], list) else set()
            missing = [u for u in used if u not in answered]
            if missing:
                return (f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                        f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                        f"in the next message.")
        else:
            results = [j for j, b in enumerate(content) if b.get("type") == "tool_result"]
            if not results:
                continue
            if results != list(range(len(results))):
                return f"messages.{i}: `tool_result` blocks must come first in the content, before any other block"
            previous = messages[i - 1] if i > 0 else None
            used_before = {b.get("id") for b in previous["content"] if isinstance(b, dict)} \
                if previous is not None and previous["role"] == "assistant" and isinstance(previous["content"], list) \
                else set()
            for j in results:
                if content[j]["tool_use_id"] not in used_before:
                    return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{content[j]['tool_use_id']}. Each `tool_result` block must have a corresponding "
                            f"`tool_use` block in the previous message.")
    return None
