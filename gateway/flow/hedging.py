"""Hedging: when a deployment is slow to its first token, a second one is started beside it; the first
to answer wins and the other is cancelled, charged, and logged as the losing leg."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.core.deployment import Deployment
from gateway.flow.attempts import Attempts
from gateway.flow.loop_pauses import provider_seconds
from gateway.providers.base import AttemptError, Call, Reply
from gateway.routing.request_log import RequestLog
from gateway.routing.retry_budget import RetryBudget
from gateway.routing.table import RouteTable


@dataclass
class Leg:
    """How a deployment (or a hedged pair) ended: an answer, or the error that ended it."""

    deployment: Deployment
    reply: Reply | None
    error: AttemptError | None
    consumed: int = 1               # how many planned candidates it used up


class Hedging:
    """Races deployments over the attempts (each leg tried, retried and reported there)."""

    def __init__(self, attempts: Attempts) -> None:
        self.attempts = attempts

    def hedge_delay(self, route: RouteTable, d: Deployment, stream: bool) -> float | None:
        hedge = route.config.hedge
        if hedge is None:
            return None
        if hedge.after_s is not None:
            return max(hedge.after_s, hedge.min_after_s)
        samples = self.attempts.ttfts.get((d.key, stream))
        if samples is None or len(samples) < 10:
            return None  # no percentile to speak of yet
        assert hedge.after_percentile is not None
        return max(samples.percentile(hedge.after_percentile) or 0.0, hedge.min_after_s)

    async def race(self, log: RequestLog, first: Deployment, second: Deployment | None, call: Call,
                   budget: RetryBudget, hedge_budget: RetryBudget, role: str) -> Leg:
        """Try `first`; if it has no first token after the hedge delay, start `second` too. The first
        to answer wins, the other is cancelled and logged as a losing leg."""
        delay = self.hedge_delay(log.route, first, call.stream) if second is not None else None
        if delay is None:  # no hedge: no task either
            try:
                return Leg(first, await self.attempts.with_retries(log, first, call, budget, role), None)
            except AttemptError as err:
                return Leg(first, None, err)
        one = asyncio.ensure_future(self.attempts.with_retries(log, first, call, budget, role))
        legs: dict[asyncio.Future[Reply], Deployment] = {one: first}
        try:
            return await self._hedged(log, one, second, call, budget, hedge_budget, delay, legs)
        except asyncio.CancelledError:
            # The client went away (or the request was cancelled): no leg may run on without it.
            for task in legs:
                await self._abandon(task)
            raise

    async def _hedged(self, log: RequestLog, one: asyncio.Future[Reply], second: Deployment | None, call: Call,
                      budget: RetryBudget, hedge_budget: RetryBudget, delay: float,
                      legs: dict[asyncio.Future[Reply], Deployment]) -> Leg:
        assert second is not None  # a hedge delay exists only when there is a second candidate
        first = legs[one]
        # The delay is the first leg's own time to its first token: the gateway's pauses meanwhile
        # extend it, so an overloaded gateway does not double its upstream load with hedges.
        loop = asyncio.get_running_loop()
        began, paused = loop.time(), self.attempts.paused()
        bound = min(delay, max(0.0, log.remaining(self.attempts.clock())))
        while not one.done():
            left = bound - provider_seconds(loop.time() - began, self.attempts.paused() - paused)
            if left <= 0:
                break
            await asyncio.wait({one}, timeout=left)
        if one.done() or not hedge_budget.try_spend(self.attempts.clock()):
            try:
                return Leg(first, await one, None)
            except AttemptError as err:
                return Leg(first, None, err)
        log.hedged = True
        two = asyncio.ensure_future(self.attempts.with_retries(log, second, call, budget, "hedge"))
        legs[two] = second
        last_error: AttemptError | None = None
        pending = set(legs)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = task.exception()
                if failure is None:
                    for loser in pending:
                        await self._cancel_leg(log, loser, legs[loser])
                    self.attempts.metrics.hedges(log.route.name, "hedge_won" if task is two else "primary_won").inc()
                    return Leg(legs[task], task.result(), None, consumed=2)
                if not isinstance(failure, AttemptError):
                    raise failure
                last_error = failure
        self.attempts.metrics.hedges(log.route.name, "both_failed").inc()
        return Leg(second, None, last_error, consumed=2)

    @staticmethod
    async def _abandon(task: asyncio.Future[Reply]) -> None:
        """Cancels a leg, and lets go of its reply should it have answered in the same instant."""
        task.cancel()
        try:
            reply = await task
        except (asyncio.CancelledError, AttemptError):
            return
        await reply.release()

    async def _cancel_leg(self, log: RequestLog, task: asyncio.Future[Reply], d: Deployment) -> None:
        await self._abandon(task)
        for record in reversed(log.attempts):
            if record.deployment is d:
                record.lost_hedge = True
                record.outcome = "hedge_lost" if record.outcome == "ok" else record.outcome
                record.ended = record.ended or self.attempts.clock()
                break
