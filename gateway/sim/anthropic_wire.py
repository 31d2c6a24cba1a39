"""The Anthropic Messages API (`POST /v1/messages`): its checks, errors, answers and SSE event sequence."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from gateway.sim import anthropic_reply
from gateway.sim.anthropic_checks import problem
from gateway.sim.credentials import anthropic_fault_message, anthropic_problem, presented
from gateway.sim.malformed import malformed_answer
from gateway.sim.behaviour import (SIM, SimState, StreamWriter, ends_with_prefill, json_response, read_request, scripted_failure,
                                   sse_response)

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                504: "timeout_error", 529: "overloaded_error"}
# How the API reports a failure after a 200 stream began: an `error` event, then the body ends.
STREAM_ERROR = (b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
                b'"message": "Overloaded"}}\n\n')


def error(status: int, headers: dict[str, str] | None = None, message: str | None = None) -> web.Response:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json_response({"type": "error", "error": {"type": kind, "message": message or f"simulated error {status}"},
                          "request_id": "req_sim"}, status, headers)


def _authorised(request: web.Request, key: str | None) -> bool:
    # The API takes the key as x-api-key; anthropic SDKs from 2.x send it as a bearer token.
    return key is None or request.headers.get("x-api-key") == key \
        or request.headers.get("Authorization") == f"Bearer {key}"


def _refused(request: web.Request, state: SimState) -> web.Response | None:
    """The 401 for a request whose credential this provider does not take (its own key, or with
    `client_credentials` any caller's credential, an OAuth bearer only with its beta flag)."""
    if state.config.client_credentials:
        found = anthropic_problem(request)
        return error(401, message=found) if found is not None else None
    if not _authorised(request, state.config.api_key):
        return error(401, message="invalid x-api-key")
    return None


async def _scripted(request: web.Request, state: SimState) -> web.Response | None:
    return await scripted_failure(
        state, lambda status, headers: error(status, headers, anthropic_fault_message(request, status)),
        presented(request))


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM]
    body, _ = await read_request(request, state)
    refused = _refused(request, state)
    if refused is not None:
        return refused
    if not request.headers.get("anthropic-version"):
        return error(400, message="anthropic-version: header is required")
    found = problem(body)
    if found is not None:
        return error(400, message=found)
    if not state.config.prefill and ends_with_prefill(body):
        return error(400, message="This model does not support assistant message prefill. "
                                  "The conversation must end with a user message.")
    failed = await _scripted(request, state)
    if failed is not None:
        return failed
    if state.first_delay():
        await asyncio.sleep(state.first_delay())
    if state.fault.malformed is not None:
        return await malformed_answer(request, state, body.get("stream") is True)

    reply = anthropic_reply.plan(body, state.first_word, state.config.reply_tokens, state.next_id(), state.dumb,
                                 state.config.agent, state.broken)
    prompt = anthropic_reply.prompt(body)
    hit = prompt.cache_key in state.prompt_cache
    if prompt.cache_key is not None:
        state.prompt_cache.add(prompt.cache_key)
    usage = anthropic_reply.usage(prompt, hit)
    headers = {"request-id": f"req_{reply.message_id}"}
    if not body.get("stream"):
        return json_response(anthropic_reply.message(reply, usage), headers=headers)

    resp = sse_response()
    resp.headers.update(headers)
    await resp.prepare(request)
    out = StreamWriter(request, resp, state, STREAM_ERROR)
    for name, data, content in anthropic_reply.events(reply, usage):
        await out.event(data, content=content, name=name)
    await resp.write_eof()
    return resp


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """`/v1/messages/count_tokens`: the input tokens the same body would be charged."""
    state = request.app[SIM]
    body, _ = await read_request(request, state)
    refused = _refused(request, state)
    if refused is not None:
        return refused
    found = problem({"max_tokens": 1, **body}) if isinstance(body, dict) else "The request body is not a JSON object."
    if found is not None:
        return error(400, message=found)
    failed = await _scripted(request, state)
    if failed is not None:
        return failed
    return json_response({"input_tokens": anthropic_reply.prompt(body).tokens})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
