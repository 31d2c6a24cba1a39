"""Anthropic Messages ⇄ OpenAI chat completions: a Messages request out as a chat request, a chat
answer back as a Message, chat stream chunks back as Anthropic's stream events.

The reverse of the native Anthropic wire's translation: it lets a Messages client (Claude Code, the
`anthropic` SDK) be served by an OpenAI-wire target while Anthropic is down. Thinking blocks are
dropped (only the model that wrote them can read them), `cache_control` marks are dropped (chat
servers cache on their own), and what chat cannot express is refused with a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.wires import features
from gateway.wires.events import named_event
from gateway.wires.refused import Refused

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
         "content_filter": "refusal"}
# Blocks only the model that wrote them can read (thinking), or that record what Anthropic's own
# servers ran (server tools): another model neither can nor needs to see them.
_THOUGHT = frozenset({"thinking", "redacted_thinking"})
_SERVER_RESULTS = frozenset({"server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
                             "code_execution_tool_result", "bash_code_execution_tool_result",
                             "text_editor_code_execution_tool_result", "tool_search_tool_result",
                             "mcp_tool_use", "mcp_tool_result", "container_upload"})
# Top-level fields: what each becomes when the target speaks chat completions.
_DROPPED_FIELDS = {"thinking": features.THINKING, "context_management": features.CONTEXT_MANAGEMENT,
                   "top_k": features.TOP_K, "service_tier": features.SERVICE_TIER,
                   "container": features.HOSTED_TOOLS, "mcp_servers": features.HOSTED_TOOLS}
_READ = frozenset({"model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences",
                   "metadata", "tools", "tool_choice", "stream", "output_config"})


def request_out(body: Mapping[str, Any], dropped: list[str] | None = None) -> dict[str, Any]:
    """The chat request for a Messages request; what chat cannot carry is noted in `dropped`."""
    for name, value in body.items():
        if name in _DROPPED_FIELDS and value is not None and not _off(name, value):
            features.drop(dropped, _DROPPED_FIELDS[name])
        elif name not in _READ and name not in _DROPPED_FIELDS and value is not None:
            features.drop(dropped, features.OTHER)
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _joined_text(system, "system")})
    for i, message in enumerate(body.get("messages") or ()):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, Mapping) else None
        if role == "user":
            messages += _user(message.get("content"), where, dropped)
        elif role == "assistant":
            turn = _assistant(message.get("content"), where, dropped)
            if turn is not None:
                messages.append(turn)
        elif role == "system":   # Claude Code's mid-conversation instructions: chat has the same role
            messages.append({"role": "system", "content": _joined_text(message.get("content"), f"{where}.content")})
        else:
            raise Refused(f"'{where}.role' {role!r} has no chat completions counterpart.", f"{where}.role")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages, "max_tokens": body.get("max_tokens")}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user if len(user) <= 256 else user[:256]   # OpenAI's bound on `user`
    _output_config(body.get("output_config"), chat, dropped)
    if body.get("tools"):
        tools = [t for t in (_tool(t, i, dropped) for i, t in enumerate(body["tools"])) if t is not None]
        if tools:
            chat["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and chat.get("tools"):
        kind = str(choice.get("type"))
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(kind) or \
            {"type": "function", "function": {"name": choice.get("name")}}
        if choice.get("disable_parallel_tool_use"):
            chat["parallel_tool_calls"] = False
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}   # message_delta carries usage
    return chat


def _off(name: str, value: Any) -> bool:
    """Is the field set to what chat does anyway (nothing lost by leaving it out)?"""
    return name == "thinking" and isinstance(value, Mapping) and value.get("type") == "disabled"


def _output_config(config: Any, chat: dict[str, Any], dropped: list[str] | None) -> None:
    if not isinstance(config, Mapping):
        return
    if config.get("effort") is not None:
        features.drop(dropped, features.EFFORT)
    fmt = config.get("format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), Mapping):
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": fmt["schema"]}}


def _joined_text(blocks: Any, where: str) -> str:
    """A system prompt's text; its `cache_control` marks go (chat servers cache prefixes on their own)."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise Refused(f"'{where}' must be a string or an array of text blocks.", where)
    texts = []
    for j, block in enumerate(blocks):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise Refused(f"'{where}[{j}]' must be a text block.", f"{where}[{j}]")
        texts.append(block.get("text", ""))
    return "\n".join(texts)


