"""The request checks OpenAI's chat completions API makes (`POST /v1/chat/completions`). Pure.

`problem(body)` is the first reason the API would answer 400, worded like its errors, or None.
What the API takes today is accepted; unknown fields ("Unrecognized request argument supplied"),
wrong types, unknown roles and tool messages that answer no call are refused. The tables below are
what is known: a new field, role or part is one line.
"""

from __future__ import annotations

from typing import Any

from gateway.sim.checks import OPENAI, REASONING_EFFORTS, Check, Kit, any_value, nullable, openai_name

_K = Kit(OPENAI)
string, boolean, integer, number, list_of, obj, one_of = (_K.string, _K.boolean, _K.integer, _K.number, _K.list_of,
                                                           _K.obj, _K.one_of)
_typed = _K.typed
_function_name = openai_name(64)


_STRING_OR_LIST = _K.either("a string or an array of strings", string, list_of(string))
_STOP = nullable(_K.either("a string or an array of up to 4 strings", string,
                           lambda v, at: None if isinstance(v, list) and len(v) <= 4 and all(isinstance(s, str) for s in v)
                           else "too many"))
_TEXT_PART = obj({"type": any_value, "text": string, "prompt_cache_breakpoint": any_value})
_PARTS: dict[str, Check] = {
    "text": _TEXT_PART,
    "image_url": obj({"type": any_value, "image_url": obj({"url": string, "detail": one_of("auto", "low", "high")}),
                      "prompt_cache_breakpoint": any_value}),
    "input_audio": obj({"type": any_value, "input_audio": obj({"data": string, "format": string}),
                        "prompt_cache_breakpoint": any_value}),
    "file": obj({"type": any_value, "file": obj({"file_data": string, "file_id": string, "filename": string}),
                 "prompt_cache_breakpoint": any_value}),
    "refusal": obj({"type": any_value, "refusal": string}),
}


def _content(parts: tuple[str, ...], optional: bool = False) -> Check:
    """A message's content: a string or a list of the named part types (or null where `optional`)."""
    check = _K.string_or_list(_typed({p: _PARTS[p] for p in parts}), "one of a string or array of objects")
    return nullable(check) if optional else check


_TOOL_CALL = _typed({
    "function": obj({"id": string, "type": any_value, "function": obj({"name": string, "arguments": string})}),
    "custom": obj({"id": string, "type": any_value, "custom": obj({"name": string, "input": string})}),
})
_INSTRUCTION = {"role": any_value, "content": _content(("text",)), "name": string}
# Each role and the fields its message may carry.
ROLES: dict[str, dict[str, Check]] = {
    "developer": _INSTRUCTION,
    "system": _INSTRUCTION,
    "user": {"role": any_value, "content": _content(("text", "image_url", "input_audio", "file")), "name": string},
    "assistant": {"role": any_value, "content": _content(("text", "refusal"), optional=True), "name": string,
                  "refusal": nullable(string), "tool_calls": list_of(_TOOL_CALL), "function_call": nullable(any_value),
                  "audio": nullable(obj({"id": string}))},
    "tool": {"role": any_value, "content": _content(("text",)), "tool_call_id": string},
    "function": {"role": any_value, "content": nullable(string), "name": string},
}
_REQUIRED_IN_MESSAGE = {"tool": ("content", "tool_call_id"), "function": ("name",), "user": ("content",),
                        "system": ("content",), "developer": ("content",)}

_TOOLS = list_of(_typed({
    "function": obj({"type": any_value, "function": obj({
        "name": _function_name, "description": string, "parameters": obj(None), "strict": nullable(boolean)})}),
    "custom": obj({"type": any_value, "custom": obj({"name": _function_name, "description": string,
                                                     "format": obj(None)})}),
}))
_TOOL_CHOICE = _K.either(
    "'none', 'auto', 'required' or a named tool", one_of("none", "auto", "required"),
    _typed({"function": obj({"type": any_value, "function": obj({"name": string})}),
            "custom": obj({"type": any_value, "custom": obj({"name": string})}),
            "allowed_tools": obj({"type": any_value, "allowed_tools": obj({"mode": one_of("auto", "required"),
                                                                           "tools": list_of(obj(None))})})}))
_RESPONSE_FORMAT = _typed({
    "text": obj({"type": any_value}),
    "json_object": obj({"type": any_value}),
    "json_schema": obj({"type": any_value, "json_schema": obj({"name": string, "description": string,
                                                                "schema": obj(None), "strict": nullable(boolean)})}),
})


