"""The listening socket is drained on each readiness, so new connections are not left in the kernel's queue."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from gateway.serving.listener import DrainingSite, listening_socket


def _get(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    sock.close()
    return answer


async def _pong(_: web.Request) -> web.Response:
    return web.Response(text="pong")


async def test_one_readiness_accepts_every_waiting_connection_and_each_is_served() -> None:
    app = web.Application()
    app.router.add_get("/ping", _pong)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    listener = listening_socket("127.0.0.1", 0, backlog=128)
    port = listener.getsockname()[1]
    # The kernel completes these handshakes on its own: they wait in the accept queue.
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    site = DrainingSite(runner, listener)
    try:
        await site.start()
        # One readiness, before the loop runs again: a one-per-iteration acceptor would take 1.
        assert site.accept_pending() == 40
        answers = await asyncio.gather(*(asyncio.to_thread(_get, c) for c in clients))
        assert all(a.startswith(b"HTTP/1.1 200") and a.endswith(b"pong") for a in answers)
    finally:
        await runner.cleanup()
    assert listener.fileno() == -1, "stopping the site closes its socket"


async def test_a_port_in_use_is_refused_when_binding() -> None:
    taken = listening_socket("127.0.0.1", 0, backlog=8)
    try:
        port = taken.getsockname()[1]
        try:
            listening_socket("127.0.0.1", port, backlog=8)
        except OSError as exc:
            assert "in use" in str(exc).lower()
        else:
            raise AssertionError("a second listener bound a port in use without SO_REUSEPORT")
    finally:
        taken.close()
