"""The fast path: OpenAI-wire upstreams (OpenAI, Azure OpenAI, vLLM, Ollama, TGI, llama.cpp …).

The client's body goes out with only `model` rewritten, and the upstream's bytes come back as they
arrive; nothing is re-serialised on the way back. One pooled `ClientSession` serves every call.

Azure OpenAI (`kind: azure`) is the same wire at other addresses: base_url is the resource
endpoint, the deployment's model is Azure's deployment name, requests go to
`/openai/deployments/<model>/<path>?api-version=<api_version>` with the key in an `api-key` header.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp

from gateway.providers.base import PATHS, AttemptError, Call, Failure, Reply, parse_retry_after
from gateway.providers.credentials import with_credential
from gateway.providers.answer_check import check_events, check_first_event, check_whole
from gateway.providers.http import (BASE_HEADERS, DEFAULT_BODY_LIMIT, ERROR_BODY_LIMIT, ByteBound, Opening, bounds,
                                    follow, let_go, read_answer, read_bounded, read_more, with_client_headers,
                                    with_query, with_request_id)
from gateway.providers.stream_deadlines import Followed, StreamDeadlines
from gateway.providers.sse import DONE_EVENT, complete_events, finishes_a_choice
from gateway.core.deployment import Deployment

_DONE = b"data: [DONE]"
_DATA = b"data:"
# A Responses stream has no [DONE]: it ends with one of these events (named, or typed in the data).
_RESPONSE_ENDS = (b"event: response.completed", b"event: response.incomplete", b"event: response.failed",
                  b'"type":"response.completed"', b'"type":"response.incomplete"', b'"type":"response.failed"')


class OpenAIWireClient:
    def __init__(self, session: aiohttp.ClientSession, max_body_bytes: int = DEFAULT_BODY_LIMIT) -> None:
        self.session = session
        self.max_body_bytes = max_body_bytes
        self._headers: dict[str, dict[str, str]] = {}
        self.deadlines = StreamDeadlines()

    def headers_for(self, d: Deployment) -> dict[str, str]:
        headers = self._headers.get(d.key)
        if headers is None:
            headers = dict(BASE_HEADERS)
            if d.api_key and d.kind == "azure":
                headers["api-key"] = d.api_key
            elif d.api_key:
                headers["Authorization"] = f"Bearer {d.api_key}"
            self._headers[d.key] = headers
        return headers

    @staticmethod
    def url_for(d: Deployment, call: Call) -> str:
        if d.kind == "azure":
            return (f"{d.base_url}/openai/deployments/{quote(d.model, safe='')}{PATHS[call.endpoint]}"
                    f"?api-version={quote(d.api_version or '', safe='')}")
        return d.base_url + PATHS[call.endpoint]

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        timeout, opening_s = bounds(deployment, call.stream, budget_s)
        headers = with_request_id(with_client_headers(with_credential(self.headers_for(deployment), deployment, call), call),
                                  call)
        url = with_query(self.url_for(deployment, call), call)
        data = call.upstream_body(deployment.model)
        with Opening(call.stream) as opening:
            async with asyncio.timeout(opening_s):
                opening.resp = resp = await self.session.post(url, data=data, headers=headers, timeout=timeout)
                if resp.status != 200:
                    body = await read_bounded(resp, ERROR_BODY_LIMIT)
                    raise AttemptError(Failure.STATUS, status=resp.status, body=body,
                                       retry_after_s=parse_retry_after(resp.headers.get("Retry-After")),
                                       content_type=resp.content_type or "application/json")
                body = await read_answer(resp, call.stream, self.max_body_bytes, deployment.timeouts.idle_s)
                if not call.stream:
                    wrong = check_whole(body, call.endpoint)
                    if wrong is not None:
                        raise wrong
                    resp.release()
                    return Reply(status=200, body=body)
                first = b""
                bound = ByteBound(self.max_body_bytes)
                while True:
                    chunk = bound.take(await resp.content.readany())
                    if not chunk:
                        raise AttemptError(Failure.BROKEN, "the stream ended before its first event")
                    first += chunk
                    end = complete_events(first)
                    if end:
                        first, pending = first[:end], first[end:]
                        break
                wrong = check_first_event(first)
                if wrong is not None:
                    raise wrong
        responses = call.endpoint == "responses"
        followed = follow(self.deadlines, resp, deployment, budget_s, opening.began)
        rest = _relay(resp, followed, first, pending, bound, deployment.timeouts.idle_s, responses)
        return Reply(status=200, first=first, rest=rest, close=resp.close)


def _finishes(chunk: bytes, responses: bool) -> bool:
    """Does `chunk` (whole events) end the answer: a choice's finish reason, or a Responses stream's
    terminal event (that stream has no [DONE])?"""
    if responses:
        return any(end in chunk for end in _RESPONSE_ENDS)
    return finishes_a_choice(chunk)


async def _relay(resp: aiohttp.ClientResponse, followed: Followed, first: bytes, pending: bytes, bound: ByteBound, idle_s: float,
                 responses: bool = False) -> AsyncIterator[bytes]:
    """The stream after its first event, in whole events; raises AttemptError when it stalls or breaks off.

    Some servers never send `data: [DONE]`: a body that ended cleanly after a choice's finish reason
    is whole, and the client gets the sentinel from us. Without a finish reason (or, on a Responses
    stream, its terminal event) it was cut short, and the client must not take it for a whole answer.
    A trickle (a byte now and then, comments, never a data event) stalls it as silence would.
    """
    tail = first[-32:]
    finished = _finishes(first, responses)
    whole = False
    loop = asyncio.get_running_loop()
    last_data = loop.time()
    try:
        while True:
            chunk = bound.take(await read_more(resp, followed))
            if not chunk:
                if pending:  # a last event without its blank line: pass it on, terminated
                    wrong = check_events(pending)
                    if wrong is not None:
                        raise wrong
                    tail = (tail + pending)[-32:]
                    finished = finished or _finishes(pending, responses)
                    yield pending + b"\n\n"
                break
            if pending:
                chunk, pending = pending + chunk, b""
            end = complete_events(chunk)
            if end < len(chunk):
                chunk, pending = chunk[:end], chunk[end:]
            if _DATA in chunk:
                last_data = loop.time()
            elif loop.time() - last_data > idle_s:
                raise AttemptError(Failure.IDLE, "the stream trickled: no event in time")
            if not chunk:
                continue
            wrong = check_events(chunk)
            if wrong is not None:
                raise wrong
            tail = (tail + chunk)[-32:]
            finished = finished or _finishes(chunk, responses)
            yield chunk
        if responses:
            if not finished:
                raise AttemptError(Failure.BROKEN, "the stream ended before its terminal event")
        elif _DONE not in tail:
            if not finished:
                raise AttemptError(Failure.BROKEN, "the stream ended without a finish reason")
            yield DONE_EVENT
        whole = True
    finally:
        let_go(resp, whole, followed)
