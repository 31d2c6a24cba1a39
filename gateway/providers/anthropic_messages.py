"""Anthropic Messages clients on an Anthropic deployment: the body passed through untouched but for
`model`, the stream's bytes relayed as they come.

Only what the gateway must know is read from the answer: an `error` event (before the first content
it fails the attempt invisibly; after it, the route's `mid_stream` rule applies) and `message_stop`
(a stream without it was cut short, never a whole answer). The client's `anthropic-version` and
`anthropic-beta` headers go upstream with it, so betas, thinking and `cache_control` keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson

from gateway.core.deployment import Deployment
from gateway.providers.anthropic_wire import DEFAULT_BASE_URL, AnthropicWire
from gateway.providers.base import AttemptError, Call, Failure, Reply, parse_retry_after, usage_limit_reset_s
from gateway.providers.credentials import with_credential
from gateway.providers.http import (Opening, bounds, follow, let_go, read_more, with_client_headers, with_query,
                                    with_request_id)
from gateway.providers.sse import complete_events
from gateway.providers.stream_deadlines import Followed

_ERROR = b"event: error"
_STOP = b"event: message_stop"
_CONTENT = (b"event: content_block_delta", _STOP)
# An error event's type → the status Anthropic answers the same error with before a stream begins.
_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500, "invalid_request_error": 400,
           "authentication_error": 401, "permission_error": 403, "not_found_error": 404,
           "request_too_large": 413}


def _error_event(events: bytes) -> AttemptError:
    """The attempt error an `error` event in `events` amounts to."""
    at = events.index(_ERROR)
    end = events.find(b"\n\n", at)
    body = events[at:end if end >= 0 else len(events)].split(b"data:", 1)[-1].strip()
    try:
        kind = orjson.loads(body)["error"]["type"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        kind = "api_error"
    status = _STATUS.get(kind, 500)
    return AttemptError(Failure.STATUS, f"error event ({kind})", status=status, body=body)


class MessagesPassThrough:
    def __init__(self, session: aiohttp.ClientSession, native: AnthropicWire) -> None:
        self.session = session
        self.native = native   # its headers: the deployment's key, version and betas

    def headers(self, d: Deployment, call: Call) -> dict[str, str]:
        headers = dict(self.native.headers_for(d))
        version = call.client_headers.get("anthropic-version")
        if version:
            headers["anthropic-version"] = version
        beta = call.client_headers.get("anthropic-beta")
        if beta:
            own = headers.get("anthropic-beta")
            headers["anthropic-beta"] = f"{own},{beta}" if own else beta
        return with_request_id(with_client_headers(with_credential(headers, d, call), call), call)

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        timeout, opening_s = bounds(deployment, call.stream, budget_s)
        url = with_query((deployment.base_url or DEFAULT_BASE_URL) + "/v1/messages", call)
        with Opening(call.stream) as opening:
            async with asyncio.timeout(opening_s):
                opening.resp = resp = await self.session.post(url, data=call.upstream_body(deployment.model),
                                                              headers=self.headers(deployment, call), timeout=timeout)
                if resp.status != 200:
                    raise AttemptError(Failure.STATUS, status=resp.status, body=await resp.read(),
                                       retry_after_s=parse_retry_after(resp.headers.get("retry-after")),
                                       limit_reset_s=usage_limit_reset_s(resp.headers, self.native.wall()))
                if not call.stream:
                    body = await resp.read()
                    resp.release()
                    return Reply(status=200, body=body)
                first, pending = await _first_content(resp)
        followed = follow(self.native.deadlines, resp, deployment, budget_s, opening.began)
        return Reply(status=200, first=first, rest=_relay(resp, followed, pending, _STOP in first), close=resp.close)


    async def count(self, deployment: Deployment, call: Call, budget_s: float) -> bytes:
        """Anthropic's own count of a Messages body's input tokens (`/v1/messages/count_tokens`)."""
        timeout, _ = bounds(deployment, False, budget_s)
        url = (deployment.base_url or DEFAULT_BASE_URL) + "/v1/messages/count_tokens"
        with Opening(False) as opening:
            opening.resp = resp = await self.session.post(url, data=call.upstream_body(deployment.model),
                                                          headers=self.headers(deployment, call), timeout=timeout)
            body = await resp.read()
            resp.release()
            if resp.status != 200:
                raise AttemptError(Failure.STATUS, status=resp.status, body=body)
            return body


async def _first_content(resp: aiohttp.ClientResponse) -> tuple[bytes, bytes]:
    """Whole events up to the first content: an error event before it fails the attempt unseen."""
    buffer = b""
    while True:
        data = await resp.content.readany()
        if not data:
            raise AttemptError(Failure.BROKEN, "the stream ended before its first content")
        buffer += data
        end = complete_events(buffer)
        events = buffer[:end]
        if _ERROR in events:
            raise _error_event(events)
        if any(marker in events for marker in _CONTENT):
            return events, buffer[end:]


async def _relay(resp: aiohttp.ClientResponse, followed: Followed, pending: bytes, stopped: bool) -> AsyncIterator[bytes]:
    """The rest in whole events; an error event or an end without `message_stop` raises AttemptError."""
    whole = stopped
    try:
        while not stopped:
            data = await read_more(resp, followed)
            if not data:
                raise AttemptError(Failure.BROKEN, "the stream ended before message_stop")
            pending += data
            end = complete_events(pending)
            events, pending = pending[:end], pending[end:]
            if _ERROR in events:
                at = events.index(_ERROR)
                if at:
                    yield events[:at]
                raise _error_event(events[at:])
            stopped = _STOP in events
            if events:
                yield events
        whole = True
    finally:
        let_go(resp, whole, followed)