def _user(content: Any, where: str, dropped: list[str] | None) -> list[dict[str, Any]]:
    """A user turn: its tool results become tool messages (first, as chat wants them right after
    the assistant's calls), the rest one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise Refused(f"'{where}.content' must be a string or an array of content blocks.", f"{where}.content")
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "tool_result":
            text, images = _result(block.get("content"), at)
            if block.get("is_error"):
                text = f"Error: {text}"
            tools.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
            parts += images   # chat's tool messages carry text only: the pictures follow as the user's
        else:
            part = _part(block, kind, at, dropped)
            if part is not None:
                parts.append(part)
    out = tools
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        out.append({"role": "user", "content": "\n".join(p["text"] for p in parts) if only_text else parts})
    return out


def _part(block: Any, kind: Any, where: str, dropped: list[str] | None) -> dict[str, Any] | None:
    """A content block as a chat content part; None when it has no place in chat."""
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), where)}}
    if kind == "search_result":   # text the client fetched itself: the target reads it as text
        body = "\n".join(b.get("text", "") for b in block.get("content") or () if isinstance(b, Mapping))
        return {"type": "text", "text": f"{block.get('title', '')} ({block.get('source', '')})\n{body}"}
    if kind == "document":
        source = block.get("source")
        if isinstance(source, Mapping) and source.get("type") == "text":
            return {"type": "text", "text": str(source.get("data", ""))}
        raise Refused("A document other than plain text cannot be read by an OpenAI-wire target.", where)
    if kind in _THOUGHT:
        features.drop(dropped, features.THINKING)
        return None
    if kind in _SERVER_RESULTS:
        features.drop(dropped, features.WEB_SEARCH if "web_search" in str(kind) else features.HOSTED_TOOLS)
        return None
    features.drop(dropped, features.OTHER)   # a block newer than this table: the rest is still worth answering
    return None


def _result(result: Any, where: str) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text, and its images as chat image parts."""
    if result is None or isinstance(result, str):
        return result or "", []
    if not isinstance(result, list):
        raise Refused(f"'{where}.content' must be a string or an array of blocks.", f"{where}.content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for k, block in enumerate(result):
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "image":
            images.append({"type": "image_url", "image_url": {"url": _image_url(block.get("source"),
                                                                                f"{where}.content[{k}]")}})
        elif kind == "search_result" or kind == "document":
            part = _part(block, kind, f"{where}.content[{k}]", None)
            texts.append(part["text"] if part else "")
        else:
            raise Refused(f"Tool results holding '{kind}' blocks cannot be sent to an OpenAI-wire target.",
                          f"{where}.content[{k}]")
    return "\n".join(texts), images


def _image_url(source: Any, where: str) -> str:
    if isinstance(source, Mapping) and source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if isinstance(source, Mapping) and source.get("type") == "url":
        return str(source.get("url"))
    raise Refused("Images must be base64 or url sources for an OpenAI-wire target.", f"{where}.source")


def _assistant(content: Any, where: str, dropped: list[str] | None) -> dict[str, Any] | None:
    """An assistant turn; None when nothing of it is left for chat (only thinking, say)."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise Refused(f"'{where}.content' must be a string or an array of content blocks.", f"{where}.content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()}})
        else:
            _part(block, kind, f"{where}.content[{j}]", dropped)   # thinking, server tools: dropped
    if not texts and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Any, i: int, dropped: list[str] | None) -> dict[str, Any] | None:
    """A client tool as a function tool; a tool Anthropic runs on its side is dropped (no one would run it)."""
    kind = tool.get("type") if isinstance(tool, Mapping) else None
    if not isinstance(tool, Mapping):
        raise Refused(f"'tools[{i}]' must be an object.", f"tools[{i}]")
    if kind not in (None, "custom"):
        features.drop(dropped, features.WEB_SEARCH if str(kind).startswith("web_search") else features.HOSTED_TOOLS)
        return None
    fn: dict[str, Any] = {"name": tool.get("name"), "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    if tool.get("strict") is not None:
        fn["strict"] = tool["strict"]
    return {"type": "function", "function": fn}


def tool_use_id(given: Any, message_id: str, index: int) -> str:
    """The call's id, or one of the gateway's where the server gave none or one that may come again in
    the same conversation (llama.cpp's `call_0`, say): Claude Code pairs results with calls by id."""
    if isinstance(given, str) and len(given) >= 12:
        return given
    return f"toolu_{message_id.removeprefix('msg_')}_{index}"


def usage_in(usage: Any) -> dict[str, int]:
    """Chat usage as Messages usage: Anthropic counts cache reads apart from `input_tokens`."""
    usage = usage if isinstance(usage, Mapping) else {}
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {"input_tokens": prompt - cached, "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached,
            "output_tokens": int(usage.get("completion_tokens") or 0)}


def _arguments(text: str) -> Any:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def answer_in(raw: bytes, message_id: str) -> dict[str, Any]:
    """A chat.completion answer as a Messages answer."""
    chat = orjson.loads(raw)
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": tool_use_id(call.get("id"), message_id, len(content)), "name": fn.get("name"),
                        "input": _arguments(fn.get("arguments") or "")})
    return {"id": message_id, "type": "message", "role": "assistant", "model": chat.get("model") or "",
            "content": content, "stop_reason": _STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None, "usage": usage_in(chat.get("usage"))}


