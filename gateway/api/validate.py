"""Checks on a client's request body: only what the gateway must rely on, with OpenAI's wording.

Everything else in the body is the upstream's business and passes through untouched.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.core.errors import ApiError, invalid_request
from gateway.providers.base import Endpoint

_REQUIRED = {"chat": "messages", "completions": "prompt", "embeddings": "input", "responses": "input",
             "messages": "messages"}
_INTS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs", "dimensions", "max_output_tokens")
_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
# OpenAI's own bounds: a value outside them is the caller's mistake, answered here rather than
# spent on an upstream round trip (or on one that takes a negative token count for something else).
_RANGES: dict[str, tuple[float, float | None]] = {
    "max_tokens": (1, None), "max_completion_tokens": (1, None), "n": (1, 128), "top_logprobs": (0, 20),
    "dimensions": (1, None), "temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2), "max_output_tokens": (1, None),
}


# orjson reads JSON nested up to 1,024 levels but writes at most 254: a body between the two would
# parse here and then fail to go upstream. Nothing a model reads nests that deep.
_MAX_DEPTH = 254


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise invalid_request("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON ({exc.msg} at position {exc.pos}).") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    if raw.count(b"[") + raw.count(b"{") > _MAX_DEPTH:  # C-speed counts; only then the exact test
        try:
            orjson.dumps(body)
        except TypeError:
            raise invalid_request(f"The request body nests deeper than {_MAX_DEPTH} levels.") from None
    return body


def _type_error(field: str, expected: str) -> ApiError:
    return invalid_request(f"Invalid type for '{field}': expected {expected}.", param=field,
                           code="invalid_type")


def _check_range(body: dict[str, Any], name: str) -> None:
    v = body.get(name)
    if v is None:
        return
    low, high = _RANGES[name]
    if v < low:
        raise invalid_request(f"Invalid '{name}': {v} is below the minimum of {low:g}.", param=name,
                              code="below_min_value")
    if high is not None and v > high:
        raise invalid_request(f"Invalid '{name}': {v} is above the maximum of {high:g}.", param=name,
                              code="above_max_value")


def check_body(endpoint: Endpoint, body: dict[str, Any]) -> bool:
    """Raises ApiError for a body the gateway cannot route; returns whether the client asked to stream."""
    model = body.get("model")
    if model is None:
        raise invalid_request("You must provide a model parameter.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise _type_error("model", "a non-empty string")
    required = _REQUIRED[endpoint]
    value = body.get(required)
    if value is None:
        raise invalid_request(f"Missing required parameter: '{required}'.", param=required,
                              code="missing_required_parameter")
    if endpoint in ("chat", "messages"):
        # Which roles exist is the upstream's business (Claude Code sends `system` turns inside
        # `messages`; a newer API may add more): only the shape the gateway itself reads is checked.
        if not isinstance(value, list) or not value:
            raise _type_error("messages", "a non-empty array of message objects")
        for i, message in enumerate(value):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise _type_error(f"messages[{i}]", "an object with a string 'role'")
            if not isinstance(message.get("content"), (str, list, type(None))):
                raise _type_error(f"messages[{i}].content", "a string, an array of content parts or null")
    if endpoint == "messages":
        if body.get("max_tokens") is None:
            raise invalid_request("Missing required parameter: 'max_tokens'.", param="max_tokens",
                                  code="missing_required_parameter")
    elif endpoint == "responses":
        if not isinstance(value, (str, list)):
            raise _type_error("input", "a string or an array of input items")
        previous = body.get("previous_response_id")
        if previous is not None and (not isinstance(previous, str) or not previous):
            raise _type_error("previous_response_id", "a non-empty string")
    elif endpoint == "completions":
        if not isinstance(value, (str, list)):
            raise _type_error("prompt", "a string or an array")
    elif endpoint == "embeddings" and (not isinstance(value, (str, list)) or (isinstance(value, list) and not value)):
        raise _type_error("input", "a string or a non-empty array")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _type_error("stream", "a boolean")
    if stream and endpoint == "embeddings":
        raise invalid_request("Embeddings cannot be streamed.", param="stream")
    for name in _INTS:
        v = body.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise _type_error(name, "an integer")
    for name in _NUMBERS:
        v = body.get(name)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
            raise _type_error(name, "a number")
    for name in _RANGES:
        _check_range(body, name)
    for name, kind, word in (("tools", list, "an array"), ("stream_options", dict, "an object"),
                             ("metadata", dict, "an object")):
        v = body.get(name)
        if v is not None and not isinstance(v, kind):
            raise _type_error(name, word)
    return stream
