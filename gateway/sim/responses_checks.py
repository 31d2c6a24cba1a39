"""The request checks OpenAI's Responses API makes (`POST /v1/responses`). Pure.

`problem(body)` is the first reason the API would answer 400, worded like its errors, or None.
What the API and its released clients use today is accepted (Codex CLI: `namespace` tools, hosted
`web_search`, `client_metadata`, `prompt_cache_key`, `include`, `reasoning` input items carrying
`encrypted_content`, input items with ids under `store: false`; the Vercel AI SDK: `item_reference`);
unknown parameters, item and tool types, and wrong types are refused. The tables below are what
is known: a new field, item or tool is one line.
"""

from __future__ import annotations

from typing import Any

from gateway.sim.checks import (OPENAI, REASONING_EFFORTS, Check, Kit, Words, any_value, nullable,
                                openai_name)

# The Responses API words an unknown field as `Unknown parameter: 'x'.`, and says where a value it does not take stood.
WORDS = Words(expected=OPENAI.expected, extra=lambda at: f"Unknown parameter: '{at}'.", index=OPENAI.index,
              field=OPENAI.field,
              unsupported=lambda at, value, supported: f"{OPENAI.unsupported(at, value, supported)} ({at})")
_K = Kit(WORDS)
string, boolean, integer, number, list_of, obj, one_of = (_K.string, _K.boolean, _K.integer, _K.number, _K.list_of,
                                                           _K.obj, _K.one_of)
_typed = _K.typed
_name = openai_name(128)
INCLUDES = ("file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
            "message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
            "reasoning.encrypted_content", "message.output_text.logprobs")


def _loose(*required: str) -> Check:
    """An object with these fields present; the rest of its shape is the API's business, not the sim's."""
    def check(value: Any, at: str) -> str | None:
        if not isinstance(value, dict):
            return WORDS.expected(at, "an object")
        for name in required:
            if name not in value:
                return f"Missing required parameter: '{at}.{name}'."
        return None
    return check


_FUNCTION_TOOL = obj({"type": any_value, "name": _name, "description": nullable(string), "parameters": nullable(obj(None)),
                      "strict": nullable(boolean), "defer_loading": boolean, "allowed_callers": any_value,
                      "output_schema": any_value, "async": any_value})
_CUSTOM_TOOL = obj({"type": any_value, "name": _name, "description": string, "format": obj(None),
                    "defer_loading": boolean, "allowed_callers": any_value, "async": any_value})
# A namespace groups tools under a name; only function and custom tools sit inside one.
_NAMESPACE_TOOL = obj({"type": any_value, "name": _name, "description": string,
                       "tools": list_of(_typed({"function": _FUNCTION_TOOL, "custom": _CUSTOM_TOOL}), min_items=1)})
TOOLS: dict[str, Check] = {
    "function": _FUNCTION_TOOL, "custom": _CUSTOM_TOOL, "namespace": _NAMESPACE_TOOL,
    # Hosted tools: run by OpenAI; their options are not the sim's to judge.
    "web_search": _loose(), "web_search_2025_08_26": _loose(), "web_search_preview": _loose(),
    "web_search_preview_2025_03_11": _loose(), "file_search": _loose(), "code_interpreter": _loose("container"),
    "image_generation": _loose(), "mcp": _loose("server_label"), "local_shell": _loose(), "shell": _loose(),
    "computer": _loose(), "computer_use_preview": _loose(), "apply_patch": _loose(), "tool_search": _loose(),
    "programmatic_tool_calling": _loose(),
}
_TOOL_CHOICE = _K.either("'none', 'auto', 'required' or a tool", one_of("none", "auto", "required"), _typed({
    "function": obj({"type": any_value, "name": string}),
    "custom": obj({"type": any_value, "name": string}),
    "mcp": obj({"type": any_value, "server_label": string, "name": nullable(string)}),
    "allowed_tools": obj({"type": any_value, "mode": one_of("auto", "required"), "tools": list_of(obj(None))}),
    **{kind: obj({"type": any_value}) for kind in (
        "file_search", "web_search_preview", "web_search_preview_2025_03_11", "computer", "computer_use_preview",
        "computer_use", "image_generation", "code_interpreter", "programmatic_tool_calling", "apply_patch", "shell")},
}))

_PARTS: dict[str, Check] = {
    "input_text": obj({"type": any_value, "text": string, "prompt_cache_breakpoint": any_value}),
    "input_image": obj({"type": any_value, "image_url": nullable(string), "file_id": nullable(string),
                        "detail": one_of("auto", "low", "high", "original"), "prompt_cache_breakpoint": any_value}),
    "input_file": obj({"type": any_value, "file_data": string, "file_id": nullable(string), "file_url": string,
                       "filename": string, "detail": any_value, "prompt_cache_breakpoint": any_value}),
    "input_audio": _loose("input_audio"),
    "output_text": obj({"type": any_value, "text": string, "annotations": list_of(obj(None)), "logprobs": any_value}),
    "refusal": obj({"type": any_value, "refusal": string}),
}
_INPUT_PARTS = ("input_text", "input_image", "input_file", "input_audio")


def _content(parts: tuple[str, ...]) -> Check:
    return _K.string_or_list(_typed({p: _PARTS[p] for p in parts}), "a string or an array of content parts")


_ROLES_IN = ("user", "system", "developer")


def _message(value: dict[str, Any], at: str) -> str | None:
    role = value.get("role")
    if role not in (*_ROLES_IN, "assistant"):
        return f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'. ({at}.role)"
    # An assistant's earlier output comes back with output parts; a user, system or developer turn with input parts.
    parts = ("output_text", "refusal", "input_text") if role == "assistant" else _INPUT_PARTS
    return obj({"type": any_value, "role": any_value, "id": string, "status": any_value, "phase": any_value,
                "content": _content(parts)})(value, at) or \
        (None if "content" in value else f"Missing required parameter: '{at}.content'.")


