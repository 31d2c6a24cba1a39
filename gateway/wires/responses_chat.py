"""OpenAI Responses ⇄ OpenAI chat completions: a Responses request out as a chat request, and a chat
answer back as a Response object (its stream's events: `responses_events.py`; its tools:
`responses_tools.py`).

Chat is the gateway's lingua franca where wires cross: a Responses client served by a chat-only
server, or by Anthropic through its chat translation. What chat cannot carry is dropped and named
(`features.py`) or, where no answer would be worth having, refused (`Refused`: the target is
skipped); fields that only describe the stored response (metadata, store, …) are echoed back in
the Response object and not sent upstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.wires import features
from gateway.wires.events import named_event
from gateway.wires.refused import Refused
from gateway.wires.responses_tools import (CUSTOM_INPUT, ToolName, as_client_named, chat_tool_choice, chat_tools,
                                          flat_name, tool_names)

# Responses fields a chat request takes under the same name and meaning.
_SAME = ("temperature", "top_p", "parallel_tool_calls", "user", "top_logprobs", "service_tier", "prompt_cache_key",
         "prompt_cache_retention", "safety_identifier")
# Fields that describe the stored response or the client's own bookkeeping: echoed, not sent.
_ECHO_ONLY = frozenset({"metadata", "store", "truncation", "max_tool_calls", "stream_options", "client_metadata"})
# Fields with no chat equivalent at all: this target cannot serve the request.
_REFUSED = {"background": "background responses", "prompt": "prompt templates", "conversation": "conversations"}
_READ = frozenset({"model", "input", "instructions", "max_output_tokens", "tools", "tool_choice", "text", "stream",
                   "previous_response_id", "reasoning", "include", *_SAME, *_ECHO_ONLY, *_REFUSED})
# Items a hosted tool left in the conversation: only the provider that ran the tool can read them.
_HOSTED_CALLS = frozenset({"web_search_call", "file_search_call", "computer_call", "computer_call_output",
                           "code_interpreter_call", "image_generation_call", "local_shell_call",
                           "local_shell_call_output", "shell_call", "shell_call_output", "apply_patch_call",
                           "apply_patch_call_output", "mcp_call", "mcp_list_tools", "mcp_approval_request",
                           "mcp_approval_response", "tool_search_call", "tool_search_output"})
_FINISH = {"stop": ("completed", None), "tool_calls": ("completed", None), "function_call": ("completed", None),
           "length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")}


def request_out(body: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = (),
                dropped: list[str] | None = None,
                references: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The chat request for a Responses request; `history` is the expanded `previous_response_id`
    chain, `references` the stored items an `item_reference` may name. What chat cannot carry is
    noted in `dropped`."""
    for name, what in _REFUSED.items():
        if body.get(name):
            raise Refused(f"This target speaks chat completions, which has no {what}.", name)
    if any(name not in _READ for name, value in body.items() if value is not None):
        features.drop(dropped, features.OTHER)
    names = tool_names(body)
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif isinstance(instructions, list):
        _append_items(messages, instructions, "instructions", names, dropped, references or {})
    elif instructions:
        raise Refused("'instructions' must be a string or a list of input items.", "instructions")
    _append_items(messages, history, "previous_response_id", names, dropped, references or {})
    given = body.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        _append_items(messages, given, "input", names, dropped, references or {})
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for name in _SAME:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("top_logprobs"):
        chat["logprobs"] = True
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    _reasoning(body, chat, dropped)
    tools = [fn for i, tool in enumerate(body.get("tools") or ()) for fn in chat_tools(tool, i, dropped)]
    if tools:
        chat["tools"] = tools
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = chat_tool_choice(body["tool_choice"], dropped)
    elif body.get("tool_choice") not in (None, "auto", "none"):
        features.drop(dropped, features.HOSTED_TOOLS)   # it named a tool that did not cross
    text = body.get("text")
    fmt = _response_format(text)
    if fmt is not None:
        chat["response_format"] = fmt
    if isinstance(text, Mapping) and text.get("verbosity") is not None:
        chat["verbosity"] = text["verbosity"]
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}   # response.completed carries usage
    return chat


def _reasoning(body: Mapping[str, Any], chat: dict[str, Any], dropped: list[str] | None) -> None:
    """Effort maps to chat's `reasoning_effort`; summaries and encrypted reasoning have no chat form."""
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping):
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
        if reasoning.get("summary") not in (None, "none"):
            features.drop(dropped, features.REASONING)
    if any(isinstance(i, str) and i.startswith("reasoning.") for i in body.get("include") or ()):
        features.drop(dropped, features.REASONING)
    elif body.get("include"):
        features.drop(dropped, features.INCLUDE)


