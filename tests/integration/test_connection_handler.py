"""The gateway's connection handler under aiohttp: requests pipelined on one connection answered in
order, an idle connection still closed after its keep-alive time once a long answer is done, and
aiohttp's own HTTP errors answered in the API's shape."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from gateway.serving.listener import DrainingSite, listening_socket

KEEPALIVE_S = 0.3


async def _echo(request: web.Request) -> web.Response:
    return web.Response(text=request.query.get("n", ""))


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(3 * KEEPALIVE_S)     # longer than the idle time: the answer still comes
    return web.Response(text="slow")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/echo", _echo)
    app.router.add_get("/slow", _slow)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, keepalive_timeout=KEEPALIVE_S)
    await runner.setup()
    listener = listening_socket("127.0.0.1", 0, backlog=16)
    await DrainingSite(runner, listener, read_timeout_s=5.0).start()
    try:
        yield listener.getsockname()[1]
    finally:
        await runner.cleanup()


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


async def test_requests_pipelined_on_one_connection_are_answered_in_order(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)) +
                     b"GET /echo?n=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = await asyncio.to_thread(_read_until_closed, sock)
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in answers.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"0", b"1", b"2", b"3", b"4", b"last"]


async def test_a_connection_idle_after_a_long_answer_is_closed_after_its_keepalive_time(port: int) -> None:
    # A keep-alive connection (no `Connection: close`): only the server's idle timer, armed again once the
    # answer is done, hangs up on it. Were it not armed, the read below would time out instead (10 s).
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await asyncio.to_thread(_read_until_closed, sock)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"slow")


async def test_aiohttps_own_errors_are_answered_in_the_openai_shape(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = await asyncio.to_thread(_read_until_closed, sock)
    method, missing = answers.split(b"HTTP/1.1 ")[1:]
    assert method.startswith(b"405") and missing.startswith(b"404")
    assert orjson.loads(method.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "method_not_allowed"
    assert orjson.loads(missing.split(b"\r\n\r\n", 1)[1])["error"] == {
        "message": "GET /nowhere: Not Found.", "type": "invalid_request_error", "param": None, "code": "not_found"}
