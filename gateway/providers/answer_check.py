"""Is a 200 from an upstream what its wire promises? Pure checks on headers, whole bodies and events.

An upstream (or a proxy in front of it) can answer 200 with an HTML error page, half a JSON
document, a gzip body nobody asked for, or endless bytes. Each of these is a failed attempt, so that
it fails over, instead of a success the client cannot parse. Checks are cheap where they run per
chunk: a whole body is parsed once, a stream's first event once, later events only by their shape.
"""

from __future__ import annotations

import orjson

from gateway.providers.base import AttemptError, Endpoint, Failure

_SSE_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":")
# What a whole answer must hold, per endpoint: its list of results.
_RESULTS = {"chat": "choices", "completions": "choices", "embeddings": "data", "responses": "output",
            "messages": "content"}


def broken(detail: str) -> AttemptError:
    return AttemptError(Failure.BROKEN, detail)


def check_head(content_type: str, content_encoding: str | None, content_length: int | None, stream: bool,
               limit: int) -> AttemptError | None:
    """The answer's headers: the wire's media type, no compression (identity was asked), a sane length."""
    expected = "text/event-stream" if stream else "application/json"
    if content_type != expected:
        return broken(f"a 200 of type {content_type or 'none'} where {expected} belongs")
    if content_encoding and content_encoding.lower() != "identity":
        return broken(f"a body in Content-Encoding {content_encoding[:20]} though identity was asked for")
    if content_length is not None and content_length > limit:
        return broken(f"an answer of {content_length} bytes, over the {limit}-byte bound")
    return None


def check_whole(body: bytes, endpoint: Endpoint) -> AttemptError | None:
    """A non-stream answer: one JSON object holding the endpoint's results."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return broken("a 200 whose body is not JSON")
    results = _RESULTS[endpoint]
    if not isinstance(data, dict) or not isinstance(data.get(results), list):
        return broken(f"a 200 whose JSON has no '{results}' list")
    return None


def check_first_event(events: bytes) -> AttemptError | None:
    """A stream's first complete event(s): SSE lines only, and every data payload JSON (or [DONE])."""
    for line in events.splitlines():
        if line and not line.startswith(_SSE_FIELDS):
            return broken("a stream line that is not a server-sent event")
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if payload == b"[DONE]":
                continue
            try:
                orjson.loads(payload)
            except orjson.JSONDecodeError:
                return broken("a stream event whose data is not JSON")
    return None


def check_events(events: bytes) -> AttemptError | None:
    """Later events, by shape only (this runs per chunk): SSE lines, data payloads that look like
    whole JSON objects. A client SDK would choke on anything else."""
    if events.startswith(b"data: {") and events.endswith(b"}\n\n") and events.count(b"\n") == 2:
        return None  # the common case, one chat chunk, without splitting it into lines
    for line in events.splitlines():
        if not line:
            continue
        if not line.startswith(_SSE_FIELDS):
            return broken("a stream line that is not a server-sent event")
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if not (payload.startswith(b"{") and payload.endswith(b"}")) and payload != b"[DONE]":
                return broken("a stream event whose data is not JSON")
    return None


def is_openai_error(body: bytes) -> bool:
    """Is an upstream's error body one a client can take as is: `{"error": {...}}`?"""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and isinstance(data.get("error"), dict)


def without_secret(body: bytes, secret: str | None) -> bytes:
    """An upstream error body with the deployment's own key masked, should the upstream echo it."""
    if not secret or len(secret) < 8:
        return body
    raw = secret.encode()
    return body.replace(raw, raw[:3] + b"***") if raw in body else body
