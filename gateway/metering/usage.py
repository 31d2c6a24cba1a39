"""Token usage as the upstream reported it: from a whole body, or from a stream's usage chunk.

Streams are asked for usage (`stream_options.include_usage`) whether or not the client asked;
when the client did not, the usage chunk is taken out of what it receives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from gateway.metering.record import Usage
from gateway.providers.base import Call
from gateway.providers.sse import data_payloads

_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')


def client_asked_for_usage(call: Call) -> bool:
    options = call.body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def ask_for_usage(call: Call) -> bool:
    """Adds `stream_options.include_usage` to a stream's body; True when the client had not asked."""
    if not call.stream or call.endpoint == "embeddings" or client_asked_for_usage(call):
        return False
    options = call.body.get("stream_options")
    call.body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return True


def usage_of(data: Any) -> Usage | None:
    """Usage from a parsed OpenAI object (a completion, a chunk, an embeddings list)."""
    if not isinstance(data, dict):
        return None
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(input_tokens=int(usage.get("prompt_tokens") or 0),
                 output_tokens=int(usage.get("completion_tokens") or 0),
                 cached_input_tokens=int(cached or 0), source="reported")


def usage_from_body(body: bytes) -> Usage | None:
    if not _USAGE_OBJECT.search(body):
        return None
    try:
        return usage_of(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None


def usage_from_stream(relayed: Iterable[bytes]) -> Usage | None:
    """The last usage a stream reported (the usage chunk comes just before `[DONE]`)."""
    found: Usage | None = None
    for payload in data_payloads(relayed):
        if _USAGE_OBJECT.search(payload):
            try:
                found = usage_of(orjson.loads(payload)) or found
            except orjson.JSONDecodeError:
                continue
    return found


def strip_usage_chunk(chunk: bytes) -> bytes:
    """The events of `chunk` without the usage-only one (`"choices": []` with a usage object)."""
    if not _USAGE_OBJECT.search(chunk):
        return chunk
    kept = []
    for event in chunk.split(b"\n\n"):
        if event and _USAGE_OBJECT.search(event):
            payload = event.split(b"data:", 1)[-1].strip()
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                kept.append(event)
                continue
            if isinstance(data, dict) and not data.get("choices"):
                continue
        kept.append(event)
    return b"\n\n".join(kept)
