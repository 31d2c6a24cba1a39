"""The native Anthropic wire: OpenAI chat completions in, the Messages API out, on the pooled session.

    client = AnthropicWire(session)            # session: the process's aiohttp.ClientSession
    reply = await client.open(deployment, call, budget_s)

`open` returns OpenAI-shaped bytes, as the OpenAI-wire client does: a chat.completion body, or a
stream of `chat.completion.chunk` events ending in `data: [DONE]`, so the dispatcher never knows
which wire answered. The translation is gateway/wires/ (pure); this module is the I/O around it.

Failures come back as `AttemptError`s the breaker can judge: 429 with its retry-after, 529
`overloaded_error`, 5xx, and an `error` event inside a 200 stream. A stream's reply is returned
only once its first content (text or a tool call) is translated, so an error event before it is a
failed attempt the client never sees; after it, the rest raises and the route's `mid_stream` rule
applies. A stream that ends without `message_stop` is broken, never a whole answer.

The deployment's base_url is the API's root without /v1 (https://api.anthropic.com), as the
Anthropic SDK takes it; requests go to `/v1/messages`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson

from gateway.core.deployment import Deployment
from gateway.providers.base import AttemptError, Call, Failure, Reply, parse_retry_after, unfit, usage_limit_reset_s
from gateway.providers.credentials import with_credential
from gateway.providers.http import (BASE_HEADERS, DEFAULT_BODY_LIMIT, ERROR_BODY_LIMIT, ByteBound, Opening, bounds,
                                    follow, let_go, read_answer, read_bounded, read_more,
                                    with_request_id)
from gateway.providers.sse import complete_events
from gateway.providers.stream_deadlines import Followed, StreamDeadlines
from gateway.wires.anthropic_answer import StreamState, answer_in, error_in, events_in
from gateway.wires.anthropic_chat import request_out, wants_json_answer
from gateway.wires.refused import Refused

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"


class AnthropicWire:
    def __init__(self, session: aiohttp.ClientSession, wall: Callable[[], float] = time.time,
                 max_body_bytes: int = DEFAULT_BODY_LIMIT) -> None:
        self.session = session
        self.wall = wall
        self.max_body_bytes = max_body_bytes
        self._headers: dict[str, dict[str, str]] = {}
        self.deadlines = StreamDeadlines()

    def headers_for(self, d: Deployment) -> dict[str, str]:
        headers = self._headers.get(d.key)
        if headers is None:
            headers = {**BASE_HEADERS, "anthropic-version": d.api_version or DEFAULT_VERSION}
            if d.api_key:
                headers["x-api-key"] = d.api_key
            if d.beta:
                headers["anthropic-beta"] = ",".join(d.beta)
            self._headers[d.key] = headers
        return headers

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        if call.endpoint != "chat":
            raise unfit(f"serves chat completions, not {call.endpoint}")
        facts = deployment.facts
        dropped: list[str] = []
        try:
            data = request_out(call.body, deployment.model, call.stream,
                               facts.max_output_tokens if facts is not None else None, dropped)
        except Refused as exc:
            raise unfit(exc.message, exc.param) from None
        json_answer = wants_json_answer(call.body)
        timeout, opening_s = bounds(deployment, call.stream, budget_s)
        headers = with_request_id(with_credential(self.headers_for(deployment), deployment, call), call)
        url = (deployment.base_url or DEFAULT_BASE_URL) + "/v1/messages"
        with Opening(call.stream) as opening:
            async with asyncio.timeout(opening_s):
                opening.resp = resp = await self.session.post(url, data=data, headers=headers, timeout=timeout)
                if resp.status != 200:
                    raw = await read_bounded(resp, ERROR_BODY_LIMIT)
                    raise AttemptError(Failure.STATUS, status=resp.status, body=self._scrub(error_in(resp.status, raw),
                                                                                             deployment),
                                       retry_after_s=parse_retry_after(resp.headers.get("retry-after")),
                                       limit_reset_s=usage_limit_reset_s(resp.headers, self.wall()))
                # The wire's media type, no compression, within the byte bound (gateway/providers/answer_check.py).
                raw = await read_answer(resp, call.stream, self.max_body_bytes, deployment.timeouts.idle_s)
                if not call.stream:
                    resp.release()
                    try:
                        return Reply(status=200, body=answer_in(raw, int(self.wall()), json_answer),
                                     dropped=tuple(dropped))
                    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                        raise AttemptError(Failure.BROKEN, "the answer was not a Messages object") from None
                state = StreamState(int(self.wall()), include_usage=_asked_for_usage(call), json_answer=json_answer)
                bound = ByteBound(self.max_body_bytes)
                first, pending = await _first_content(resp, state, bound)
        followed = follow(self.deadlines, resp, deployment, budget_s, opening.began)
        return Reply(status=200, first=first, rest=_relay(resp, followed, state, pending, bound), close=resp.close,
                     dropped=tuple(dropped))

    @staticmethod
    def _scrub(body: bytes, d: Deployment) -> bytes:
        if d.api_key and d.api_key.encode() in body:
            return body.replace(d.api_key.encode(), b"***")
        return body


def _asked_for_usage(call: Call) -> bool:
    options = call.body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def translate(state: StreamState, buffer: bytes) -> tuple[list[bytes], bytes]:
    """The OpenAI chunks for the complete events in `buffer`, and what is left of an incomplete one.

    Anthropic's `data:` lines each hold one whole JSON event; the `event:` lines repeat its type.
    An error event stops the translation there (`state.error`): what came before it is returned.
    """
    end = complete_events(buffer)
    if not end:
        return [], buffer
    out: list[bytes] = []
    for line in buffer[:end].splitlines():
        if line.startswith(b"data:"):
            try:
                event: Any = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                raise AttemptError(Failure.BROKEN, "the stream sent an event that is not JSON") from None
            if isinstance(event, dict):
                out += events_in(state, event)
            if state.error is not None:
                break
    return out, buffer[end:]


def _raise_on_error(state: StreamState) -> None:
    if state.error is not None:
        status, body = state.error
        raise AttemptError(Failure.STATUS, f"error event ({status})", status=status, body=body)


async def _first_content(resp: aiohttp.ClientResponse, state: StreamState, bound: ByteBound) -> tuple[bytes, bytes]:
    """Read until the translation holds content (or the whole answer): nothing before it is sent."""
    chunks: list[bytes] = []
    pending = b""
    while not (state.content_started or state.finished):
        data = bound.take(await resp.content.readany())
        if not data:
            raise AttemptError(Failure.BROKEN, "the stream ended before its first content")
        out, pending = translate(state, pending + data)
        _raise_on_error(state)   # nothing reached the client yet: the attempt fails as a whole
        chunks += out
    return b"".join(chunks), pending


async def _relay(resp: aiohttp.ClientResponse, followed: Followed, state: StreamState, pending: bytes,
                 bound: ByteBound) -> AsyncIterator[bytes]:
    """The rest of the stream, translated; raises AttemptError on an error event, a stall or a cut."""
    whole = state.finished
    try:
        while not state.finished:
            data = bound.take(await read_more(resp, followed))
            if not data:
                raise AttemptError(Failure.BROKEN, "the stream ended before message_stop")
            out, pending = translate(state, pending + data)
            if out:
                yield b"".join(out)
            _raise_on_error(state)
        whole = True
    finally:
        let_go(resp, whole, followed)
