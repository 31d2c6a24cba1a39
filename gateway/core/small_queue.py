"""Queues for what nearly always holds an item or two, in place of aiohttp's deques.

aiohttp keeps the requests parsed on a server connection, the answers read on an upstream one, and
each body's unread bytes and chunk boundaries in deques: over 600 bytes each even when empty, five
of them per open stream, held for minutes by thousands of streams at a time. An empty list is 56
bytes. Popping its head is a copy of what follows, which here is nothing or a chunk or two (aiohttp
pauses reading long before a body's queue grows).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from aiohttp.streams import EmptyStreamReader, StreamReader


class SmallQueue(list[Any]):
    """A list with the deque methods aiohttp calls beyond a list's own."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


def lighten(reader: StreamReader) -> None:
    """A body's reader with its unread bytes and chunk boundaries kept in small queues (what is queued
    already moves over)."""
    if isinstance(reader, EmptyStreamReader):    # one shared by every request without a body
        return
    if type(reader._buffer) is deque:
        reader._buffer = SmallQueue(reader._buffer)  # type: ignore[assignment]  # what of a deque aiohttp uses
    splits = reader._http_chunk_splits
    if type(splits) is deque:
        reader._http_chunk_splits = SmallQueue(splits)  # type: ignore[assignment]
    elif splits is None and not reader.total_bytes:
        # aiohttp makes it on a chunked body's first chunk; made now, it is one of these instead.
        reader._http_chunk_splits = SmallQueue()  # type: ignore[assignment]
