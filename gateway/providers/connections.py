"""The upstream connection pool: aiohttp's, with a lighter protocol object per connection."""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

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


def upstream_connector(**settings: Any) -> aiohttp.TCPConnector:
    """A TCPConnector (with `settings`) whose connections use the lighter protocol object; aiohttp's own
    when it no longer makes them the way this expects."""
    connector = aiohttp.TCPConnector(**settings)
    made = getattr(connector, "_factory", None)
    if isinstance(made, functools.partial) and made.func is ResponseHandler:
        connector._factory = functools.partial(_ResponseHandler, *made.args, **made.keywords)  # type: ignore[assignment]
    return connector
