"""Local GPU pools at run time: the live load of every endpoint, the order a request meets a pool's
replicas in, and the waiting room of a full pool that is the last target standing.

Held by the process, not a policy: load is kept by endpoint URL, so a reload that keeps an endpoint
keeps what is known of it. Decisions are gateway/routing/picker.py's and spill.py's; this module holds the
state.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.core.deployment import Deployment
from gateway.core.metrics import Metrics
from gateway.routing.picker import (EndpointLoad, ahead, expected_wait, fresh, past_threshold, pick, pool_full, queue,
                                    utilisation)
from gateway.routing.pool_metrics import Reading
from gateway.routing.request_log import AttemptRecord
from gateway.routing.spill import Prediction, past_objective, wait_limit
from gateway.routing.prefix import CHUNK_BYTES, PrefixPicture, chunks_held, prompt_chunks
from gateway.routing.table import PoolSpan, RouteTable

PRIORITIES = {"critical": 0, "standard": 1, "sheddable": 2}
SERVICE_ALPHA = 0.1     # the mean service time follows about the last ten requests
GAP_ALPHA = 0.05        # the gap between completions under a queue, the last twenty or so


def stale_after(span: PoolSpan) -> float:
    """A reading counts for three scrape periods: one missed scrape does not blind the picker."""
    return 3.0 * span.load.scrape_s


@dataclass(frozen=True, slots=True)
class Arranged:
    order: tuple[int, ...]
    spilled: tuple[PoolSpan, ...] = ()      # pools moved behind the route's other targets: full, or their wait too long
    reasons: tuple[str, ...] = ()           # why, one per spilled pool: full (hard limits), wait, objective
    alone: PoolSpan | None = None           # a full pool with no other target to send the request to
    chunks: tuple[int, ...] = ()            # the prompt's chunk names (prefix affinity), for the pictures


@dataclass(frozen=True, slots=True)
class Sent:
    """One request on one endpoint: when it went, and whether a place in the batch was free for it."""

    url: str
    at: float
    at_once: bool
    uncached: int = 0       # prompt bytes the gateway's picture said the endpoint did not hold


@dataclass(slots=True)
class Sends:
    """The pool endpoints one request was sent to (a failover or a hedge may add a second)."""

    board: PoolBoard
    spans: Mapping[str, PoolSpan]
    chunks: tuple[int, ...]
    sent: list[tuple[Deployment, Sent]] = field(default_factory=list)

    def mark(self, d: Deployment) -> None:
        if not any(m is d for m, _ in self.sent):
            self.sent.append((d, self.board.sent(d, self.chunks, self.spans.get(d.provider))))

    def close(self, attempts: Sequence[AttemptRecord] = (), stream: bool = False) -> None:
        """The request is over: each endpoint is told, with a stream's first token there (from
        `attempts`) for its first-token fit."""
        for d, ticket in self.sent:
            ttft = next((a.provider_ttft_s for a in attempts if a.deployment is d and a.provider_ttft_s is not None),
                        None) if stream else None
            self.board.done(d, ticket, ttft)


class PoolBoard:
    def __init__(self, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.clock = clock
        self.loads: dict[str, EndpointLoad] = {}
        self.pictures: dict[str, PrefixPicture] = {}
        self.rooms: dict[str, WaitingRoom] = {}
        self.stale_s: dict[str, float] = {}     # by endpoint URL: how long its pool's readings count

    def load(self, url: str) -> EndpointLoad:
        load = self.loads.get(url)
        if load is None:
            load = self.loads[url] = EndpointLoad()
        return load

    def endpoint(self, span: PoolSpan, url: str) -> EndpointLoad:
        """An endpoint's load, its batch size at least what its pool's settings say."""
        load = self.load(url)
        if span.slots > load.batch:
            load.batch = span.slots
        return load

    def picture(self, span: PoolSpan, url: str) -> PrefixPicture:
        """What the gateway sent `url`, bounded by what its cache holds (resized when a reload changes it)."""
        capacity = chunks_held(span.cache_tokens)
        picture = self.pictures.get(url)
        if picture is None:
            picture = self.pictures[url] = PrefixPicture(capacity)
        picture.capacity = capacity
        return picture

    def arrange(self, route: RouteTable, order: Sequence[int], body: Mapping[str, Any], now: float,
                ttfts: Sequence[float | None] | None = None, stream: bool = True) -> Arranged:
        """The planner's order with each pool's endpoints picked by load and prefix, and a pool moved
        behind the route's other targets when it is full or its wait is longer than theirs to a first
        token (`ttfts`: each deployment's expected time to first token, None where unmeasured)."""
        out = list(order)
        spilled: list[PoolSpan] = []
        reasons: list[str] = []
        alone: PoolSpan | None = None
        chunks: tuple[int, ...] | None = None
        for span in route.pools:
            members = [i for i in out if i in span.indices]
            if not members:
                continue
            first = span.indices[0]
            urls = [span.urls[i - first] for i in members]
            if span.load.affinity == "prefix" and chunks is None:
                chunks = prompt_chunks(body)
            at = out.index(members[0])
            after = [i for i in out[at:] if i not in span.indices]
            limit, why = wait_limit(span, after[0] if after else None, members, ttfts)
            picked, wait, expected = self._pick(span, urls, chunks if span.load.affinity == "prefix" else None, now,
                                                limit)
            ordered = iter([members[j] for j in picked])
            out = [next(ordered) if i in span.indices else i for i in out]
            full = pool_full([self.load(u) for u in urls], span.load.spill, now, stale_after(span))
            over = full or wait > limit
            if not over and stream and past_objective(span, after[0] if after else None, members, ttfts, wait,
                                                      expected):
                over, why = True, "objective"
            if over:
                others = [i for i in out if i not in span.indices]
                if others:
                    out = others + [i for i in out if i in span.indices]
                    spilled.append(span)
                    reasons.append("full" if full else why)
                elif full:
                    alone = span
        return Arranged(tuple(out), tuple(spilled), tuple(reasons), alone, chunks or ())

    def repick(self, span: PoolSpan, endpoints: Sequence[Deployment], body: Mapping[str, Any],
               now: float) -> list[Deployment]:
        """The pool's endpoints picked again, for a request that waited for the pool: the loads it was
        first arranged by are past."""
        chunks = prompt_chunks(body) if span.load.affinity == "prefix" else None
        picked, _, _ = self._pick(span, [d.base_url for d in endpoints], chunks, now, math.inf)
        return [endpoints[j] for j in picked]

    def _pick(self, span: PoolSpan, urls: Sequence[str], chunks: tuple[int, ...] | None, now: float,
              wait_limit: float) -> tuple[list[int], float, Prediction]:
        """The order of `urls` to try, the expected wait at the first, and the first tokens expected."""
        loads = [self.endpoint(span, u) for u in urls]
        stale = stale_after(span)
        waits = [expected_wait(x, now, stale) for x in loads]
        # An endpoint whose pace is not measured yet has no wait to compare: until every one has, the
        # pool is ordered by fullness alone (else the unmeasured one would look idle and take it all).
        measured = all(x.service_s is not None or x.gap_s is not None for x in loads)
        matches = [self.picture(span, u).match(chunks) for u in urls] if chunks else None
        spill = span.load.spill
        past = [past_threshold(x, spill, now, stale) for x in loads] if spill is not None else None
        order = pick([ahead(x, now, stale) for x in loads], [x.kv if fresh(x, now, stale) else None for x in loads],
                     waits if measured else [0.0] * len(loads), [x.batch for x in loads], matches,
                     span.load.bound, wait_limit, past)
        uncached = [(len(chunks) - m) * CHUNK_BYTES for m in matches] if chunks and matches else [None] * len(loads)
        first = order[0]
        # The first token this request would get unloaded: at the endpoint holding most of its prompt.
        best = max(range(len(loads)), key=lambda i: matches[i]) if chunks and matches else first
        return order, waits[first], Prediction(loads[first].first_tokens.predict(uncached[first]),
                                               loads[best].first_tokens.predict(uncached[best]))

    def sends(self, route: RouteTable, chunks: tuple[int, ...]) -> Sends:
        return Sends(self, {s.provider: s for s in route.pools}, chunks)

    def sent(self, d: Deployment, chunks: Sequence[int] = (), span: PoolSpan | None = None) -> Sent:
        load = self.endpoint(span, d.base_url) if span is not None else self.load(d.base_url)
        now = self.clock()
        stale = stale_after(span) if span is not None else 3.0
        picture = self.picture(span, d.base_url) if span is not None and chunks else None
        matched = picture.match(chunks) if picture is not None else 0
        ticket = Sent(d.base_url, now, load.batch <= 0 or ahead(load, now, stale) < load.batch,
                      (len(chunks) - matched) * CHUNK_BYTES)
        load.sent += 1
        load.in_flight += 1
        load.queued += not ticket.at_once
        load.sends.append(now)
        if picture is not None and span is not None:
            counts = self.metrics.pool_prefix(span.provider)
            counts.lookups.inc()
            counts.prompt_bytes.inc(len(chunks) * CHUNK_BYTES)
            if matched:
                counts.hits.inc()
                counts.matched_bytes.inc(matched * CHUNK_BYTES)
            picture.sent(chunks)
        return ticket

    def done(self, d: Deployment, ticket: Sent | None = None, ttft_s: float | None = None) -> None:
        """A request left endpoint `d` (`ttft_s`: a stream's first token there, when it had one)."""
        load = self.load(d.base_url)
        now = self.clock()
        if ticket is not None and ticket.at_once and ttft_s is not None:
            load.first_tokens.add(ticket.uncached, ttft_s)
        if ticket is not None and self.queueing(d):
            # Requests were waiting: a place freed at once goes to the next, so completions come at the
            # server's own pace, whatever the gateway's relaying adds to each request's time.
            if load.done_at is not None:
                gap = now - load.done_at
                load.gap_s = gap if load.gap_s is None else load.gap_s + GAP_ALPHA * (gap - load.gap_s)
                load.gap_at = now
            load.done_at = now
        else:
            load.done_at = None
        load.in_flight = max(0, load.in_flight - 1)
        if ticket is not None:
            load.queued = max(0, load.queued - (not ticket.at_once))
            with contextlib.suppress(ValueError):
                load.sends.remove(ticket.at)
            if load.read_at is not None and ticket.at < load.read_at:
                load.gone += 1      # the last reading counted it running: it no longer is
            else:
                load.sent = max(0, load.sent - 1)     # sent since the reading: no longer on it
            if ticket.at_once:
                took = now - ticket.at
                load.service_s = took if load.service_s is None else \
                    load.service_s + SERVICE_ALPHA * (took - load.service_s)
        room = self.rooms.get(d.provider)
        if room is not None:
            room.wake()

    def queueing(self, d: Deployment) -> bool:
        """Do requests wait for a place in this endpoint's batch now?"""
        load = self.loads.get(d.base_url)
        if load is None:
            return False
        now, stale = self.clock(), self.stale_s.get(d.base_url, 3.0)
        return queue(load, now, stale) > 0 or (load.batch > 0 and ahead(load, now, stale) > load.batch)

    def waited(self, d: Deployment) -> bool:
        """Might a first token at this endpoint now have waited for a place: requests wait there, or one of
        the gateway's that found no place when sent is still there? Then a slow first token is the load
        the pool chose to queue (and spills past), not a brownout of the replica. The second matters: the
        last requests of a queue get their first tokens once it has drained, each after the whole wait."""
        load = self.loads.get(d.base_url)
        return load is not None and (load.queued > 0 or self.queueing(d))

    def read(self, span: PoolSpan, url: str, reading: Reading | None, at: float) -> None:
        """A scrape's result (None: it failed, and the last reading ages out)."""
        self.stale_s[url] = stale_after(span)
        if reading is None:
            return
        load = self.endpoint(span, url)
        if load.read_at is not None and at < load.read_at:
            return      # a scrape overtaken by a later one (a scrape on demand beside the periodic one)
        # Requests sent since `at` (the reading is dated when it was asked for) stay counted: while the
        # scrape was under way a burst may have gone there that the reading cannot show.
        load.running, load.waiting, load.kv, load.read_at, load.sent, load.gone = \
            reading.running, reading.waiting, reading.kv, at, len(load.sends) - bisect.bisect_left(load.sends, at), 0
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
