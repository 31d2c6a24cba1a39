"""The HTTP connection below the endpoints: what a request that is not even valid HTTP gets.

aiohttp answers a malformed request line, an oversized header or broken chunked framing itself, in
plain text that quotes the offending bytes back (a header line, an Authorization value), and logs
the same bytes with a traceback. Here such a request gets an OpenAI-shaped error that quotes
nothing, the log gets one line without the bytes, and a connection that has not sent a whole
request within the read timeout is closed (slow headers hold nothing for long).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from gateway.api.http_errors import http_error, shape_for
from gateway.core.errors import ApiError, error_response
from gateway.core.small_queue import SmallQueue, lighten

log = logging.getLogger("recloser")


def protocol_error(status: int, path: str) -> web.Response:
    """The answer to a request that could not be read as HTTP: the status's phrase, nothing quoted, in
    the error shape of the API its path names (Anthropic's under /v1/messages, else OpenAI's)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Bad Request"
    if status >= 500:
        err = ApiError(500, "The gateway failed unexpectedly; the error is logged.", "server_error")
    else:
        err = ApiError(status, f"The request could not be read as HTTP/1.1 ({phrase}).", "invalid_request_error",
                       code="malformed_http")
    resp = error_response(err, endpoint=shape_for(path))
    resp.force_close()
    return resp


class GatewayRequestHandler(RequestHandler):
    """aiohttp's connection handler with quiet, OpenAI-shaped protocol errors (and aiohttp's own HTTP
    errors in the API's shape: the app has no middleware to do it), a deadline for the first request's
    headers, and light per-connection state for the thousands that hold a stream open."""

    # Thousands of connections stay open for streams: no instance dictionary beside aiohttp's slots.
    __slots__ = ("_read_timeout_s", "_headers_due", "_target")

    def __init__(self, manager: Server, *, loop: asyncio.AbstractEventLoop, read_timeout_s: float,
                 **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        if isinstance(getattr(self, "_messages", None), deque):
            # A client sends one request at a time: small queues, not deques (core/small_queue.py).
            self._messages = SmallQueue()  # type: ignore[assignment]  # what of a deque aiohttp uses
        self._read_timeout_s = read_timeout_s
        self._headers_due: asyncio.TimerHandle | None = None
        # The path of the request being read, from its request line: a request too broken for aiohttp
        # to parse still gets its error in the shape of the API it was sent to.
        self._target = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._headers_due = self._loop.call_later(self._read_timeout_s, self._headers_overdue)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data[:1].isalpha():  # a request line begins here (a request's first bytes open a segment)
            line = data[:256].split(b"\r\n", 1)[0].split(b" ")
            self._target = line[1] if len(line) > 1 else b""
        before = self._request_count
        super().data_received(data)
        if self._request_count == before:
            return
        for _, body in self._messages:
            lighten(body)
        # A whole request came. The guard on the first one's headers is done, and not kept for a
        # stream's minutes; nor is aiohttp's idle timer, which it arms again once the answer is done.
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None

    def _headers_overdue(self) -> None:
        if self._request_count == 0:  # not one whole request line and headers yet: a slow client
            log.debug("closed a connection that sent no whole request in %.0f s", self._read_timeout_s)
            self.force_close()

    async def finish_response(self, request: BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        # aiohttp sends its own HTTP errors (no route, wrong method, body too large) as plain text.
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            resp = http_error(request, resp)
        return await super().finish_response(request, resp, start_time)

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        # aiohttp's own message and exception quote the request's bytes: neither is sent, and only a
        # failure of the gateway's own (500: an endpoint's unexpected error included) is logged with
        # its traceback.
        if status >= 500 and not isinstance(exc, ConnectionError):  # a client gone mid-answer is no fault
            log.error("unexpected error on %s %s", request.method, request.path, exc_info=exc)
        else:
            log.debug("unreadable request answered %d (%s)", status, type(exc).__name__ if exc else "-")
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had begun; the connection is dropped instead")
        return protocol_error(status, self._target.decode("latin-1"))


def handler_factory(server: Server, read_timeout_s: float) -> Callable[[], GatewayRequestHandler]:
    """Makes a GatewayRequestHandler per connection, with the handler settings the runner gave the server."""
    loop = asyncio.get_running_loop()
    settings: dict[str, Any] = dict(server._kwargs)  # what AppRunner passed on for every connection

    def make() -> GatewayRequestHandler:
        return GatewayRequestHandler(server, loop=loop, read_timeout_s=read_timeout_s, **settings)

    return make
