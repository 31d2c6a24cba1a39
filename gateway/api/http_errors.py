"""What aiohttp's own HTTP errors become: a path no route matches, a method the route does not
take, a body over the size limit. Each answers in the error shape of the client's API (Anthropic's
under /v1/messages, OpenAI's everywhere else), and an operational path that matched nothing is
refused as such a route would be, so an unknown caller cannot map which ones exist."""

from __future__ import annotations

from aiohttp import web

from gateway.api.access import refusal, scope_of
from gateway.core.errors import ApiError, body_too_large, error_response
from gateway.flow.context import CONTEXT

_CODES = {404: "not_found", 405: "method_not_allowed"}


def shape_for(path: str) -> str:
    return "messages" if path.startswith("/v1/messages") else "chat"


def http_error(request: web.BaseRequest, exc: web.HTTPException) -> web.StreamResponse:
    """The answer to an aiohttp HTTP error (status 400 or more) raised while routing or handling."""
    path = request.path
    # Before routing (no match yet) there is no app to ask: the plain shape.
    if isinstance(request, web.Request) and request._match_info is not None and CONTEXT in request.app:
        if isinstance(exc, web.HTTPRequestEntityTooLarge):
            return error_response(body_too_large(request.app[CONTEXT].limits.max_body_bytes), endpoint=shape_for(path))
        refused = refusal(request, scope_of(path)) if exc.status in _CODES else None
        if refused is not None:
            return error_response(refused)
    return error_response(ApiError(exc.status, f"{request.method} {path}: {exc.reason}.", "invalid_request_error",
                                   code=_CODES.get(exc.status)), endpoint=shape_for(path))
