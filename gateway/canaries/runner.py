"""Runs the canary suite against deployments: the effectful edge of quality canaries.

Each deployment runs the suite every `interval_s` (± jitter, so replicas and deployments do not
fire together), through the same upstream clients as user traffic but outside the request path:
canary calls are not requests, attempts or breaker outcomes. Their spend goes to the ledger as
`kind: canary` under team `recloser-canary`, within the canaries' own daily budget and never into
a team's budget. After each run, the pure verdict (gateway.quality.verdict) goes to the health board.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.metering.cost import cost_usd, to_nanos
from gateway.metering.ledger import LedgerWriter
from gateway.metering.prices import PriceBook
from gateway.metering.record import CallRecord, Usage
from gateway.metering.usage import usage_from_body
from gateway.core.metrics import Metrics
from gateway.providers.base import AttemptError, Call, UpstreamClient
from gateway.canaries.budget import CANARY_TEAM, CanaryBudget
from gateway.quality.checks import ItemResult, truncate
from gateway.quality.checks import judge as judge_answer
from gateway.policy.quality import CanaryItem, Canaries
from gateway.quality.suite import DEFAULT_SUITE
from gateway.quality.verdict import Quality, after_run, pass_ratio
from gateway.routing.health import HealthBoard
from gateway.core.deployment import Deployment

log = logging.getLogger("recloser.canary")

CANARY_APP = "canary"
CANARY_ROUTE = "(canary)"


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the suite against one deployment."""

    deployment: Deployment
    results: tuple[ItemResult, ...]
    cost_usd: Decimal
    seconds: float

    @property
    def pass_ratio(self) -> float | None:
        return pass_ratio(self.results)


def next_delay(cfg: Canaries, rng: random.Random) -> float:
    """The interval with its jitter: uniformly within ± `jitter` of `interval_s`."""
    return cfg.interval_s * (1.0 + rng.uniform(-cfg.jitter, cfg.jitter))


def canary_body(item: CanaryItem, cfg: Canaries) -> dict[str, Any]:
    body: dict[str, Any] = {"model": CANARY_ROUTE, "messages": [m.model_dump() for m in item.messages],
                            "max_tokens": cfg.max_tokens, "temperature": 0}
    if item.tools:
        body["tools"] = item.tools
    return body