def _append_items(messages: list[dict[str, Any]], items: Sequence[Any], where: str, names: Mapping[str, ToolName],
                  dropped: list[str] | None, references: Mapping[str, Mapping[str, Any]]) -> None:
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise Refused(f"'{at}' must be an object.", at)
        kind = item.get("type", "message")
        if kind == "item_reference":
            found = references.get(str(item.get("id")))
            if found is None:
                raise Refused(f"'{at}' names item {item.get('id')!r}, which this gateway did not keep; only "
                              "the provider that stored it can resolve it.", at)
            item, kind = found, found.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise Refused(f"'{at}.role' must be user, assistant, system or developer.", f"{at}.role")
            messages.append({"role": "system" if role == "developer" else role,
                             "content": _content(item.get("content"), role, f"{at}.content")})
        elif kind in ("function_call", "custom_tool_call"):
            name = flat_name(item.get("namespace"), str(item.get("name")))
            arguments = item.get("arguments") or "{}" if kind == "function_call" else \
                orjson.dumps({CUSTOM_INPUT: item.get("input") or ""}).decode()
            _add_call(messages, {"id": item.get("call_id"), "type": "function",
                                 "function": {"name": name, "arguments": arguments}})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            text = output if isinstance(output, str) else _text(output)
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
        elif kind in ("reasoning", "compaction"):
            # The origin's own reasoning (or its encrypted summary of earlier turns): another model
            # can read neither.
            features.drop(dropped, features.REASONING)
        elif kind in _HOSTED_CALLS:
            features.drop(dropped, features.WEB_SEARCH if kind == "web_search_call" else features.HOSTED_TOOLS)
        else:
            features.drop(dropped, features.OTHER)


def _add_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """A tool call joins the assistant turn just before it, as chat keeps a turn's calls together."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and "tool_calls" in last:
        last["tool_calls"].append(call)
    elif last is not None and last["role"] == "assistant" and isinstance(last.get("content"), str):
        last["tool_calls"] = [call]
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _text(parts: Any) -> str:
    if not isinstance(parts, list):
        return "" if parts is None else str(parts)
    return "".join(p.get("text", "") for p in parts if isinstance(p, Mapping))


def _content(content: Any, role: str, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise Refused(f"'{where}' must be a string or an array of content parts.", where)
    if role != "user":
        return _text(content)   # chat takes text only for system and assistant turns
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image" and part.get("image_url"):
            image = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise Refused(f"Content parts of type '{kind}' cannot be sent to a chat completions target.",
                          f"{where}[{j}]")
    return parts


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(fmt, Mapping) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise Refused(f"Text format '{fmt['type']}' cannot be sent to a chat completions target.", "text.format")


def skeleton(body: Mapping[str, Any], response_id: str, created_at: int, model: str) -> dict[str, Any]:
    """A Response object with the request's settings echoed, before any output."""
    return {
        "id": response_id, "object": "response", "created_at": created_at, "status": "in_progress",
        "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": model, "output": [], "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"), "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
        "tools": list(body.get("tools") or []), "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": None, "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


def usage_in(usage: Any) -> dict[str, Any] | None:
    """Chat usage as Responses usage."""
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": int(cached)},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": int(reasoning)},
            "total_tokens": prompt + completion}


def finish_response(response: dict[str, Any], finish_reason: Any) -> None:
    status, reason = _FINISH.get(finish_reason or "stop", ("completed", None))
    response["status"] = status
    response["incomplete_details"] = {"reason": reason} if reason else None


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status != "in_progress" \
        else []
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}


def answer_in(raw: bytes, body: Mapping[str, Any], response_id: str, created_at: int,
              names: Mapping[str, ToolName] | None = None) -> dict[str, Any]:
    """A chat.completion answer as a Response object."""
    chat = orjson.loads(raw)
    response = skeleton(body, response_id, created_at, chat.get("model") or body.get("model") or "")
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    suffix = response_id.removeprefix("resp_")
    if message.get("content"):
        response["output"].append(message_item(f"msg_{suffix}", message["content"], "completed"))
    for i, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        response["output"].append(as_client_named(call_item(
            f"fc_{suffix}_{i}", call.get("id") or f"call_{suffix}_{i}", fn.get("name") or "",
            fn.get("arguments") or "", "completed"), names or {}))
    finish_response(response, choice.get("finish_reason"))
    response["usage"] = usage_in(chat.get("usage"))
    return response


def error_event(state_seq: int, message: str, code: str) -> bytes:
    """The `error` event of a Responses stream that cannot go on."""
    return named_event("error", {"type": "error", "code": code, "message": message, "param": None,
                                 "sequence_number": state_seq})
