"""The attempt loop: one place where a request meets its candidates, in the planner's order.

For each candidate: retries on the same deployment where a blip explains the failure, a hedge when
the route has one, failover to the next candidate otherwise; then the answer is delivered.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway.core.answer import whole
from gateway.core.errors import JSON, ApiError, error_body
from gateway.flow.attempts import Attempts, DefectiveAnswer
from gateway.flow.hedging import Hedging
from gateway.flow.holding import HELD, HoldLine
from gateway.routing.request_log import RequestLog
from gateway.metering.usage import ask_for_usage
from gateway.core.metrics import Metrics
from gateway.providers.answer_check import is_openai_error, without_secret
from gateway.providers.base import AttemptError, Failure, Reply
from gateway.providers.credentials import why_not as credential_why_not
from gateway.flow.relay import Relay, answer_headers
from gateway.routing.breaker import Health, State, back_in
from gateway.routing.classify import Verdict
from gateway.routing.failovers import Failover, FailoverRing
from gateway.routing.health import HealthBoard
from gateway.routing.planner import plan
from gateway.routing.pools import PRIORITIES, PoolBoard, Sends
from gateway.routing.retry_budget import RetryBudget
from gateway.core.deployment import Deployment
from gateway.routing.table import PoolSpan, RouteTable

TIMEOUT_HEADER = "x-recloser-timeout-s"


def request_timeout(route: RouteTable, header: str | None) -> float:
    """The route's timeout_s, or less when the client asks for less."""
    if header:
        try:
            asked = float(header)
        except ValueError:
            asked = 0.0
        if asked > 0:
            return min(asked, route.config.timeout_s)
    return route.config.timeout_s


def why_skipped(h: Health, now: float) -> str:
    if h.state is State.EJECTED:
        wait = back_in(h, now) or 0.0
        return f"ejected ({h.reason}, back in {max(1, round(wait))} s)"
    return f"{h.state.value}, no probe slot free"


@dataclass(slots=True)
class Delivery:
    """An answer to relay, and the targets the relay may still fail over to. The attempts return it
    rather than relay it themselves: the relay lasts as long as the stream, and every call level
    above it is held, suspended, by each open stream for that long."""

    deployment: Deployment
    reply: Reply
    fallbacks: Sequence[Deployment]
    budget: RetryBudget


