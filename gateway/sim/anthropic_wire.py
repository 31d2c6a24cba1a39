"""The Anthropic Messages API (`POST /v1/messages`), with its real SSE event sequence."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from gateway.sim import replies
from gateway.sim.behaviour import (SIM, StreamWriter, ends_with_prefill, json_response, read_request, scripted_failure,
                                   sse_response)

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                529: "overloaded_error"}


def error(status: int, headers: dict[str, str] | None = None, message: str | None = None) -> web.Response:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json_response({"type": "error", "error": {"type": kind, "message": message or f"simulated error {status}"}},
                         status, headers)


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM]
    body, _ = await read_request(request, state)
    key = state.config.api_key
    if key is not None and request.headers.get("x-api-key") != key:
        return error(401, message="invalid x-api-key")
    if not isinstance(body, dict):
        return error(400, message="The body is not a JSON object.")
    for name in ("model", "messages", "max_tokens"):
        if name not in body:
            return error(400, message=f"{name}: Field required")
    if not state.config.prefill and ends_with_prefill(body):
        return error(400, message="This model does not support assistant message prefill. "
                                  "The conversation must end with a user message.")
    failed = await scripted_failure(state, error)
    if failed is not None:
        return failed
    if state.first_delay():
        await asyncio.sleep(state.first_delay())

    n = state.next_id()
    words, finish = replies.reply_words(state.first_word, state.config.reply_tokens, body.get("max_tokens"))
    stop_reason = "max_tokens" if finish == "length" else "end_turn"
    input_tokens = replies.prompt_tokens(body.get("messages") or [], body.get("system"))
    tool = replies.wants_tool_call(body)
    usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    message: dict[str, Any] = {"id": f"msg_sim_{n}", "type": "message", "role": "assistant", "model": body["model"],
                               "stop_sequence": None}
    if not body.get("stream"):
        if tool is not None:
            content = [{"type": "tool_use", "id": f"toolu_sim_{n}", "name": tool["name"],
                        "input": replies.tool_arguments(tool)}]
            stop_reason, output = "tool_use", 10
        else:
            content = [{"type": "text", "text": " ".join(words)}]
            output = len(words)
        return json_response({**message, "content": content, "stop_reason": stop_reason,
                              "usage": {**usage, "output_tokens": output}})

    resp = sse_response()
    await resp.prepare(request)
    out = StreamWriter(request, resp, state)
    await out.event(orjson.dumps({"type": "message_start", "message": {
        **message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}}), name="message_start")
    if tool is not None:
        await out.event(orjson.dumps({"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": f"toolu_sim_{n}", "name": tool["name"], "input": {}}}), name="content_block_start")
        await out.event(b'{"type": "ping"}', name="ping")
        args = orjson.dumps(replies.tool_arguments(tool)).decode()
        await out.event(orjson.dumps({"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": args}}), content=True, name="content_block_delta")
        stop_reason, output = "tool_use", 10
    else:
        await out.event(orjson.dumps({"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}}), name="content_block_start")
        await out.event(b'{"type": "ping"}', name="ping")
        for i, word in enumerate(words):
            await out.event(orjson.dumps({"type": "content_block_delta", "index": 0, "delta": {
                "type": "text_delta", "text": word if i == 0 else " " + word}}), content=True, name="content_block_delta")
        output = len(words)
    await out.event(b'{"type": "content_block_stop", "index": 0}', name="content_block_stop")
    await out.event(orjson.dumps({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                  "usage": {"output_tokens": output}}), name="message_delta")
    await out.event(b'{"type": "message_stop"}', name="message_stop")
    await resp.write_eof()
    return resp


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
