"""A queue for what nearly always holds one item at a time, in aiohttp's place of a deque.

aiohttp keeps the requests parsed on a server connection, and the answers read on an upstream one,
in a deque each: over 600 bytes even when empty, on every open connection. A stream holds two such
connections for minutes, thousands at a time; an empty list is 56 bytes. Popping its head is a copy
of what follows, which here is nothing or a pipelined request or two (aiohttp bounds them).
"""

from __future__ import annotations

from typing import Any


class SmallQueue(list[Any]):
    """A list with the one deque method aiohttp calls beyond a list's own."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)