class Dispatcher:
    def __init__(self, attempts: Attempts, board: HealthBoard, metrics: Metrics, clock: Callable[[], float],
                 rng: random.Random, pools: PoolBoard | None = None,
                 key_priorities: Mapping[str, str] | None = None, failovers: FailoverRing | None = None,
                 holds: HoldLine | None = None, key_holds: Mapping[str, float] | None = None) -> None:
        self.pools = pools                   # live load of pool endpoints (routes with pools only)
        self.key_priorities = key_priorities or {}
        self.failovers = failovers if failovers is not None else FailoverRing()   # the last ones, for the console
        self.holds = holds                   # requests held through an outage (routes or keys with hold_s)
        self.key_holds = key_holds or {}
        self.attempts = attempts
        self.hedging = Hedging(attempts)
        self.board = board
        self.metrics = metrics
        self.clock = clock
        self.rng = rng
        self.relay = Relay(attempts, metrics)
        self.budgets: dict[str, RetryBudget] = {}
        self.hedge_budgets: dict[str, RetryBudget] = {}
        self.sharing = False                 # retry budgets are counted with other replicas'
        self.requests_seen = 0

    def _budgets(self, route: RouteTable) -> tuple[RetryBudget, RetryBudget]:
        budget = self.budgets.get(route.name)
        if budget is None:
            retry, hedge = route.config.retry, route.config.hedge
            budget = self.budgets[route.name] = RetryBudget(retry.budget_percent, retry.budget_min_per_s)
            self.hedge_budgets[route.name] = RetryBudget(hedge.max_percent if hedge else 0.0, 0.0)
            if self.sharing:
                budget.share()
                self.hedge_budgets[route.name].share()
        return budget, self.hedge_budgets[route.name]

    def _explore(self, route: RouteTable) -> bool:
        self.requests_seen += 1
        percent = route.breaker.explore_percent
        return percent > 0 and self.requests_seen % max(1, round(100 / percent)) == 0

    async def dispatch(self, request: web.Request, log: RequestLog) -> web.StreamResponse:
        try:
            outcome = await self._dispatch(request, log)
            return outcome if not isinstance(outcome, Delivery) else await self._deliver(request, log, outcome)
        except ApiError as err:
            hold_s = self.key_holds.get(log.caller.key_id, log.route.config.hold_s)
            if self.holds is None or hold_s <= 0 or err.code != HELD:
                raise
            priority = self.key_priorities.get(log.caller.key_id) or log.route.config.priority
            return await self.holds.through(request, log, err, hold_s, priority,
                                            lambda opened: self._dispatched(request, log, opened))

    def _deliver(self, request: web.Request, log: RequestLog, d: Delivery,
                 opened: web.StreamResponse | None = None) -> Awaitable[web.StreamResponse]:
        return self.relay.deliver(request, log, d.deployment, d.reply, d.fallbacks, d.budget, opened)

    async def _dispatched(self, request: web.Request, log: RequestLog,
                          opened: web.StreamResponse | None) -> web.StreamResponse:
        """A pass over the route's candidates and its answer relayed (a held stream's, headers sent)."""
        outcome = await self._dispatch(request, log, opened)
        return outcome if not isinstance(outcome, Delivery) else await self._deliver(request, log, outcome, opened)

    async def _dispatch(self, request: web.Request, log: RequestLog,
                        opened: web.StreamResponse | None = None) -> web.StreamResponse | Delivery:
        """One pass over the route's candidates (`opened`: a held stream's response, headers sent): the
        answer to relay, or the response to send as it is."""
        route, call = log.route, log.call
        log.usage_injected = ask_for_usage(call)
        now = self.clock()
        budget, hedge_budget = self._budgets(route)
        budget.on_request(now)
        hedge_budget.on_request(now)
        healths = self.board.snapshot(route)
        p = plan(route.priorities, route.weights, healths, self.board.probe_free(route), route.breaker,
                 call.stream, self.rng, self._explore(route), now, route.targets)
        log.panic = p.panic
        log.skipped = [(route.deployments[i], why_skipped(healths[i], now), back_in(healths[i], now))
                       for i in p.skipped]
        if not route.pools or self.pools is None:
            return await self._attempt(self._usable([route.deployments[i] for i in p.order], log, now),
                                       log, budget, hedge_budget)
        pools = self.pools
        ttfts = [h.speed_of(call.stream).baseline if h.speed_of(call.stream).samples else None for h in healths]
        arranged = pools.arrange(route, p.order, call.body, now, ttfts, call.stream)
        for span, why in zip(arranged.spilled, arranged.reasons, strict=True):
            self.metrics.spilled(route.name, span.provider, why).inc()
        marked = pools.sends(route, arranged.chunks)
        try:
            outcome = await self._attempt(self._usable([route.deployments[i] for i in arranged.order], log, now),
                                          log, budget, hedge_budget, marked)
            # A pool endpoint counts the request in flight until its answer is relayed to the end.
            return outcome if not isinstance(outcome, Delivery) else await self._deliver(request, log, outcome, opened)
        finally:
            marked.close(log.attempts, call.stream)

    async def _admit_to_pool(self, log: RequestLog, span: PoolSpan, pools: PoolBoard) -> bool:
        """The pool is the last target this request has (nothing else stands, or all else failed). It goes
        at once while the pool has room and nobody of its priority or a better one waits; otherwise
        sheddable requests are refused at once, and the rest wait their turn by priority, while the
        line is shorter than `queue_max` and the deadline holds. True when it waited."""
        route = log.route
        priority = self.key_priorities.get(log.caller.key_id) or route.config.priority
        rank = PRIORITIES[priority]
        room = pools.room(span)
        if not pools.full(span, self.clock()) and not room.ahead(rank):
            return False
        if priority == "sheddable" or len(room) >= span.load.queue_max:
            raise self._shed(log, span, priority, "was not queued behind it")
        ticket: int | None = None
        while True:
            remaining = log.remaining(self.clock())
            if remaining <= 0:
                break
            try:
                ticket = await asyncio.wait_for(room.wait(rank, ticket), remaining)
            except TimeoutError:
                break
            if not pools.full(span, self.clock()):
                # Once this request is counted as sent (before the loop runs again), the next in line
                # looks at the pool too: room for several is not left waiting for as many exits.
                asyncio.get_running_loop().call_soon(room.wake)
                return True
        raise self._shed(log, span, priority, "waited for it until the request's deadline")

    def _shed(self, log: RequestLog, span: PoolSpan, priority: str, what: str) -> ApiError:
        route = log.route
        self.metrics.pool_shed(route.name, span.provider, priority).inc()
        retry = max(1, math.ceil(span.load.scrape_s))
        return ApiError(503, f"The pool '{span.provider}' of route '{route.name}' is full and no other target of the "
                             f"route is available; this {priority} request {what}. Retry in {retry} s.",
                        "server_error", code="pool_full",
                        headers={"Retry-After": str(retry), "x-recloser-attempts": str(len(log.attempts))})

    async def _attempt(self, order: list[Deployment], log: RequestLog, budget: RetryBudget,
                       hedge_budget: RetryBudget, marked: Sends | None = None) -> web.StreamResponse | Delivery:
        """Each candidate in turn, until one answers (the answer to relay) or none can (the response
        to send as it is); `marked` collects the pool endpoints sent to, for their in-flight count."""
        route, call = log.route, log.call
        caller_error: AttemptError | None = None
        defective: tuple[Deployment, Reply] | None = None   # an answer of no use, relayed only if nothing better comes
        admitted: set[str] = set()          # pools this request has passed the waiting room of
        pos = 0
        while pos < len(order):
            d = order[pos]
            if log.remaining(self.clock()) <= 0:
                break
            if marked is not None and self.pools is not None and d.endpoint and d.provider not in admitted:
                admitted.add(d.provider)
                span = next((s for s in route.pools if s.provider == d.provider), None)
                if span is not None and all(x.provider == d.provider for x in order[pos:]):
                    # One that waited, or comes back after another target failed (a spill by expected
                    # wait, a frontier slow to refuse), meets the pool as it is now: its first pick is past.
                    if await self._admit_to_pool(log, span, self.pools) or pos > 0:
                        order = order[:pos] + self.pools.repick(span, order[pos:], call.body,
                                                                self.clock())
                        d = order[pos]
            hedge_with = order[pos + 1] if route.config.hedge is not None and pos + 1 < len(order) else None
            if marked is not None and self.pools is not None:
                for target in (d, hedge_with):
                    if target is not None and target.endpoint:
                        marked.mark(target)
            leg = await self.hedging.race(log, d, hedge_with, call, budget, hedge_budget,
                                           "primary" if pos == 0 else "failover")
            pos += leg.consumed
            if leg.reply is not None:
                return Delivery(leg.deployment, leg.reply, order[pos:], budget)
            assert leg.error is not None
            if isinstance(leg.error, DefectiveAnswer):
                defective = defective or (leg.deployment, leg.error.reply)
                if pos >= len(order) or not self._may_rescue(route, budget):
                    break
            c = self.attempts.classify(route, leg.error)
            if c.reason == "refused":
                log.events.append("refused")
            if c.verdict is Verdict.CALLER_FAULT:
                return self._as_is(log, leg.deployment, leg.error)
            if c.reason in ("context_window", "refused"):
                caller_error = leg.error
                order = order[:pos] + self._fit(order[pos:], leg.deployment, c.reason)
            if pos < len(order):
                self.metrics.failovers(route.name, leg.deployment.provider, order[pos].provider, c.reason).inc()
                self.failovers.add(Failover(self.clock(), route.name, leg.deployment.key, order[pos].key, c.reason))
        if defective is not None:   # no other target did better: the defective answer is still an answer
            return Delivery(defective[0], defective[1], (), budget)
        if caller_error is not None:  # no target could take it: the upstream's own words are the answer
            return self._as_is(log, log.attempts[-1].deployment, caller_error)
        if log.attempts and not log.skipped and all(r.error is not None and r.error.failure is Failure.CREDENTIAL
                                                    for r in log.attempts):
            # Only the caller's own credential could be tried, and it was refused: its provider's own
            # words (an expired token, a spent subscription) are what the caller needs to hear.
            last = log.attempts[-1]
            assert last.error is not None
            return self._as_is(log, last.deployment, last.error)
        raise exhausted(log)

    def _usable(self, order: list[Deployment], log: RequestLog, now: float) -> list[Deployment]:
        """Client-credential targets this caller cannot use now (no credential, one of another API, or
        one cooling down after a refusal there) are skipped without a round trip; no breaker hears of it."""
        if not any(d.client_credentials for d in order):
            return order
        call, cooldowns = log.call, self.attempts.cooldowns
        usable: list[Deployment] = []
        for d in order:
            if d.client_credentials:
                why = credential_why_not(d, call)
                wait = None if why is not None or call.credential is None else \
                    cooldowns.back_in(d.provider, call.credential.fingerprint, now)
                if wait is not None:
                    why = f"refused the caller's credential (tried again in {max(1, math.ceil(wait))} s)"
                if why is not None:
                    log.skipped.append((d, why, wait))
                    self.metrics.credential_skips(log.route.name, d.provider).inc()
                    continue
            usable.append(d)
        return usable

    def _may_rescue(self, route: RouteTable, budget: RetryBudget) -> bool:
        """Asking another target for a defective answer's request again is a retry: within the budget."""
        if budget.try_spend(self.clock()):
            return True
        self.metrics.retries_denied(route.name).inc()
        return False

    def _fit(self, rest: list[Deployment], failed: Deployment, reason: str) -> list[Deployment]:
        """After a context-window refusal, only targets with a larger window are worth trying."""
        if reason == "context_window":
            window = failed.facts.context_window if failed.facts else None
            if window is None:
                return rest
            return [d for d in rest if d.facts is None or d.facts.context_window is None
                    or d.facts.context_window > window]
        return rest

    def _as_is(self, log: RequestLog, d: Deployment, err: AttemptError) -> web.Response:
        if self.attempts.classify(log.route, err).reason == "refused":
            log.outcome, log.answered_by = "refused", None
            log.refused_by = d
        status = err.status or 400
        body, content_type = without_secret(err.body or b"", d.api_key), err.content_type
        if d.client_credentials and log.call.credential is not None:
            body = without_secret(body, log.call.credential.secret)
        if not is_openai_error(body):  # an HTML page or plain words: the client still gets its error shape
            body, content_type = error_body(f"The upstream {d.provider}/{d.model} refused the request with HTTP "
                                            f"{status} and no error of the OpenAI shape.", "invalid_request_error",
                                            code="upstream_refused"), JSON
        return whole(body, answer_headers(log, d), status=status, content_type=content_type)


