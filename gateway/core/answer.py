"""Writing answers back to the client: whole bodies, relayed streams, and the stream's error event."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.core.errors import JSON, ApiError
from gateway.wires.openai_error import error_body
from gateway.wires import messages_chat
from gateway.wires.events import named_event

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}


def whole(body: bytes, headers: Mapping[str, str], status: int = 200, content_type: str = JSON) -> web.Response:
    return web.Response(status=status, body=body, content_type=content_type.split(";")[0], headers=headers)


async def open_stream(request: web.Request, headers: Mapping[str, str]) -> web.StreamResponse:
    """The stream's point of no return: after this, bytes belong to the client."""
    resp = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
    await resp.prepare(request)
    return resp


def stream_error_event(err: ApiError, endpoint: str = "chat", sequence_number: int = 0) -> bytes:
    """An SSE event the official SDKs raise on, so a broken stream never looks like a clean, complete
    answer: `data: {"error": …}` on chat, the `error` event of a Responses or a Messages stream."""
    if endpoint == "messages":
        return messages_chat.stream_error(err.message, err.status)
    if endpoint == "responses":
        return named_event("error", {"type": "error", "code": err.code, "message": err.message, "param": err.param,
                                     "sequence_number": sequence_number})
    return b"data: " + error_body(err.message, err.type, err.code, err.param) + b"\n\n"
