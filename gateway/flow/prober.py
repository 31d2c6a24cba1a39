"""Probes of the gateway's own: a one-token request to each ejected deployment on a short jittered
interval (`breaker.active_probes`, `probe_interval_s`), so recovery is noticed however long the
ejection; and, with `breaker.synthetic_probe_s` > 0, to deployments due for probing that real
traffic would not reach. A probe's answer is charged like any call, marked `probe` in the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable

from gateway.flow.attempts import Attempts
from gateway.routing.request_log import AttemptRecord, RequestLog
from gateway.core.auth import Caller
from gateway.policy.schema import Breaker
from gateway.providers.base import AttemptError, Call
from gateway.routing.breaker import Outcome, State, current
from gateway.routing.health import HealthBoard
from gateway.routing.recovery import next_probe_at
from gateway.core.deployment import Deployment
from gateway.routing.table import RouteTable, Routing

log = logging.getLogger("recloser.prober")

PROBE_BODY = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
PROBE_CALLER = Caller(key_id="probe", team="recloser", app="probe")


class Prober:
    def __init__(self, routing: Routing, board: HealthBoard, attempts: Attempts, cfg: Breaker,
                 clock: Callable[[], float], rng: random.Random | None = None,
                 on_answer: Callable[[RequestLog], None] | None = None) -> None:
        self.routing = routing
        self.board = board
        self.attempts = attempts
        self.cfg = cfg
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_answer = on_answer
        self.due: dict[str, float] = {}          # deployment key → when to probe it next
        self.in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def wanted(routing: Routing, cfg: Breaker) -> bool:
        """Does this policy ask for probes at all?"""
        return cfg.synthetic_probe_s > 0 or any(r.breaker.active_probes for r in routing.routes.values())

    def tick_s(self) -> float:
        """How often to look for a probe that is due: a fraction of the shortest interval."""
        intervals = [r.breaker.probe_interval_s for r in self.routing.routes.values() if r.breaker.active_probes]
        if self.cfg.synthetic_probe_s > 0:
            intervals.append(self.cfg.synthetic_probe_s)
        return max(0.02, min(intervals, default=1.0) / 4)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        for task in [self._task, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def due_now(self) -> list[tuple[RouteTable, Deployment]]:
        """The deployments to probe now; schedules the next probe of each (jittered)."""
        now = self.clock()
        out: list[tuple[RouteTable, Deployment]] = []
        seen: set[str] = set()
        for route in self.routing.routes.values():
            cfg = route.breaker
            for d in route.deployments:
                if d.key in seen or d.key in self.in_flight or not self.board.may_probe(d.key):
                    continue  # sharing state, one replica probes a deployment at a time
                if d.client_credentials:
                    # The gateway holds no credential to probe it with: it comes back when its ejection
                    # runs out, through callers' own requests in its half-open probe slots.
                    continue
                seen.add(d.key)
                h = current(self.board.healths[d.key], now, cfg)
                if h.state is State.EJECTED and cfg.active_probes:
                    due = self.due.get(d.key)
                    if due is None:  # the first probe one interval after the ejection began
                        self.due[d.key] = next_probe_at(h, h.since, cfg, self.rng.random())
                    elif now >= due:
                        self.due[d.key] = next_probe_at(h, now, cfg, self.rng.random())
                        out.append((route, d))
                elif h.state is State.PROBING and self.cfg.synthetic_probe_s > 0 and not self.board.probes[d.key]:
                    if now >= self.due.get(d.key, 0.0):
                        self.due[d.key] = now + self.cfg.synthetic_probe_s
                        out.append((route, d))
                else:
                    self.due.pop(d.key, None)
        return out

    async def probe_once(self) -> int:
        """Probe every deployment that is due, together; returns how many were probed."""
        due = self.due_now()
        await asyncio.gather(*(self.probe(route, d) for route, d in due))
        return len(due)

    async def probe(self, route: RouteTable, d: Deployment) -> bool:
        """One probe of `d`; its outcome goes to the board, its answer to `on_answer`. True if it answered."""
        started, paused = self.clock(), self.attempts.paused()
        bound = d.timeouts.first_token_s
        call = Call("chat", {"model": route.name, **PROBE_BODY}, False, f"probe-{os.urandom(6).hex()}")
        probe_log = RequestLog(route, call, PROBE_CALLER, started, started + bound, outcome="probe", events=["probe"])
        record = AttemptRecord(d, started, role="probe")
        probe_log.attempts.append(record)
        slot = self.board.healths[d.key].state is State.PROBING
        self.in_flight.add(d.key)
        if slot:
            self.board.take_probe(d)
        try:
            reply = await self.attempts.client_for(d).open(d, call, bound)
        except AttemptError as err:
            reason = self.attempts.classify(route, err).reason
            record.ended, record.error, record.outcome = self.clock(), err, reason
            self.board.record(d, Outcome(ok=False, at=record.ended, reason=reason, eject_for_s=err.retry_after_s
                                         if reason == "rate_limited" else None), route.breaker, probe=True)
            self.attempts.metrics.probes(d.provider, d.model, reason).inc()
            return False
        finally:
            self.in_flight.discard(d.key)
            if slot:
                self.board.release_probe(d)
        record.ended = self.clock()
        record.ttft_s, record.paused_s = record.ended - started, self.attempts.paused() - paused
        self.board.record(d, Outcome(ok=True, at=record.ended, ttft_s=record.provider_ttft_s), route.breaker,
                          probe=True)
        self.attempts.metrics.probes(d.provider, d.model, "ok").inc()
        probe_log.answered_by, probe_log.body = d, reply.body
        if self.on_answer is not None:
            self.on_answer(probe_log)
        return True

    async def _guarded(self, route: RouteTable, d: Deployment) -> bool:
        try:
            return await self.probe(route, d)
        except Exception:  # a probe must never take the prober down
            log.exception("probe of %s failed unexpectedly", d.key)
            return False

    async def _run(self) -> None:
        tick = self.tick_s()
        while True:
            await asyncio.sleep(tick)
            for route, d in self.due_now():  # each on its own: a hanging one must not hold the others
                task = asyncio.create_task(self._guarded(route, d))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