def exhausted(log: RequestLog) -> ApiError:
    """The error for a request that no candidate could answer, naming each target and why."""
    route = log.route
    last: dict[str, tuple[Deployment, AttemptError]] = {}
    for record in log.attempts:
        if record.error is not None:
            last[record.deployment.key] = (record.deployment, record.error)
    failures = [err for _, err in last.values()]
    if failures and all(e.failure is Failure.UNFIT for e in failures) and not log.skipped:
        return unfit_everywhere(route.name, list(last.values()))
    if failures and all(e.failure in (Failure.TIMEOUT, Failure.IDLE) for e in failures) and not log.skipped:
        status = 504
    elif failures and all(e.failure is Failure.STATUS and (e.status or 0) >= 500 for e in failures) \
            and not log.skipped:
        status = 502
    else:
        status = 503
    parts = [f"{d.key} ({err.describe()})" for d, err in last.values()]
    parts += [f"{d.key} {why}" for d, why, _ in log.skipped]
    n = len(route.deployments)
    noun = "the target" if n == 1 else f"all {n} targets"
    verb = "failed" if not log.skipped else "are unavailable"
    if not parts:
        message = f"No target of route '{route.name}' could be tried before the request's deadline."
    else:
        message = f"{noun.capitalize()} of route '{route.name}' {verb}: {', '.join(parts)}."
    waits = [e.retry_after_s for e in failures if e.retry_after_s is not None]
    waits += [wait for _, _, wait in log.skipped if wait is not None]
    headers = {"x-should-retry": "false", "x-recloser-attempts": str(len(log.attempts))}
    if waits:
        headers["Retry-After"] = str(max(1, math.ceil(min(waits))))
    return ApiError(status, message, "server_error", code="upstream_unavailable", headers=headers)



def unfit_everywhere(route: str, unfit: list[tuple[Deployment, AttemptError]]) -> ApiError:
    """No target of the route can take the request as it is: the caller's to change, so a 400 that
    names each target and why."""
    parts = "; ".join(f"{d.provider}/{d.model}: {err.detail}" for d, err in unfit)
    param = next((err.param for _, err in unfit if err.param), None)
    return ApiError(400, f"No target of route '{route}' can take this request: {parts}.", "invalid_request_error",
                    code="unsupported_on_target", param=param, headers={"x-should-retry": "false"})
