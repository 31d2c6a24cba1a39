"""Reads each pool endpoint's /metrics off the request path: one task per pool, each scrape bounded.

A supervisor looks at the routing the gateway serves now (it changes on reload) and keeps one task
per pool whose server publishes load; a pool that goes away has its task cancelled. A scrape that
fails or times out changes nothing: the last reading ages out (gateway/routing/picker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp

from gateway.routing.pool_metrics import metrics_url, parse, scraped
from gateway.routing.pools import PoolBoard
from gateway.routing.table import PoolSpan, Routing

log = logging.getLogger("recloser.pools")

MAX_METRICS_BYTES = 4 * 1024 * 1024     # vLLM's page is ~100 KB; a bigger one is not worth reading


def pools_of(routing: Routing) -> dict[str, PoolSpan]:
    """The pools a routing serves, one per provider (the same provider in two routes is one pool)."""
    out: dict[str, PoolSpan] = {}
    for table in routing.routes.values():
        for span in table.pools:
            out.setdefault(span.provider, span)
    return out


class PoolScraper:
    def __init__(self, board: PoolBoard, session: aiohttp.ClientSession, routing: Callable[[], Routing],
                 clock: Callable[[], float], every_s: float = 1.0) -> None:
        self.board = board
        self.session = session
        self.routing = routing
        self.clock = clock
        self.every_s = every_s          # how often the supervisor looks for pools that came or went
        self.tasks: dict[str, tuple[PoolSpan, asyncio.Task[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.reconcile()
        self._task = asyncio.create_task(self._supervise(), name="pool scraper")

    async def stop(self) -> None:
        tasks = [t for _, t in self.tasks.values()] + ([self._task] if self._task else [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        self._task = None

    def reconcile(self) -> None:
        """One task per pool served now; a pool whose endpoints or settings changed gets a new one."""
        wanted = pools_of(self.routing())
        for name, (span, task) in list(self.tasks.items()):
            if wanted.get(name) != span:
                task.cancel()
                del self.tasks[name]
        for name, span in wanted.items():
            if name not in self.tasks:
                self.tasks[name] = (span, asyncio.create_task(self._scrape_pool(span), name=f"scrape {name}"))

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            self.reconcile()

    async def _scrape_pool(self, span: PoolSpan) -> None:
        while True:
            await self.scrape_once(span)
            await asyncio.sleep(span.load.scrape_s)

    async def scrape_once(self, span: PoolSpan) -> None:
        """Every endpoint of `span` at once, each within the scrape period (at most 2 s); then the pool's
        utilisation, and a turn for a request waiting on it."""
        if scraped(span.server):   # else only the gateway's own in-flight count says how busy it is
            await asyncio.gather(*(self._scrape(span, url) for url in span.urls))
        self.board.metrics.pool_utilisation(span.provider).set(self.board.utilisation(span, self.clock()))
        self.board.wake(span.provider)

    async def _scrape(self, span: PoolSpan, url: str) -> None:
        timeout = aiohttp.ClientTimeout(total=min(span.load.scrape_s, 2.0))
        # The reading is dated when it was asked for: a request the gateway sent before then reached the
        # server before its answer (one sent later may not have), which is what the board's counts assume.
        asked = self.clock()
        try:
            async with self.session.get(metrics_url(url), timeout=timeout) as resp:
                if resp.status != 200:
                    return
                raw = await resp.content.read(MAX_METRICS_BYTES)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.debug("scrape of %s failed: %s", url, exc)
            return
        reading = parse(raw.decode("utf-8", "replace"), span.server)
        self.board.read(span, url, reading, asked)
