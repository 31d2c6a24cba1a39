"""The meter: after each client request, what it used and cost, for whom, into Prometheus, the
spend ledger and the budgets.

Runs at the end of the request, after the last byte was written. Usage the upstream reported is
read at once; when it reported none (a cut stream, a lost hedge leg, a client gone), the tokens are
counted off the request path and the record follows a moment later, marked `usage_source: counted`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from gateway.routing.request_log import AttemptRecord, RequestLog
from gateway.core.auth import Caller
from gateway.metering.access_log import request_line
from gateway.metering.budgets import BudgetBook, Decision, period_end
from gateway.metering.cost import cost_usd, to_nanos
from gateway.metering.counting import TokenCounter
from gateway.metering.interrupted import (AttemptFailed, AttemptStarted, estimate_input_tokens,
                                          max_output_tokens)
from gateway.metering.ledger import LedgerWriter
from gateway.metering.prices import PriceBook
from gateway.metering.record import CallRecord, Usage
from gateway.metering.savings import frontier_price, savings_usd
from gateway.metering.spend_today import SpendToday
from gateway.metering.usage import usage_from_body, usage_from_stream
from gateway.core.metrics import Metrics
from gateway.core.deployment import Deployment
from gateway.providers.base import Call

ALLOW = Decision("allow", None, Decimal(0), Decimal(0), datetime.min.replace(tzinfo=UTC), None, "")
# OpenTelemetry's operation names: Responses and Messages requests are chats too.
OPERATION = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings", "responses": "chat",
             "messages": "chat"}
NONE = "(none)"


@dataclass(frozen=True, slots=True)
class Charge:
    """Tokens one deployment consumed for a request (None: no deployment answered)."""

    deployment: Deployment | None
    usage: Usage
    kind: str            # "request" or "attempt"
    outcome: str
    ttft_s: float | None = None


class Meter:
    def __init__(self, prices: PriceBook, budgets: BudgetBook, metrics: Metrics, ledger: LedgerWriter | None,
                 counter: TokenCounter | None = None, wall: Callable[[], float] = time.time) -> None:
        self.prices = prices
        self.budgets = budgets
        self.metrics = metrics
        self.ledger = ledger
        self.counter = counter or TokenCounter()
        self.wall = wall
        self._pending: set[asyncio.Task[None]] = set()
        self.today = SpendToday()       # each team's spend today, budget or not (the console's table)
        # Told the tokens each charge used (team, key id, tokens): rate limits count tpm from them.
        self.on_tokens: Callable[[str, str, int], None] | None = None
        # Told each request's record (its tokens and cost): the request's trace span carries them.
        self.on_request: Callable[[RequestLog, CallRecord], None] | None = None

    def successor(self, prices: PriceBook) -> Meter:
        """The meter of a reloaded policy: its own prices; the same budget book, ledger writer and token
        counter, and one set of pending records, so draining either waits for both."""
        after = Meter(prices, self.budgets, self.metrics, self.ledger, self.counter, self.wall)
        after._pending = self._pending
        after.today = self.today
        return after

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    def admit(self, caller: Caller) -> Decision:
        """What the caller's budgets say before any upstream is called."""
        if not self.budgets.budgets:
            return ALLOW
        decision = self.budgets.decide(caller.team, caller.key_id, self.now_utc())
        if decision.budget is not None and decision.action != "allow":
            self.metrics.budget_actions(decision.budget.name, decision.action).inc()
        return decision

    def seconds_until(self, moment: datetime) -> int:
        return max(1, math.ceil((moment - self.now_utc()).total_seconds()))

    def refused(self, route: str, caller: Caller | None, status: int, endpoint: str = "chat") -> None:
        """A request that ended before reaching any upstream (auth, validation, budget, overload)."""
        team, app = (caller.team, caller.app) if caller else (NONE, NONE)
        self.metrics.requests(route or NONE, team, app, str(status), endpoint).inc()

    def finish(self, log: RequestLog, status: int, ended: float) -> None:
        """Meters a request that reached the dispatcher; `ended` is on the same clock as `log.started`."""
        route, caller = log.route.name, log.caller
        self.metrics.requests(route, caller.team, caller.app, str(status), log.call.endpoint).inc()
        d = log.answered_by
        latency = ended - log.started
        if d is not None:
            self.metrics.duration(OPERATION[log.call.endpoint], d.model, d.provider, route).observe(latency)
            tier = log.route.degraded_tier(d) if status < 400 else None
            if tier is not None:
                self.metrics.degraded_answers(route, caller.team, str(tier)).inc()
        self._charge(log, status, latency)

    def attempt_started(self, log: RequestLog, attempt: AttemptRecord, call: Call) -> None:
        """Journals an upstream attempt about to be made, with the most it could cost: should the gateway
        die before the attempt ends, the next start charges it that (see interrupted.py)."""
        if self.ledger is None:
            return
        d, caller = attempt.deployment, log.caller
        body_bytes = call.size or _serialised_size(call.body)   # the client's as received: no second encoding
        usage = Usage(input_tokens=estimate_input_tokens(body_bytes),
                      output_tokens=max_output_tokens(call.endpoint, call.body,
                                                      self.prices.max_output_tokens(d.provider, d.model)))
        price = self.prices.price(d.provider, d.model)
        self.ledger.journal(AttemptStarted(
            ts=self.wall(), request_id=call.request_id, attempt=_index(log, attempt), team=caller.team,
            app=caller.app, key_id=caller.key_id, route=log.route.name, provider=d.provider, model=d.model,
            endpoint=call.endpoint, stream=call.stream, body_bytes=body_bytes, input_tokens=usage.input_tokens,
            max_output_tokens=usage.output_tokens, worst_cost_usd=cost_usd(price, usage), price_source=price.source,
            paid_by="client" if d.client_credentials else "gateway"))

    def attempt_failed(self, log: RequestLog, attempt: AttemptRecord) -> None:
        """Journals an attempt that ended without an answer: it costs nothing, killed gateway or not."""
        if self.ledger is not None:
            self.ledger.journal(AttemptFailed(self.wall(), log.call.request_id, _index(log, attempt), attempt.outcome))

    def probe(self, log: RequestLog) -> None:
        """A probe's answer: charged like any call (to the gateway's own caller), not a client request."""
        self._charge(log, 200, (log.attempts[-1].ended - log.started) if log.attempts else 0.0)

    def _charge(self, log: RequestLog, status: int, latency: float) -> None:
        charges, to_count = self._charges(log)
        for charge in charges:
            self._record(log, charge, status, latency)
        if to_count:
            task = asyncio.get_running_loop().create_task(self._count_then_record(log, to_count, status, latency))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _charges(self, log: RequestLog) -> tuple[list[Charge], list[Charge]]:
        """What to charge now (usage reported) and what must be counted first."""
        ready: list[Charge] = []
        to_count: list[Charge] = []
        answering = log.attempts[-1] if log.attempts and log.answered_by is not None else None
        for record in log.attempts:
            if record.lost_hedge:
                to_count.append(Charge(record.deployment, Usage(source="none"), "attempt", "hedge_lost"))
            elif record.partial is not None and record is not answering:
                to_count.append(Charge(record.deployment, Usage(source="none"), "attempt", "stream_broken"))
            elif record.unrelayed is not None and record.unrelayed is not log.body:
                # A defective answer retried elsewhere: the upstream still billed it, as it reported.
                usage = usage_from_body(record.unrelayed, log.call.endpoint)
                ready.append(Charge(record.deployment, usage or Usage(source="none"), "attempt", "defective_answer"))
        if log.answered_by is not None:
            if log.call.stream:
                usage = usage_from_stream(log.transcript.usage_events(), log.call.endpoint)
            else:
                usage = usage_from_body(log.body, log.call.endpoint)
            ttft = answering.ttft_s if answering is not None else None
            charge = Charge(log.answered_by, usage or Usage(source="none"), "request", log.outcome, ttft)
            (ready if usage is not None else to_count).append(charge)
        elif log.refused_by is not None:  # the provider's refusal was the answer: named, not charged
            ready.append(Charge(log.refused_by, Usage(source="none"), "request", "refused"))
        else:
            ready.append(Charge(None, Usage(source="none"), "request", "error"))
        return ready, to_count

    async def _count_then_record(self, log: RequestLog, charges: list[Charge], status: int, latency: float) -> None:
        prompt = await self.counter.count_prompt(log.call.body)
        for charge in charges:
            output = 0
            if charge.kind == "request" and log.call.stream:
                output = await self.counter.count_text(log.transcript.answering_output())
            elif charge.outcome == "stream_broken":
                record = next(r for r in log.attempts if r.deployment is charge.deployment and r.partial is not None)
                output = await self.counter.count_text(record.partial or "")
            usage = Usage(input_tokens=prompt, output_tokens=output, source="counted")
            assert charge.deployment is not None
            self.metrics.counted_usage(charge.deployment.provider, charge.deployment.model).inc()
            self._record(log, Charge(charge.deployment, usage, charge.kind, charge.outcome, charge.ttft_s),
                         status, latency)

    def _record(self, log: RequestLog, charge: Charge, status: int, latency: float) -> None:
        d, usage, caller, route = charge.deployment, charge.usage, log.caller, log.route.name
        provider, model = (d.provider, d.model) if d is not None else (NONE, NONE)
        price = self.prices.price(provider, model) if d is not None else None
        cost = cost_usd(price, usage) if price is not None else Decimal(0)
        # A pool's answer: what the frontier would have charged for it (a lost hedge leg saved nothing).
        saved: Decimal | None = None
        if d is not None and d.endpoint and charge.kind == "request" and usage.source != "none":
            saved = savings_usd(frontier_price(log.route, self.prices), usage)
            nanos_saved = to_nanos(saved)
            if nanos_saved:
                self.metrics.savings_nanos(route).inc(nanos_saved)
        client_paid = d is not None and d.client_credentials   # the caller's subscription or key paid
        if d is not None and usage.source != "none":
            labels = (caller.team, caller.app, route, d.provider, d.model)
            nanos = to_nanos(cost)
            if nanos:
                (self.metrics.client_paid_nanos if client_paid else self.metrics.cost_nanos)(*labels).inc(nanos)
            for kind, n in (("input", usage.input_tokens), ("output", usage.output_tokens),
                            ("cached_input", usage.cached_input_tokens),
                            ("cache_write_input", usage.cache_write_input_tokens)):
                if n:
                    self.metrics.tokens(*labels, kind, log.call.endpoint).inc(n)
                    self.metrics.token_usage(OPERATION[log.call.endpoint], d.model, d.provider, kind).observe(n)
            if price is not None and price.source == "unknown":
                self.metrics.unpriced(d.provider, d.model).inc()
            if charge.ttft_s is not None and log.call.stream and charge.kind == "request":
                self.metrics.ttft(route, d.provider, d.model).observe(charge.ttft_s)
            if cost and not client_paid:
                self._spend(caller, cost)
            if self.on_tokens is not None:
                self.on_tokens(caller.team, caller.key_id, usage.input_tokens + usage.output_tokens)
        record = CallRecord(
            ts=self.wall(), request_id=log.call.request_id, team=caller.team, app=caller.app, key_id=caller.key_id,
            route=route, provider=provider, model=model, input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens, cached_input_tokens=usage.cached_input_tokens, cost_usd=cost,
            cache_write_input_tokens=usage.cache_write_input_tokens,
            price_source=price.source if price is not None else "none", usage_source=usage.source,
            outcome=charge.outcome if status < 400 or charge.kind == "attempt" or charge.outcome == "refused"
            else f"error_{status}",
            attempts=len(log.attempts), fallback=self._fallback(log), hedged=log.hedged, stream=log.call.stream,
            latency_s=latency, ttft_s=charge.ttft_s, kind=charge.kind,  # type: ignore[arg-type]
            events=tuple(log.events) if charge.kind == "request" else (),
            degraded_tier=log.route.degraded_tier(d) if d is not None and charge.kind == "request" else None,
            savings_usd=saved, paid_by="client" if client_paid else "gateway",
            held_s=log.held_s if log.held_s and charge.kind == "request" else None)
        if self.ledger is not None:
            self.ledger.write(record)
            self.metrics.ledger_records(charge.kind).inc()
        if charge.kind == "request":
            request_line(record, status, log.call.endpoint)
            if self.on_request is not None:
                self.on_request(log, record)

    def _spend(self, caller: Caller, cost: Decimal) -> None:
        self.today.add(caller.team, cost, self.wall())
        if not self.budgets.budgets:
            return
        now = self.now_utc()
        self.budgets.add(caller.team, caller.key_id, cost, now)
        self.show_budgets(now)

    def show_budgets(self, now: datetime) -> None:
        """The budget gauges, from the book as it stands (after a charge, or news from other replicas)."""
        for budget, remaining in self.budgets.remaining(now):
            self.metrics.budget_remaining(budget.name).set(float(remaining))
            self.metrics.budget_spent(budget.name).set(float(budget.limit_usd - remaining))
            self.metrics.budget_resets_at(budget.name).set(period_end(budget.period, now).timestamp())

    @staticmethod
    def _fallback(log: RequestLog) -> bool:
        first = log.route.deployments[0] if log.route.deployments else None
        return log.answered_by is not None and log.answered_by is not first

    async def drain(self) -> None:
        """Waits for counted records and for the ledger to reach the disk."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self.ledger is not None:
            await self.ledger.flush()


def _index(log: RequestLog, attempt: AttemptRecord) -> int:
    """The attempt's place among the request's attempts (the request record counts them), found by identity."""
    for i in range(len(log.attempts) - 1, -1, -1):
        if log.attempts[i] is attempt:
            return i
    return len(log.attempts)


def _serialised_size(body: dict[str, Any]) -> int:
    """The size of a body the gateway made itself (a probe, a restart), as it goes upstream."""
    try:
        return len(orjson.dumps(body))
    except (TypeError, orjson.JSONEncodeError):
        return 0
