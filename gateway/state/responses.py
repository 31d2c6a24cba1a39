"""The Responses the gateway served, kept so a later `previous_response_id` can be expanded for a
target that did not write it (another provider after a failover, or a chat-only server).

Each response keeps its own input and output items and the id it continued; a chain is read back
by walking those links. Kept in memory with a TTL and a bound on how many; `ResponseStore` is the
seam a shared (Redis) store plugs into.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.providers.base import Prior

# A chain longer than this is a loop or a conversation no model's context could hold.
MAX_CHAIN = 1000


@dataclass(frozen=True, slots=True)
class StoredResponse:
    origin: str                             # the provider that wrote it
    previous: str | None                    # the response it continued
    items: tuple[dict[str, Any], ...]       # its input items, then its output items
    expires: float


class ResponseStore(Protocol):
    async def put(self, response_id: str, origin: str, previous: str | None,
                  items: Sequence[dict[str, Any]]) -> None: ...

    async def chain(self, response_id: str) -> Prior | None:
        """Every item of the conversation up to and including `response_id`; None when it (or a
        response it continued) is unknown or expired."""
        ...


class MemoryResponses:
    def __init__(self, ttl_s: float, max_responses: int, clock: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self.max_responses = max_responses
        self.clock = clock
        self._kept: OrderedDict[str, StoredResponse] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def put(self, response_id: str, origin: str, previous: str | None,
                  items: Sequence[dict[str, Any]]) -> None:
        self._kept[response_id] = StoredResponse(origin, previous, tuple(items), self.clock() + self.ttl_s)
        self._kept.move_to_end(response_id)
        while len(self._kept) > self.max_responses:
            self._kept.popitem(last=False)   # the oldest goes first

    def _get(self, response_id: str, now: float) -> StoredResponse | None:
        stored = self._kept.get(response_id)
        if stored is None:
            return None
        if stored.expires <= now:
            del self._kept[response_id]
            return None
        return stored

    async def chain(self, response_id: str) -> Prior | None:
        now = self.clock()
        head = self._get(response_id, now)
        if head is None:
            return None
        links = [head]
        while links[-1].previous is not None and len(links) < MAX_CHAIN:
            earlier = self._get(links[-1].previous, now)
            if earlier is None:
                return None   # a gap would silently drop turns the client believes are there
            links.append(earlier)
        items = tuple(item for link in reversed(links) for item in link.items)
        return Prior(response_id, head.origin, items)