@dataclass
class StreamState:
    """Where a translated stream is: the open content block and what is known of the end."""

    message_id: str
    started: bool = False
    block: int = -1                  # index of the open content block, -1 when none
    block_kind: str = ""
    calls: dict[int, int] = field(default_factory=dict)   # chat tool index → block index
    stop_reason: str | None = None
    usage: dict[str, int] | None = None


def events_in(state: StreamState, chunk: Mapping[str, Any]) -> list[bytes]:
    """One chat chunk → the Messages stream events it amounts to (0..n)."""
    out: list[bytes] = []
    if not state.started:
        state.started = True
        out.append(named_event("message_start", {"type": "message_start", "message": {
            "id": state.message_id, "type": "message", "role": "assistant", "model": chunk.get("model") or "",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "output_tokens": 0}}}))
    if chunk.get("usage"):
        state.usage = usage_in(chunk["usage"])
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content"):
            if state.block_kind != "text":
                out += _open(state, "text", {"type": "text", "text": ""})
            out.append(named_event("content_block_delta", {"type": "content_block_delta", "index": state.block,
                                                           "delta": {"type": "text_delta", "text": delta["content"]}}))
        for call in delta.get("tool_calls") or ():
            index = call.get("index", 0)
            fn = call.get("function") or {}
            if index not in state.calls:
                out += _open(state, "tool_use", {"type": "tool_use", "id": tool_use_id(call.get("id"), state.message_id, index),
                                                 "name": fn.get("name"),
                                                 "input": {}})
                state.calls[index] = state.block
            if fn.get("arguments"):
                out.append(named_event("content_block_delta", {
                    "type": "content_block_delta", "index": state.calls[index],
                    "delta": {"type": "input_json_delta", "partial_json": fn["arguments"]}}))
        if choice.get("finish_reason"):
            state.stop_reason = _STOP.get(choice["finish_reason"], "end_turn")
    return out


def _open(state: StreamState, kind: str, block: dict[str, Any]) -> list[bytes]:
    out = _close(state)
    state.block += 1
    state.block_kind = kind
    out.append(named_event("content_block_start", {"type": "content_block_start", "index": state.block,
                                                   "content_block": block}))
    return out


def _close(state: StreamState) -> list[bytes]:
    if not state.block_kind:
        return []
    state.block_kind = ""
    return [named_event("content_block_stop", {"type": "content_block_stop", "index": state.block})]


def finish(state: StreamState) -> list[bytes]:
    """The events that close a stream whose chat upstream ended cleanly."""
    out = _close(state)
    usage = state.usage or usage_in(None)
    out.append(named_event("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": state.stop_reason or "end_turn", "stop_sequence": None}, "usage": usage}))
    out.append(named_event("message_stop", {"type": "message_stop"}))
    return out


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error",
                529: "overloaded_error"}


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str) -> bytes:
    """Anthropic's error shape: `{"type": "error", "error": {"type", "message"}}`."""
    return orjson.dumps({"type": "error", "error": {"type": error_type(status), "message": message}})


def error_in(status: int, raw: bytes) -> bytes:
    """An OpenAI-shaped error body (or anything else an upstream said) in Anthropic's shape."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, Mapping) and data.get("type") == "error":
        return raw  # already Anthropic's
    error = data.get("error") if isinstance(data, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else None
    return error_body(status, message if isinstance(message, str) else f"The upstream answered HTTP {status}.")


def stream_error(message: str, status: int = 502) -> bytes:
    """The `error` event of a Messages stream that cannot go on."""
    return named_event("error", {"type": "error", "error": {"type": error_type(status), "message": message}})
