"""Answers a broken upstream gives with a 200: what `Fault.malformed` plays out, for either wire."""

from __future__ import annotations

import asyncio
import gzip

import orjson
from aiohttp import web

from gateway.sim.behaviour import SimState, wait_forever

_HTML = (b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
         b"</center><hr><center>nginx</center></body></html>\n")
_ANSWER = {"id": "chatcmpl-sim-malformed", "object": "chat.completion", "created": 0, "model": "sim",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
_CHUNK = {"id": "chatcmpl-sim-malformed", "object": "chat.completion.chunk", "created": 0, "model": "sim",
          "choices": [{"index": 0, "delta": {"content": "fine"}, "finish_reason": None}]}
_EVENT = b"data: " + orjson.dumps(_CHUNK) + b"\n\n"
_STREAM = _EVENT + b"data: [DONE]\n\n"
_SSE = "text/event-stream"
_JSON = "application/json"


def _whole(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=200, body=body, headers={"Content-Type": content_type, **(headers or {})})


async def _open(request: web.Request, content_type: str) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": content_type})
    await resp.prepare(request)
    return resp


async def malformed_answer(request: web.Request, state: SimState, stream: bool) -> web.StreamResponse:
    """The fault's 200 answer: never one a client could take for a whole, well-formed reply."""
    kind = state.fault.malformed
    wire_type = _SSE if stream else _JSON
    good = _STREAM if stream else orjson.dumps(_ANSWER)
    if kind == "html":
        return _whole(_HTML, "text/html; charset=utf-8")
    if kind == "truncated":
        return _whole(good[: len(good) // 2] + (b"\n\n" if stream else b""), wire_type)
    if kind == "not_json":
        return _whole(b"data: the model is thinking\n\n" if stream else b"the model is thinking", wire_type)
    if kind == "garbage_sse":
        return _whole(b"\x00\x17garbage \xff line\nmore garbage\n\n" + _STREAM, wire_type)
    if kind == "wrong_content_type":
        return _whole(good, "text/plain")
    if kind == "gzip":
        return _whole(gzip.compress(good), wire_type, {"Content-Encoding": "gzip"})
    if kind == "oversized":
        return await _oversized(request, stream, state.fault.oversize_bytes)
    resp = await _open(request, wire_type)
    if kind == "trickle":
        await resp.write(_EVENT)
        while True:  # until the client gives up on it (the handler is cancelled)
            await asyncio.sleep(state.fault.trickle_s)
            await resp.write(b":")
    await wait_forever(state)  # "silent": headers and nothing more
    return resp


async def _oversized(request: web.Request, stream: bool, size: int) -> web.StreamResponse:
    """Valid-looking bytes, `size` of them, written in pieces so the sim never holds them all."""
    resp = await _open(request, _SSE if stream else _JSON)
    if stream:
        while size > 0:
            await resp.write(_EVENT)
            size -= len(_EVENT)
        await resp.write(b"data: [DONE]\n\n")
    else:
        head = b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"'
        await resp.write(head)
        piece = b"a" * 65536
        for _ in range(max(0, size - len(head)) // len(piece) + 1):
            await resp.write(piece)
        await resp.write(b'"},"finish_reason":"stop"}]}')
    await resp.write_eof()
    return resp
