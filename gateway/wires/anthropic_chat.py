"""OpenAI chat completions → Anthropic Messages: the request going out.

`request_out` turns a chat completions body into a Messages body, or raises `Refused` naming
the field it cannot carry: a field that would change the answer is never dropped in silence. The
answer coming back is `gateway/wires/anthropic_answer.py`.

Shapes (Anthropic's Messages API reference; OpenAI's chat completions reference):
- system and developer messages, wherever they stand, join the top-level `system` in order;
- user content: text parts stay text; `image_url` parts become `image` blocks (a `data:` URL as
  base64 with its media type, an http(s) URL as a `url` source);
- assistant `tool_calls` become `tool_use` blocks (arguments parsed from their JSON string); `tool`
  messages become `tool_result` blocks in a user turn; consecutive turns of one role are merged;
- `max_tokens` (Anthropic requires it): the request's `max_completion_tokens` or `max_tokens`, else
  the model's `max_output_tokens` from the policy, else `DEFAULT_MAX_TOKENS`;
- `stop` → `stop_sequences`, `user` → `metadata.user_id`, `temperature` and `top_p` as they are;
- `tool_choice`: auto → auto, none → none, required → any, a named function → tool;
  `parallel_tool_calls: false` → `disable_parallel_tool_use`;
- `response_format` json_schema / json_object: one forced tool, `ANSWER_TOOL`, whose input is the
  answer (the answer side turns it back into the message's content); not together with tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.wires import features
from gateway.wires.refused import Refused

DEFAULT_MAX_TOKENS = 4096
# The forced tool that carries a JSON answer when the client asked for a response_format.
ANSWER_TOOL = "json_answer"

# Fields the gateway itself uses or that need no counterpart.
_CONSUMED = frozenset({"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
                       "temperature", "top_p", "stop", "user", "tools", "tool_choice", "parallel_tool_calls",
                       "response_format"})
# Fields the Messages API has no counterpart for, whose loss leaves the answer worth having: dropped,
# and named in the answer (`x-recloser-dropped`).
_DROPPED = {"prompt_cache_key": features.PROMPT_CACHE_KEY, "prompt_cache_retention": features.PROMPT_CACHE_KEY,
            "reasoning_effort": features.EFFORT, "verbosity": features.VERBOSITY,
            "web_search_options": features.WEB_SEARCH, "service_tier": features.SERVICE_TIER}
# Bookkeeping for the origin provider (its stored completions, its abuse tracking): nothing of the answer.
_ORIGINS_OWN = frozenset({"metadata", "store", "safety_identifier"})
# Fields that are harmless at these values (their OpenAI defaults) and untranslatable otherwise.
_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "n": (None, 1), "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0),
    "logprobs": (None, False), "top_logprobs": (None, 0), "logit_bias": (None, {}), "seed": (None,),
    "store": (None, False), "metadata": (None, {}), "service_tier": (None, "auto", "default"),
    "modalities": (None, ["text"]), "audio": (None,), "prediction": (None,), "reasoning_effort": (None,),
    "web_search_options": (None,), "functions": (None,), "function_call": (None,), "verbosity": (None,),
}


def _refused(param: str, reason: str) -> Refused:
    """A request field the Messages API cannot carry, named the way OpenAI errors name it."""
    return Refused(f"'{param}' {reason}", param)


def wants_json_answer(body: Mapping[str, Any]) -> bool:
    """Does the answer come back as `ANSWER_TOOL`'s input (a json_object or json_schema response_format)?"""
    return _answer_schema(body.get("response_format")) is not None