def _logit_bias(value: Any, at: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, int) and -100 <= v <= 100 for v in value.values()):
        return OPENAI.expected(at, "an object mapping token ids to integers from -100 to 100")
    return None


def _metadata(value: Any, at: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16 \
            or not all(isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
                       for k, v in value.items()):
        return OPENAI.expected(at, "an object of at most 16 string values")
    return None


# Top-level fields and what each value must be. `messages` is checked as a whole afterwards.
FIELDS: dict[str, Check] = {
    "model": string,
    "messages": any_value,
    "audio": nullable(obj({"voice": any_value, "format": string})),
    "frequency_penalty": nullable(number(-2, 2)),
    "presence_penalty": nullable(number(-2, 2)),
    "function_call": any_value,
    "functions": list_of(obj(None)),
    "logit_bias": _logit_bias,
    "logprobs": nullable(boolean),
    "top_logprobs": nullable(integer(0, 20)),
    "max_tokens": nullable(integer(1)),
    "max_completion_tokens": nullable(integer(1)),
    "metadata": _metadata,
    "modalities": nullable(list_of(one_of("text", "audio"))),
    "moderation": any_value,
    "n": nullable(integer(1, 128)),
    "parallel_tool_calls": boolean,
    "prediction": nullable(obj({"type": one_of("content"), "content": _content(("text",))})),
    "prompt_cache_key": nullable(string),
    "prompt_cache_options": any_value,
    "prompt_cache_retention": nullable(one_of("in_memory", "24h")),
    "reasoning_effort": nullable(one_of(*REASONING_EFFORTS)),
    "response_format": _RESPONSE_FORMAT,
    "safety_identifier": nullable(string),
    "seed": nullable(integer()),
    "service_tier": nullable(one_of("auto", "default", "flex", "scale", "priority", "fast")),
    "stop": _STOP,
    "store": nullable(boolean),
    "stream": nullable(boolean),
    "stream_options": nullable(obj({"include_usage": boolean, "include_obfuscation": boolean})),
    "temperature": nullable(number(0, 2)),
    "top_p": nullable(number(0, 1)),
    "tool_choice": _TOOL_CHOICE,
    "tools": _TOOLS,
    "user": string,
    "verbosity": nullable(one_of("low", "medium", "high")),
    "web_search_options": obj({"search_context_size": one_of("low", "medium", "high"),
                               "user_location": nullable(obj(None))}),
}


def problem(body: Any, allow_unknown: bool = False) -> str | None:
    """The first reason the real API would answer 400 to this body, or None.

    `allow_unknown`: let fields the table does not know pass, as OpenAI-compatible servers other
    than OpenAI's own (vLLM, Ollama …) do; OpenAI refuses them.
    """
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    for name in ("model", "messages"):
        if name not in body:
            return f"Missing required parameter: '{name}'."
    found = _K.top_level(FIELDS, body, allow_unknown)
    if found:
        return found
    if body.get("stream_options") is not None and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    if body.get("tool_choice") not in (None, "none", "auto") and not body.get("tools"):
        return "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
    return _messages(body["messages"])


def _messages(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return OPENAI.expected("messages", "an array")
    if not messages:
        return "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
    for i, m in enumerate(messages):
        at = f"messages[{i}]"
        if not isinstance(m, dict):
            return OPENAI.expected(at, "an object")
        role = m.get("role")
        fields = ROLES.get(role) if isinstance(role, str) else None
        if fields is None:
            return OPENAI.unsupported(f"{at}.role", role, ROLES)
        for name in _REQUIRED_IN_MESSAGE.get(str(role), ()):
            if name not in m:
                return f"Missing required parameter: '{at}.{name}'."
        found = obj(fields)(m, at)
        if found:
            return found
    return _tool_pairing(messages)


def _tool_pairing(messages: list[dict[str, Any]]) -> str | None:
    """A tool message answers a call of the assistant message before it; every call is answered."""
    pending: list[str] = []      # calls of the last assistant message not yet answered
    open_calls = False           # inside the run of tool messages after an assistant's calls
    for i, m in enumerate(messages):
        role = m["role"]
        if role == "tool":
            if not open_calls:
                return (f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                        f"with 'tool_calls'. (messages[{i}])")
            if m["tool_call_id"] in pending:
                pending.remove(m["tool_call_id"])
            continue
        if pending:
            return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}")
        calls = m.get("tool_calls") if role == "assistant" else None
        pending = [str(c.get("id")) for c in calls or ()]
        open_calls = bool(pending)
    if pending:
        return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}")
    return None
