"""The upstream connection pool: aiohttp's, with a lighter protocol object per connection and a
cheaper way to open a plain connection."""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from typing import Any

import aiohttp
from aiohttp.client_exceptions import ClientConnectorError
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.helpers import ceil_timeout

from gateway.core.small_queue import SmallQueue, lighten


class _ResponseHandler(ResponseHandler):
    """aiohttp's upstream connection protocol, its queue of answers and each answer's body kept in
    small queues (core/small_queue.py): one answer at a time comes on a connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        if isinstance(getattr(self, "_buffer", None), deque):
            self._buffer = SmallQueue()  # type: ignore[assignment]  # what of a deque aiohttp uses

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        body = self._payload
        if body is not None and type(body._buffer) is deque:    # an answer's headers came: its body
            lighten(body)


class _Connector(aiohttp.TCPConnector):
    """A plain connection to one address is opened by the event loop itself. aiohttp opens every
    connection through Happy Eyeballs (a Python socket, connected, then handed to the loop): 100-150 µs
    more CPU per connection, and a stream to a local model server or a busy pool opens one each. A
    name with several addresses, TLS, a local address or a socket factory keep aiohttp's way."""

    async def _wrap_create_connection(self, *args: Any, addr_infos: list[Any], req: ClientRequest,
                                      timeout: aiohttp.ClientTimeout,
                                      client_error: type[Exception] = ClientConnectorError,
                                      **kwargs: Any) -> tuple[asyncio.Transport, ResponseHandler]:
        if len(addr_infos) != 1 or kwargs.get("ssl") or self._local_addr_infos or self._socket_factory is not None:
            return await super()._wrap_create_connection(*args, addr_infos=addr_infos, req=req, timeout=timeout,
                                                         client_error=client_error, **kwargs)
        family, _, proto, _, address = addr_infos[0]
        kwargs.pop("server_hostname", None)   # only for TLS
        kwargs.pop("ssl", None)
        try:
            async with ceil_timeout(timeout.sock_connect, ceil_threshold=timeout.ceil_threshold):
                opened: tuple[asyncio.Transport, ResponseHandler]
                opened = await self._loop.create_connection(  # type: ignore[call-overload]
                    *args, host=address[0], port=address[1], family=family, proto=proto, **kwargs)
                return opened
        except OSError as exc:
            if exc.errno is None and isinstance(exc, asyncio.TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc


def upstream_connector(**settings: Any) -> aiohttp.TCPConnector:
    """A TCPConnector (with `settings`) whose connections use the lighter protocol object; aiohttp's own
    when it no longer makes them the way this expects."""
    connector = _Connector(**settings)
    made = getattr(connector, "_factory", None)
    if isinstance(made, functools.partial) and made.func is ResponseHandler:
        lighter = functools.partial(_ResponseHandler, *made.args, **made.keywords)
        connector._factory = lighter  # type: ignore[assignment]
    return connector
