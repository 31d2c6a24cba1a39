"""Replicas that agree: this replica's outcomes, ejections, recoveries, spend, tokens and retries go
out in one batch, and what all replicas know comes back as a snapshot, every `state.sync_ms` (sooner
after an ejection). Nothing here runs on a request's path: requests read the board and the book as they stand.

When the store is down an exchange fails at once (no waiting); spend not yet told is kept for the
next one, and the gateway serves on what it knows locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from gateway.flow.dispatch import Dispatcher
from gateway.limiting.limiter import WINDOW_S, Limiter
from gateway.metering.budgets import period_end
from gateway.metering.cost import to_nanos
from gateway.metering.meter import Meter
from gateway.core.metrics import Metrics
from gateway.policy.schema import Breaker
from gateway.routing.breaker import Health, State, current
from gateway.routing.health import HealthBoard
from gateway.routing.retry_budget import RetryBudget
from gateway.routing.shared_health import Ejection, SharedView, ejection_of, merge
from gateway.routing.table import Routing
from gateway.state.base import Ask, Outbox, SharedState, Snapshot, StateUnavailable, Total

log = logging.getLogger("recloser.sharing")
NANO = Decimal(10) ** 9
RECOVERY_NOTE_S = 300.0          # how long a recovery stays news for replicas that missed it
PROBE_CLAIM_MIN_S = 2.0


def replica_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Replication:
    def __init__(self, state: SharedState, board: HealthBoard, routing: Routing, dispatcher: Dispatcher, meter: Meter,
                 limiter: Limiter, metrics: Metrics, period_s: float, clock: Callable[[], float],
                 wall: Callable[[], float], replica: str | None = None) -> None:
        self.state = state
        self.board = board
        self.limiter = limiter
        self.metrics = metrics
        self.period_s = period_s
        self.clock = clock
        self.wall = wall
        self.replica = replica or replica_id()
        self.breakers: dict[str, Breaker] = {}
        self.horizon_s = WINDOW_S + 1
        self._task: asyncio.Task[None] | None = None
        self.adopt(routing, dispatcher, meter)
        self.probe_claim_s = max(PROBE_CLAIM_MIN_S, 4 * period_s)
        self._wake = asyncio.Event()

    def adopt(self, routing: Routing, dispatcher: Dispatcher, meter: Meter) -> None:
        """The routes, attempt loop and meter of a (re)loaded policy; what was learnt and not yet told
        stays, and a route's retry budget hears again what every replica counted."""
        self.meter = meter
        self.dispatcher = dispatcher
        if self._task is not None:
            self._share_retry_budgets()
        # A deployment in several routes is judged by the first route's breaker.
        self.breakers = {}
        for route in routing.routes.values():
            for d in route.deployments:
                self.breakers.setdefault(d.key, route.breaker)
        self.horizon_s = max([WINDOW_S + 1, *(math.ceil(b.window_s) + 1 for b in self.breakers.values())])

    def start(self) -> None:
        self.board.share(self._wake.set)
        self.dispatcher.attempts.cooldowns.sharing = True
        self.meter.budgets.sharing = True
        self._share_retry_budgets()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _share_retry_budgets(self) -> None:
        self.dispatcher.sharing = True
        for budget in [*self.dispatcher.budgets.values(), *self.dispatcher.hedge_budgets.values()]:
            budget.share()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(StateUnavailable):
            await self.sync()   # what this replica learnt last is not lost to the others

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.period_s)
            self._wake.clear()
            try:
                await self.sync()
            except StateUnavailable:
                self.metrics.state_syncs("unavailable").inc()
            except Exception:  # sharing must never take the gateway down
                log.exception("exchange with the shared state store failed")
            else:
                self.metrics.state_syncs("ok").inc()

    async def sync(self) -> None:
        """One exchange: tell, then hear. Raises StateUnavailable (after keeping what was not told)."""
        now_m, now_w = self.clock(), self.wall()
        offset, second = now_w - now_m, math.floor(now_w)
        retry_budgets = self._retry_budgets()
        out = Outbox(horizon_s=self.horizon_s)
        news = self._tell_health(out, second, offset, now_m)
        for counter, tokens in self.limiter.take_pending().items():
            out.count(counter, second, tokens)
        for counter, budget in retry_budgets:
            for kind, n in zip(("requests", "extras"), budget.take_unsent()):
                if n:
                    out.count(f"{counter}:{kind}", second, n)
        book = self.meter.budgets
        now_utc = datetime.fromtimestamp(now_w, UTC)
        unshared = book.take_unshared()
        periods = {f"budget:{b.name}:{start:%Y%m%d}": (b, start) for b, start in book.current_periods(now_utc)}
        for name, (b, start) in periods.items():
            if (b.name, start) in unshared:
                delta, before = unshared[(b.name, start)]
                out.totals[name] = Total(to_nanos(delta), to_nanos(before), period_end(b.period, start).timestamp())
        cooldowns = self.dispatcher.attempts.cooldowns
        cooled = cooldowns.take_fresh()
        for (provider, fingerprint), until in cooled.items():
            out.notes[f"cooled:{provider}:{fingerprint}"] = (f"{until + offset:.3f}", max(0.001, until - now_m))
        ask = self._ask(list(periods), retry_budgets)
        asked = cooldowns.asked(now_m)
        ask.notes += [f"cooled:{provider}:{fingerprint}" for provider, fingerprint in asked]
        try:
            snap = await self.state.exchange(out, ask, now_w)
        except StateUnavailable:
            cooldowns.untold(cooled)
            book.untold({key: delta for key, (delta, _) in unshared.items()})
            for key, h in news.items():
                self.board.news.setdefault(key, h)
            raise
        self._hear_health(snap, offset)
        for provider, fingerprint in asked:   # a credential another replica saw refused: cooled here too
            heard = _float(snap.notes.get(f"cooled:{provider}:{fingerprint}"))
            if heard is not None:
                cooldowns.cool(provider, fingerprint, heard - offset, now_m, told=True)
        for counter, budget in retry_budgets:
            budget.hear(*(sum(snap.counts.get(f"{counter}:{kind}", {}).values()) for kind in ("requests", "extras")))
        book.heard({(periods[name][0].name, periods[name][1]): Decimal(n) / NANO
                    for name, n in snap.totals.items() if name in periods}, now_utc)
        if snap.totals:
            self.meter.show_budgets(now_utc)
        await self._claim_probes(now_w)

    def _retry_budgets(self) -> list[tuple[str, RetryBudget]]:
        """Every route's retry and hedge budget, under the name replicas count it by."""
        return [(f"rb:{name}:retry", b) for name, b in self.dispatcher.budgets.items()] + \
            [(f"rb:{name}:hedge", b) for name, b in self.dispatcher.hedge_budgets.items()]

    def _tell_health(self, out: Outbox, second: int, offset: float, now: float) -> dict[str, Health]:
        """This replica's outcomes since the last exchange, and its ejections and recoveries; the news
        is returned so that an exchange that fails can keep it for the next."""
        for key, (ok, failed) in self.board.take_tally().items():
            if ok:
                out.count(f"out:{key}:ok", second, ok)
            if failed:
                out.count(f"out:{key}:failed", second, failed)
        news = self.board.take_news()
        for key, h in news.items():
            if h.state is State.EJECTED:
                out.notes[f"ejected:{key}"] = (ejection_of(h).encode(offset), max(0.001, h.ejected_until - now))
            else:
                out.notes[f"recovered:{key}"] = (f"{h.since + offset:.3f}", RECOVERY_NOTE_S)
        return news

    def _ask(self, totals: list[str], retry_budgets: list[tuple[str, RetryBudget]]) -> Ask:
        """What this replica wants to hear: every replica's outcomes, notes, retry counts and spend."""
        ask = Ask(totals=totals)
        for key, cfg in self.breakers.items():
            for outcome in ("ok", "failed"):
                ask.counts[f"out:{key}:{outcome}"] = math.ceil(cfg.window_s)
            ask.notes += [f"ejected:{key}", f"recovered:{key}"]
        for counter, budget in retry_budgets:
            for kind in ("requests", "extras"):
                ask.counts[f"{counter}:{kind}"] = math.ceil(budget.window_s)
        return ask

    def _hear_health(self, snap: Snapshot, offset: float) -> None:
        now = self.clock()
        for key, cfg in self.breakers.items():
            ok = snap.counts.get(f"out:{key}:ok", {})
            failed = snap.counts.get(f"out:{key}:failed", {})
            seconds = [(s - offset, ok.get(s, 0), failed.get(s, 0)) for s in sorted(set(ok) | set(failed))]
            note = snap.notes.get(f"ejected:{key}")
            recovered = _float(snap.notes.get(f"recovered:{key}"))
            view = SharedView(ejection=Ejection.decode(note, offset) if note else None,
                              recovered_at=recovered - offset if recovered is not None else None, seconds=seconds)
            before = current(self.board.healths[key], now, cfg)
            self.board.adopt(key, merge(before, view, now, cfg))

    async def _claim_probes(self, now_w: float) -> None:
        """An ejected or recovering deployment is probed by one replica at a time, not by each of them:
        the one holding its claim, renewed at every exchange while it needs probing."""
        claims = self.board.probe_claims
        if claims is None:
            return
        now = self.clock()
        for key, cfg in self.breakers.items():
            state = current(self.board.healths[key], now, cfg).state
            if not (state is State.PROBING or (state is State.EJECTED and cfg.active_probes)):
                claims.discard(key)
                continue
            try:
                held = await self.state.claim(f"probe:{key}", self.replica, self.probe_claim_s, now_w)
            except StateUnavailable:
                held = True   # alone, this replica decides for itself
            if held:
                claims.add(key)
            else:
                claims.discard(key)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