class CanaryRunner:
    def __init__(self, cfg: Canaries, deployments: Sequence[Deployment],
                 client_for: Callable[[Deployment], UpstreamClient], metrics: Metrics, prices: PriceBook,
                 ledger: LedgerWriter | None, board: HealthBoard | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rng: random.Random | None = None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 budget_split: int = 1) -> None:
        self.cfg = cfg
        self.items: tuple[CanaryItem, ...] = tuple(cfg.items) if cfg.items is not None else DEFAULT_SUITE
        self.current: dict[str, Deployment] = {d.key: d for d in deployments}
        self.client_for = client_for
        self.metrics = metrics
        self.prices = prices
        self.ledger = ledger
        self.board = board
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.budget = CanaryBudget(cfg.budget_usd / budget_split)   # several workers: each its part
        self.quality: dict[str, Quality] = {key: Quality() for key in self.current}
        self._ran = asyncio.Condition()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False

    @property
    def deployments(self) -> tuple[Deployment, ...]:
        return tuple(self.current.values())

    def watch(self, deployments: Sequence[Deployment], prices: PriceBook | None = None) -> None:
        """The deployments of a (re)loaded policy: new ones get a schedule, dropped ones lose theirs
        (no canary spend on what no route sends to), kept ones keep what was learnt about them."""
        self.current = {d.key: d for d in deployments}
        if prices is not None:
            self.prices = prices
        for key in self.current:
            self.quality.setdefault(key, Quality())
        if not self._running:
            return
        for key in [k for k in self._tasks if k not in self.current]:
            self._tasks.pop(key).cancel()
        for key in self.current:
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(self._loop(key), name=f"canary {key}")

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    async def run_item(self, d: Deployment, item: CanaryItem) -> tuple[ItemResult, Decimal]:
        """One item against one deployment: its result and what it cost."""
        call = Call("chat", canary_body(item, self.cfg), False, f"canary-{os.urandom(6).hex()}")
        price = self.prices.price(d.provider, d.model)
        # Worst case: every byte of the request a token, and all of max_tokens used.
        worst = cost_usd(price, Usage(input_tokens=len(call.upstream_body(d.model)), output_tokens=self.cfg.max_tokens))
        if not self.budget.reserve(worst, self.now_utc()):
            return ItemResult(item.name, item.expect.kind, "skipped", "over the canaries' daily budget"), Decimal(0)
        started = self.clock()
        try:
            reply = await self.client_for(d).open(d, call, self.cfg.timeout_s)
        except AttemptError as err:
            self.budget.settle(worst, Decimal(0), self.now_utc())
            return ItemResult(item.name, item.expect.kind, "error", truncate(err.describe()),
                              self.clock() - started), Decimal(0)
        latency = self.clock() - started
        usage = usage_from_body(reply.body)
        cost = cost_usd(price, usage) if usage is not None else Decimal(0)
        # Usage not reported: the worst case stays spent, so the budget still holds.
        self.budget.settle(worst, cost if usage is not None else worst, self.now_utc())
        result = judge_answer(item, reply.body, latency)
        self._meter(d, call, usage or Usage(source="none"), cost, price.source, result)
        return result, cost

    def _meter(self, d: Deployment, call: Call, usage: Usage, cost: Decimal, price_source: str,
               result: ItemResult) -> None:
        labels = (CANARY_TEAM, CANARY_APP, CANARY_ROUTE, d.provider, d.model)
        nanos = to_nanos(cost)
        if nanos:
            self.metrics.cost_nanos(*labels).inc(nanos)
        for kind, n in (("input", usage.input_tokens), ("output", usage.output_tokens)):
            if n:
                self.metrics.tokens(*labels, kind, call.endpoint).inc(n)
        if self.ledger is None:
            return
        self.ledger.write(CallRecord(
            ts=self.wall(), request_id=call.request_id, team=CANARY_TEAM, app=CANARY_APP, key_id="-",
            route=CANARY_ROUTE, provider=d.provider, model=d.model, input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens, cached_input_tokens=usage.cached_input_tokens, cost_usd=cost,
            price_source=price_source, usage_source=usage.source, outcome=result.result, attempts=1,
            fallback=False, hedged=False, stream=False, latency_s=result.latency_s, ttft_s=None, kind="canary"))
        self.metrics.ledger_records("canary").inc()

    async def run_suite(self, d: Deployment) -> Run:
        """Every item once against `d`, concurrently; nothing is judged or reported."""
        started = self.clock()
        done = await asyncio.gather(*(self.run_item(d, item) for item in self.items))
        return Run(d, tuple(r for r, _ in done), sum((c for _, c in done), Decimal(0)), self.clock() - started)

    async def run_once(self, d: Deployment) -> Quality:
        """One run, judged: metrics, the deployment's quality, and the board's state."""
        run = await self.run_suite(d)
        for r in run.results:
            self.metrics.canary_runs(d.provider, d.model, r.result).inc()
        if run.pass_ratio is not None:
            self.metrics.canary_pass_ratio(d.provider, d.model).set(run.pass_ratio)
        q = after_run(self.quality[d.key], run.results, self.cfg)
        self.quality[d.key] = q
        if self.board is not None:
            self.board.record_quality(d.key, q.signal, q.describe())
        async with self._ran:
            self._ran.notify_all()
        return q

    async def runs_done(self, key: str, n: int) -> Quality:
        """Waits until deployment `key` has completed `n` runs in all; its quality then."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.quality[key].runs >= n)
        return self.quality[key]

    def start(self) -> None:
        self._running = True
        self.watch(self.deployments)

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, key: str) -> None:
        # The first run comes soon, at a random point within the jitter, so deployments do not run together.
        await self.sleep(self.rng.uniform(0, self.cfg.interval_s * self.cfg.jitter * 2))
        while True:
            try:
                await self.run_once(self.current[key])   # the deployment as the running policy has it
            except Exception:  # a canary must never take the gateway down
                log.exception("canary run against %s failed", key)
            await self.sleep(next_delay(self.cfg, self.rng))

    def report(self, key: str) -> dict[str, Any] | None:
        """What `/admin/deployments` shows of a deployment's canaries: ratios and the last failing items."""
        q = self.quality.get(key)
        if q is None:
            return None
        last = pass_ratio(q.last)
        return {
            "signal": q.signal.value, "runs": q.runs,
            "last_pass_ratio": None if last is None else round(last, 4),
            "recent_pass_ratio": None if q.recent_ratio is None else round(q.recent_ratio, 4),
            "baseline_pass_ratio": None if q.baseline is None else round(q.baseline, 4),
            "failing": [{"item": r.item, "check": r.check, "result": r.result, "got": r.got}
                        for r in q.last if not r.passed],
        }
