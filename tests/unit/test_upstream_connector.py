"""The upstream pool's connector: a plain connection to one address is opened by the loop itself and
behaves as aiohttp's own (answers read, keep-alive reuse, a refused connection a ClientConnectorError)."""

from __future__ import annotations

import errno
import socket

import aiohappyeyeballs
import aiohttp
import pytest
from aiohttp import web

from gateway.providers.connections import upstream_connector
from tests.conftest import serving


async def test_a_plain_connection_is_opened_by_the_loop_answers_and_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    async def happy_eyeballs(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("opened through aiohttp's Happy Eyeballs")

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", happy_eyeballs)
    peers: list[object] = []

    async def hello(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    async with serving(app) as port, aiohttp.ClientSession(connector=upstream_connector(limit=0)) as session:
        for _ in range(3):
            async with session.get(f"http://127.0.0.1:{port}/") as r:
                assert r.status == 200 and await r.text() == "hi"
    assert len(peers) == 3 and len(set(map(str, peers))) == 1   # one connection, reused


async def test_a_refused_connection_is_aiohttps_connector_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]      # bound, not listening: nobody answers there
        async with aiohttp.ClientSession(connector=upstream_connector(limit=0)) as session:
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                await session.get(f"http://127.0.0.1:{port}/")
    assert info.value.os_error.errno == errno.ECONNREFUSED
