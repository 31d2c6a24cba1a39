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
    if not call.stream or call.endpoint not in ("chat", "completions") or client_asked_for_usage(call):
        return False
    options = call.body.get("stream_options")
    call.body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return True


def usage_of(data: Any, endpoint: str = "chat") -> Usage | None:
    """Usage from a parsed answer in the client's API: an OpenAI completion, chunk or embeddings list,
    a Response (or a Responses event carrying one), or an Anthropic Message."""
    if not isinstance(data, dict):
        return None
    if endpoint == "responses" and isinstance(data.get("response"), dict):
        data = data["response"]
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    if endpoint == "responses":   # input_tokens include the cached ones, as prompt_tokens do
        details = usage.get("input_tokens_details") or {}
        return Usage(input_tokens=int(usage.get("input_tokens") or 0), output_tokens=int(usage.get("output_tokens") or 0),
                     cached_input_tokens=int(details.get("cached_tokens") or 0 if isinstance(details, dict) else 0),
                     source="reported")
    if endpoint == "messages":    # Anthropic counts cache reads and writes apart from input_tokens
        read = int(usage.get("cache_read_input_tokens") or 0)
        written = int(usage.get("cache_creation_input_tokens") or 0)
        return Usage(input_tokens=int(usage.get("input_tokens") or 0) + read + written,
                     output_tokens=int(usage.get("output_tokens") or 0), cached_input_tokens=read, source="reported",
                     cache_write_input_tokens=written)
    details = usage.get("prompt_tokens_details") or {}
    if not isinstance(details, dict):
        details = {}
    # Cache writes: Anthropic's translated usage (ours and litellm's) names them; OpenAI has none.
    writes = usage.get("cache_creation_input_tokens") or details.get("cache_creation_tokens")
    return Usage(input_tokens=int(usage.get("prompt_tokens") or 0),
                 output_tokens=int(usage.get("completion_tokens") or 0),
                 cached_input_tokens=int(details.get("cached_tokens") or 0), source="reported",
                 cache_write_input_tokens=int(writes or 0))


def usage_from_body(body: bytes, endpoint: str = "chat") -> Usage | None:
    if not _USAGE_OBJECT.search(body):
        return None
    try:
        return usage_of(orjson.loads(body), endpoint)
    except orjson.JSONDecodeError:
        return None


def usage_from_stream(relayed: Iterable[bytes], endpoint: str = "chat") -> Usage | None:
    """The usage a stream reported: the last usage chunk of a chat stream, the terminal event of a
    Responses stream, or a Messages stream's `message_start` input and `message_delta` output."""
    found: Usage | None = None
    for payload in data_payloads(relayed):
        if _USAGE_OBJECT.search(payload):
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if endpoint == "messages" and isinstance(data, dict) and isinstance(data.get("message"), dict):
                data = data["message"]   # message_start
            usage = usage_of(data, endpoint)
            if usage is not None and endpoint == "messages" and found is not None:
                # message_delta's usage is cumulative, and may or may not repeat the input counts
                usage = Usage(input_tokens=max(usage.input_tokens, found.input_tokens),
                              output_tokens=max(usage.output_tokens, found.output_tokens),
                              cached_input_tokens=max(usage.cached_input_tokens, found.cached_input_tokens))
            found = usage or found
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
