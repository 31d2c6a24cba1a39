"""Local GPU pools at run time: the live load of every endpoint, the order a request meets a pool's
replicas in, and the waiting room of a full pool that is the last target standing.

Held by the process, not a policy: load is kept by endpoint URL, so a reload that keeps an endpoint
keeps what is known of it. Decisions are gateway/routing/picker.py's; this module holds the state.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.core.deployment import Deployment
from gateway.core.metrics import Metrics
from gateway.routing.affinity import affinity_key
from gateway.routing.picker import EndpointLoad, ahead, fresh, pick, pool_full, utilisation
from gateway.routing.pool_metrics import Reading
from gateway.routing.table import PoolSpan, RouteTable

PRIORITIES = {"critical": 0, "standard": 1, "sheddable": 2}


def stale_after(span: PoolSpan) -> float:
    """A reading counts for three scrape periods: one missed scrape does not blind the picker."""
    return 3.0 * span.load.scrape_s


@dataclass(frozen=True, slots=True)
class Arranged:
    order: tuple[int, ...]
    spilled: tuple[PoolSpan, ...] = ()      # full pools moved behind the route's other targets
    alone: PoolSpan | None = None           # a full pool with no other target to send the request to


class PoolBoard:
    def __init__(self, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.clock = clock
        self.loads: dict[str, EndpointLoad] = {}
        self.seeds: dict[str, int] = {}
        self.rooms: dict[str, WaitingRoom] = {}

    def load(self, url: str) -> EndpointLoad:
        load = self.loads.get(url)
        if load is None:
            load = self.loads[url] = EndpointLoad()
            self.seeds[url] = zlib.crc32(url.encode())
        return load

    def arrange(self, route: RouteTable, order: Sequence[int], body: Mapping[str, Any],
                headers: Mapping[str, str], now: float) -> Arranged:
        """The planner's order with each pool's endpoints picked by load and affinity, and full pools
        moved behind the route's other targets."""
        out = list(order)
        spilled: list[PoolSpan] = []
        alone: PoolSpan | None = None
        key: int | None = None
        keyed = False
        for span in route.pools:
            members = [i for i in out if i in span.indices]
            if not members:
                continue
            first = span.indices[0]
            urls = [span.urls[i - first] for i in members]
            if span.load.affinity == "prefix" and not keyed:
                key, keyed = affinity_key(body, headers), True
            ordered = iter([members[j] for j in self._pick(span, urls, key, now)])
            out = [next(ordered) if i in span.indices else i for i in out]
            if pool_full([self.load(u) for u in urls], span.load.spill, now, stale_after(span)):
                others = [i for i in out if i not in span.indices]
                if others:
                    out = others + [i for i in out if i in span.indices]
                    spilled.append(span)
                else:
                    alone = span
        return Arranged(tuple(out), tuple(spilled), alone)

    def repick(self, span: PoolSpan, endpoints: Sequence[Deployment], body: Mapping[str, Any],
               headers: Mapping[str, str], now: float) -> list[Deployment]:
        """The pool's endpoints picked again, for a request that waited for the pool: the loads it was
        first arranged by are past."""
        key = affinity_key(body, headers) if span.load.affinity == "prefix" else None
        return [endpoints[j] for j in self._pick(span, [d.base_url for d in endpoints], key, now)]

    def _pick(self, span: PoolSpan, urls: Sequence[str], key: int | None, now: float) -> list[int]:
        loads = [self.load(u) for u in urls]
        stale = stale_after(span)
        return pick([ahead(x, now, stale) for x in loads], [x.kv if fresh(x, now, stale) else None for x in loads],
                    [self.seeds[u] for u in urls], key if span.load.affinity == "prefix" else None, span.load.bound)

    def sent(self, d: Deployment) -> None:
        load = self.load(d.base_url)
        load.sent += 1
        load.in_flight += 1

    def done(self, d: Deployment) -> None:
        load = self.load(d.base_url)
        load.in_flight = max(0, load.in_flight - 1)
        room = self.rooms.get(d.provider)
        if room is not None:
            room.wake()

    def read(self, span: PoolSpan, url: str, reading: Reading | None, at: float) -> None:
        """A scrape's result (None: it failed, and the last reading ages out)."""
        if reading is None:
            return
        load = self.load(url)
        load.running, load.waiting, load.kv, load.read_at, load.sent = \
            reading.running, reading.waiting, reading.kv, at, 0
        if reading.waiting > 0:     # a server queues only once its batch is full: that is its batch size
            load.batch = max(load.batch, reading.running)
        host = url.split("://", 1)[-1].split("/", 1)[0]
        self.metrics.pool_load(span.provider, host, "running").set(reading.running)
        self.metrics.pool_load(span.provider, host, "waiting").set(reading.waiting)
        if reading.kv is not None:
            self.metrics.pool_load(span.provider, host, "kv_cache").set(reading.kv)

    def utilisation(self, span: PoolSpan, now: float) -> float:
        """The mean of the endpoints' utilisation (picker.utilisation): 1 is a pool with no room left."""
        stale = stale_after(span)
        return sum(utilisation(self.load(u), now, stale) for u in span.urls) / len(span.urls)

    def full(self, span: PoolSpan, now: float) -> bool:
        return pool_full([self.load(u) for u in span.urls], span.load.spill, now, stale_after(span))

    def room(self, span: PoolSpan) -> WaitingRoom:
        room = self.rooms.get(span.provider)
        if room is None:
            room = self.rooms[span.provider] = WaitingRoom()
        return room

    def wake(self, provider: str) -> None:
        room = self.rooms.get(provider)
        if room is not None:
            room.wake()


class WaitingRoom:
    """Requests waiting for a full pool, critical before standard, first come first served within each.

    One waiter is let go at a time (when a request on the pool ends or a scrape comes in); it looks at
    the pool again and, still full, waits again at the head of its line.
    """

    def __init__(self) -> None:
        self._line: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tickets = itertools.count()

    def __len__(self) -> int:
        return len(self._line)

    def ahead(self, rank: int) -> int:
        """Waiters a newcomer of `rank` would queue behind: those of the same rank or a better one."""
        return sum(1 for r, _, waiter in self._line if r <= rank and not waiter.done())

    def wake(self) -> None:
        while self._line:
            _, _, waiter = heapq.heappop(self._line)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def wait(self, rank: int, ticket: int | None = None) -> int:
        """Waits for a turn; returns the ticket that keeps this request's place when it waits again."""
        if ticket is None:
            ticket = next(self._tickets)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._line, (rank, ticket, waiter))
        try:
            await waiter
        finally:
            # Cancelled or timed out (the task's cancellation cancels the future too): out of the line,
            # else the dead entry would count against queue_max.
            if not waiter.done() or waiter.cancelled():
                waiter.cancel()
                self._line = [e for e in self._line if e[2] is not waiter]
                heapq.heapify(self._line)
        return ticket
