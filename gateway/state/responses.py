"""The Responses the gateway served, kept so a later `previous_response_id` can be expanded for a
target that did not write it (another provider after a failover, or a chat-only server).

Each response keeps its own input and output items and the id it continued; a chain is read back
by walking those links. Kept in memory with a TTL and a bound on how many; with shared state
configured, in Redis too (with the TTL), so any replica or worker can continue a conversation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.providers.base import Prior
from gateway.state.base import StateUnavailable
from gateway.state.redis import RedisState

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

    async def items(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The kept items with these ids (an `item_reference` names one); unknown ids are left out."""
        ...


# Items kept per response, on average, before the item index lets the oldest go.
_ITEMS_PER_RESPONSE = 16


class MemoryResponses:
    def __init__(self, ttl_s: float, max_responses: int, clock: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self.max_responses = max_responses
        self.clock = clock
        self._kept: OrderedDict[str, StoredResponse] = OrderedDict()
        self._items: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()   # item id → item, expiry

    def __len__(self) -> int:
        return len(self._kept)

    async def put(self, response_id: str, origin: str, previous: str | None,
                  items: Sequence[dict[str, Any]]) -> None:
        self._kept[response_id] = StoredResponse(origin, previous, tuple(items), self.clock() + self.ttl_s)
        self._kept.move_to_end(response_id)
        while len(self._kept) > self.max_responses:
            self._kept.popitem(last=False)   # the oldest goes first
        expires = self.clock() + self.ttl_s
        for item in items:
            if isinstance(item.get("id"), str):
                self._items[item["id"]] = (item, expires)
                self._items.move_to_end(item["id"])
        while len(self._items) > self.max_responses * _ITEMS_PER_RESPONSE:
            self._items.popitem(last=False)

    async def items(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        now = self.clock()
        found = {}
        for item_id in ids:
            kept = self._items.get(item_id)
            if kept is not None and kept[1] > now:
                found[item_id] = kept[0]
        return found

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

        async def get(rid: str) -> StoredResponse | None:
            return self._get(rid, now)

        return await walk(response_id, get)


async def walk(response_id: str, get: Callable[[str], Awaitable[StoredResponse | None]]) -> Prior | None:
    """The chain ending at `response_id`, read link by link; None when any link is missing."""
    head = await get(response_id)
    if head is None:
        return None
    links = [head]
    while links[-1].previous is not None and len(links) < MAX_CHAIN:
        earlier = await get(links[-1].previous)
        if earlier is None:
            return None   # a gap would silently drop turns the client believes are there
        links.append(earlier)
    items = tuple(item for link in reversed(links) for item in link.items)
    return Prior(response_id, head.origin, items)


class SharedResponses:
    """Kept in Redis for every replica, and in this process as well: while Redis is down, the
    conversations this process served still continue here."""

    def __init__(self, shared: RedisState, local: MemoryResponses) -> None:
        self.shared = shared
        self.local = local

    async def put(self, response_id: str, origin: str, previous: str | None,
                  items: Sequence[dict[str, Any]]) -> None:
        await self.local.put(response_id, origin, previous, items)
        value = orjson.dumps({"origin": origin, "previous": previous, "items": list(items)})
        try:
            await self.shared.keep(f"response:{response_id}", value, self.local.ttl_s)
            for item in items:
                if isinstance(item.get("id"), str):
                    await self.shared.keep(f"item:{item['id']}", orjson.dumps(item), self.local.ttl_s)
        except StateUnavailable:
            pass

    async def items(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found = await self.local.items(ids)
        try:
            for item_id in ids:
                if item_id not in found:
                    raw = await self.shared.read(f"item:{item_id}")
                    if raw is not None:
                        found[item_id] = orjson.loads(raw)
        except StateUnavailable:
            pass
        return found

    async def chain(self, response_id: str) -> Prior | None:
        async def get(rid: str) -> StoredResponse | None:
            raw = await self.shared.read(f"response:{rid}")
            if raw is None:
                return None
            data = orjson.loads(raw)
            return StoredResponse(data["origin"], data["previous"], tuple(data["items"]), 0.0)

        try:
            return await walk(response_id, get)
        except StateUnavailable:
            return await self.local.chain(response_id)
