"""The listening socket: every pending connection is accepted each time the socket is ready.

libuv (under uvloop) accepts one connection per loop iteration. When the gateway's CPU is saturated
an iteration lasts tens of milliseconds, so new connections pile up in the kernel's accept queue and
their requests wait there for seconds, never seen and so never shed: measured at twice the
saturation rate, requests on new connections were answered only after the load stopped. Draining the
queue on each readiness puts those requests in front of admission control, where an overload turns
into a quick 503 instead of a long wait.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

from aiohttp import web
from aiohttp.web_runner import BaseSite

from gateway.serving.protocol import handler_factory

log = logging.getLogger("recloser")

# Connections accepted per readiness at most, so one flood cannot hold the loop for long.
ACCEPT_BATCH = 512
# After the process ran out of descriptors, how long accepting pauses (asyncio's loop does the same).
ACCEPT_RETRY_S = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def listening_socket(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    """A bound, listening, non-blocking TCP socket (SO_REUSEPORT when several workers share the port)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class DrainingSite(BaseSite):
    """An aiohttp site on a socket of ours, accepting up to ACCEPT_BATCH connections per readiness."""

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, read_timeout_s: float = 30.0) -> None:
        super().__init__(runner)
        self._sock = sock
        self._read_timeout_s = read_timeout_s
        self._protocol: Callable[[], asyncio.Protocol] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handshakes: set[asyncio.Task[object]] = set()

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        self._loop = asyncio.get_running_loop()
        assert self._runner.server is not None
        self._protocol = handler_factory(self._runner.server, self._read_timeout_s)
        self._loop.add_reader(self._sock.fileno(), self.accept_pending)

    def accept_pending(self) -> int:
        """Accepts what is waiting (up to a batch) and hands each connection to aiohttp; returns how many."""
        loop, factory = self._loop, self._protocol
        assert loop is not None and factory is not None
        accepted = 0
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionAbortedError:
                continue            # the client gave up before we got to it
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                log.warning("not accepting connections for %.0f s: %s", ACCEPT_RETRY_S, exc.strerror)
                loop.remove_reader(self._sock.fileno())
                loop.call_later(ACCEPT_RETRY_S, self._resume)
                break
            conn.setblocking(False)
            self._attach(loop, factory, conn)
            accepted += 1
        return accepted

    def _attach(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol],
                conn: socket.socket) -> None:
        task = loop.create_task(loop.connect_accepted_socket(factory, conn))
        self._handshakes.add(task)
        task.add_done_callback(self._attached)

    def _attached(self, task: asyncio.Task[object]) -> None:
        self._handshakes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a connection failed as it was attached: %s", task.exception())

    def _resume(self) -> None:
        if self._loop is not None and self._sock.fileno() >= 0:
            self._loop.add_reader(self._sock.fileno(), self.accept_pending)

    async def stop(self) -> None:
        if self._loop is not None and self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        await super().stop()