def max_tokens_for(body: Mapping[str, Any], facts_max: int | None) -> int:
    """What Anthropic's required `max_tokens` becomes: the request's, the model's, or the default."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _refused(name, "must be a positive integer")
            return value
    return facts_max or DEFAULT_MAX_TOKENS


def request_out(body: Mapping[str, Any], model: str, stream: bool, facts_max_tokens: int | None = None,
                dropped: list[str] | None = None) -> bytes:
    """The Messages request for a chat completions `body`, sent to `model`; what it had to leave out
    is noted in `dropped`."""
    for name, value in body.items():
        if name in _CONSUMED or name in _ORIGINS_OWN or value is None:
            continue
        if name in _DROPPED:
            features.drop(dropped, _DROPPED[name])
            continue
        allowed = _DEFAULTS.get(name)
        if allowed is None:   # a field newer than this table: the answer is still worth having
            features.drop(dropped, features.OTHER)
        elif value not in allowed:
            raise _refused(name, "cannot be honoured by the Anthropic Messages API")
    system, messages = _messages(body.get("messages"))
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens_for(body, facts_max_tokens),
                           "messages": messages}
    if system:
        out["system"] = system[0]["text"] if len(system) == 1 else system
    if stream:
        out["stream"] = True
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop is not None:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user") is not None:
        out["metadata"] = {"user_id": body["user"]}
    _tools(body, out)
    return orjson.dumps(out)


def _messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(messages, list) or not messages:
        raise _refused("messages", "must be a non-empty list")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _refused(where, "must be an object")
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise _refused(f"{where}.role", f"'{role}' cannot be sent to the Anthropic Messages API")
        if m.get("name") is not None:
            raise _refused(f"{where}.name", "has no counterpart in the Anthropic Messages API")
        if role in ("system", "developer"):
            system += _text_blocks(m.get("content"), f"{where}.content")
        elif role == "user":
            _append(turns, "user", _user_blocks(m.get("content"), f"{where}.content"))
        elif role == "assistant":
            blocks = _assistant_blocks(m, where)
            if blocks:   # a turn that held only what another model thought: nothing to say here
                _append(turns, "assistant", blocks)
        else:
            _append(turns, "user", [_tool_result(m, where)])
    if not turns:
        raise _refused("messages", "has only system messages; Anthropic needs a user message")
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Consecutive turns of one role become one (parallel tool results, a tool result then text)."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"] += blocks
    else:
        turns.append({"role": role, "content": blocks})


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _refused(where, "must be a string or a list of text parts")
    out = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise _refused(f"{where}[{j}]", "must be a text part here")
        out.append({"type": "text", "text": part["text"]})
    return out


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _refused(where, "must be a string or a list of content parts")
    out = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            out.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            out.append(_image(part.get("image_url"), f"{where}[{j}].image_url"))
        else:
            raise _refused(f"{where}[{j}].type", f"'{kind}' parts cannot be sent to the Anthropic Messages API")
    return out


def _image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise _refused(f"{where}.url", "must be a string")
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type.startswith("image/"):
            raise _refused(f"{where}.url", "must be a base64 data URL of an image")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _refused(f"{where}.url", "must be an http(s) URL or a base64 data URL")


def _assistant_blocks(m: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = m.get("content")
    blocks = [] if content is None or content == "" else _text_blocks(content, f"{where}.content")
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _refused(f"{where}.tool_calls", "must be a list")
    for k, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or call.get("type", "function") != "function" or not call.get("id"):
            raise _refused(f"{where}.tool_calls[{k}]", "must be a function call with an id")
        try:
            arguments = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise _refused(f"{where}.tool_calls[{k}].function.arguments", "is not JSON") from None
        blocks.append({"type": "tool_use", "id": call["id"], "name": fn.get("name"), "input": arguments})
    if m.get("refusal") is not None or m.get("audio") is not None:
        raise _refused(f"{where}.{'refusal' if m.get('refusal') is not None else 'audio'}",
                             "has no counterpart in the Anthropic Messages API")
    return blocks


def _tool_result(m: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(m.get("tool_call_id"), str):
        raise _refused(f"{where}.tool_call_id", "is required for a tool message")
    content = m.get("content")
    return {"type": "tool_result", "tool_use_id": m["tool_call_id"],
            "content": content if isinstance(content, str) else _text_blocks(content, f"{where}.content")}


def _tools(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    tools, choice, fmt = body.get("tools"), body.get("tool_choice"), body.get("response_format")
    answer_schema = _answer_schema(fmt)
    if answer_schema is not None:
        if tools:
            raise _refused("response_format", "cannot be honoured together with tools on Anthropic")
        out["tools"] = [{"name": ANSWER_TOOL, "description": "Give the answer as this tool's input.",
                         "input_schema": answer_schema}]
        out["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}
        return
    if tools:
        if not isinstance(tools, list):
            raise _refused("tools", "must be a list")
        out["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(tools)]
    translated = _tool_choice(choice)
    if body.get("parallel_tool_calls") is False and tools and choice != "none":
        translated = {**(translated or {"type": "auto"}), "disable_parallel_tool_use": True}
    if translated is not None and tools:  # a tool_choice without tools is refused by Anthropic
        out["tool_choice"] = translated


def _tool(tool: Any, where: str) -> dict[str, Any]:
    fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise _refused(where, "must be a function tool with a name")
    # `strict` has no counterpart: Claude follows the schema without the guarantee (see README).
    out: dict[str, Any] = {"name": fn["name"],
                           "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    simple = {"auto": "auto", "none": "none", "required": "any"}
    if isinstance(choice, str) and choice in simple:
        return {"type": simple[choice]}
    fn = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        return {"type": "tool", "name": fn["name"]}
    raise _refused("tool_choice", "must be auto, none, required or a named function")


def _answer_schema(fmt: Any) -> dict[str, Any] | None:
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
    raise _refused("response_format", "must be text, json_object or json_schema with a schema")