_SUMMARY = list_of(obj({"type": one_of("summary_text"), "text": string}))
_OUTPUT = _K.either("a string or an array of content parts", string, list_of(obj(None)))
# Input items by type; a message may leave its type out.
ITEMS: dict[str, Check] = {
    "message": _message,
    "reasoning": obj({"type": any_value, "id": nullable(string), "summary": _SUMMARY, "content": nullable(list_of(obj(None))),
                      "encrypted_content": nullable(string), "status": any_value}),
    "function_call": obj({"type": any_value, "id": string, "call_id": string, "name": string, "arguments": string,
                          "namespace": nullable(string), "status": any_value, "caller": any_value, "async": any_value}),
    "function_call_output": obj({"type": any_value, "id": nullable(string), "call_id": string, "output": _OUTPUT,
                                 "status": any_value, "caller": any_value, "name": any_value, "namespace": any_value}),
    "custom_tool_call": _loose("call_id", "name", "input"),
    "custom_tool_call_output": _loose("call_id", "output"),
    "item_reference": obj({"type": any_value, "id": string}),
    **{kind: _loose() for kind in (
        "file_search_call", "computer_call", "computer_call_output", "web_search_call", "tool_search_call",
        "tool_search_output", "additional_tools", "configuration_update", "compaction", "compaction_trigger",
        "image_generation_call", "code_interpreter_call", "local_shell_call", "local_shell_call_output",
        "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_list_tools",
        "mcp_approval_request", "mcp_approval_response", "mcp_call", "program", "program_output")},
}
_ITEM = _typed(ITEMS, default="message")


_input = _K.string_or_list(_ITEM, "a string or an array of input items")


def _metadata(value: Any, at: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16 or not all(isinstance(v, str) for v in value.values()):
        return WORDS.expected(at, "an object of at most 16 string values")
    return None


_TEXT = obj({"format": _typed({"text": obj({"type": any_value}), "json_object": obj({"type": any_value}),
                               "json_schema": obj({"type": any_value, "name": string, "schema": obj(None),
                                                   "description": string, "strict": nullable(boolean)})}),
             "verbosity": nullable(one_of("low", "medium", "high"))})
_REASONING = obj({"effort": nullable(one_of(*REASONING_EFFORTS)),
                  "summary": nullable(one_of("auto", "concise", "detailed")),
                  "generate_summary": nullable(one_of("auto", "concise", "detailed")),
                  "context": nullable(one_of("auto", "current_turn", "all_turns")), "mode": any_value})

# Top-level fields and what each value must be.
FIELDS: dict[str, Check] = {
    "model": string,
    "input": _input,
    "instructions": nullable(_K.either("a string or an array of input items", string, list_of(obj(None)))),
    "tools": list_of(_typed(TOOLS)),
    "tool_choice": _TOOL_CHOICE,
    "parallel_tool_calls": nullable(boolean),
    "max_output_tokens": nullable(integer(16)),
    "max_tool_calls": nullable(integer(1)),
    "temperature": nullable(number(0, 2)),
    "top_p": nullable(number(0, 1)),
    "top_logprobs": nullable(integer(0, 20)),
    "truncation": nullable(one_of("auto", "disabled")),
    "reasoning": nullable(_REASONING),
    "text": _TEXT,
    "include": nullable(list_of(one_of(*INCLUDES))),
    "store": nullable(boolean),
    "stream": nullable(boolean),
    "stream_options": nullable(obj({"include_obfuscation": boolean})),
    "background": nullable(boolean),
    "previous_response_id": nullable(string),
    "conversation": nullable(_K.either("a string or an object", string, obj(None))),
    "prompt": nullable(obj(None)),
    "prompt_cache_key": nullable(string),
    "prompt_cache_retention": nullable(one_of("in_memory", "24h")),
    "prompt_cache_options": any_value,
    "safety_identifier": nullable(string),
    "service_tier": nullable(one_of("auto", "default", "flex", "scale", "priority", "fast", "ultrafast")),
    "metadata": _metadata,
    # Codex CLI sends its turn's metadata here (a string map); OpenAI takes it.
    "client_metadata": nullable(obj(None)),
    "user": string,
    "context_management": any_value, "moderation": any_value, "image": any_value, "access_programs": any_value,
    "background_options": any_value,
}


def problem(body: Any, allow_unknown: bool = False) -> str | None:
    """The first reason the real API would answer 400 to this body, or None.

    `allow_unknown`: let fields the table does not know pass, as OpenAI-compatible servers other
    than OpenAI's own (vLLM, Ollama …) do; OpenAI refuses them.
    """
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    if "model" not in body:
        return "Missing required parameter: 'model'."
    found = _K.top_level(FIELDS, body, allow_unknown)
    if found:
        return found
    if body.get("stream_options") is not None and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    if body.get("previous_response_id") and body.get("conversation"):
        return "Mutually exclusive parameters: 'previous_response_id' and 'conversation'."
    return _tool_names(body.get("tools"))


def _tool_names(tools: Any) -> str | None:
    """Function tools are called by name: two with one name (in one namespace) cannot be told apart."""
    seen: set[tuple[str | None, str]] = set()
    for t in tools or ():
        inner = [(t.get("name"), s) for s in t.get("tools") or ()] if t.get("type") == "namespace" else [(None, t)]
        for namespace, tool in inner:
            if tool.get("type") in ("function", "custom"):
                key = (namespace, str(tool.get("name")))
                if key in seen:
                    return f"Duplicate tool name: '{key[1]}'."
                seen.add(key)
    return None
