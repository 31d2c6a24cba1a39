"""Attempts on one deployment: a single try, and retries on the same deployment (tenacity); the hedged
race of two deployments is gateway/flow/hedging.py. Every outcome is reported to the health board
here, once."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_random_exponential

from gateway.core.metrics import Metrics
from gateway.flow.loop_pauses import gateways_own
from gateway.quality.answer_checks import RESCUABLE, Asked
from gateway.quality.answer_read import StreamWatch, whole_defects
from gateway.routing.answer_defects import AnswerBoard
from gateway.providers.base import AttemptError, Call, Failure, Reply, UpstreamClient
from gateway.routing.breaker import Outcome, State
from gateway.routing.classify import Classification, Verdict, classify, worth_another_try
from gateway.routing.credentials import CredentialCooldowns, cooldown_s, refuses_credential
from gateway.routing.health import HealthBoard
from gateway.routing.retry_budget import RetryBudget
from gateway.core.deployment import Deployment
from gateway.routing.request_log import AttemptRecord, RequestLog
from gateway.flow.resume.chat import PrefillBook
from gateway.flow.tracing import NO_TRACER, Tracer
from gateway.routing.stream_speed import SampleWindow, first_token_limit
from gateway.routing.table import RouteTable
from gateway.routing.traffic import TrafficBook

_logger = logging.getLogger("recloser.attempts")
CHECKED_ENDPOINTS = frozenset({"chat", "responses", "messages"})


class DefectiveAnswer(AttemptError):
    """A whole answer of no use (empty, or tool arguments that are not JSON): a failed attempt, kept so
    that it is relayed after all when no other target can answer."""

    def __init__(self, reply: Reply, defects: list[str]) -> None:
        super().__init__(Failure.DEFECTIVE, f"a defective answer ({', '.join(defects)})")
        self.reply = reply
        self.defects = defects


def asked(call: Call) -> Asked:
    return Asked(call.body, call.endpoint, call.prior.items if call.prior is not None else ())


class Attempts:
    def __init__(self, client_for: Callable[[Deployment], UpstreamClient], board: HealthBoard, metrics: Metrics,
                 clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.client_for = client_for
        self.board = board
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        # Recent times to the first token (streams) or to the answer, per deployment and kind.
        self.ttfts: dict[tuple[str, bool], SampleWindow] = {}
        self.prefills = PrefillBook()   # which deployments refused an assistant prefill
        self.traffic = TrafficBook()    # each route's targets over the last minute, for the console
        self.cooldowns = CredentialCooldowns()   # callers' credentials refused by client-credential providers
        self.answers = AnswerBoard(board, metrics, clock)   # defects in live answers, per deployment
        # Told of each upstream attempt about to be made, and of each that failed without an answer (the ledger's journal).
        self.on_start: Callable[[RequestLog, AttemptRecord, Call], None] = lambda log, record, call: None
        self.on_failed: Callable[[RequestLog, AttemptRecord], None] = lambda log, record: None
        # The event loop's pauses so far (seconds, from the admission's timer): what the gateway spent
        # not reading its sockets is taken out of the times providers are judged by.
        self.paused: Callable[[], float] = lambda: 0.0
        self.tracer: Tracer = NO_TRACER     # a span per attempt when traces are on
        # Might a first token at a pool endpoint have waited for a place there (it queues now, or one of the
        # gateway's requests sent while it had no place is still there)? Then it is load, not a brownout.
        self.queueing: Callable[[Deployment], bool] = lambda d: False

    def classify(self, route: RouteTable, err: AttemptError) -> Classification:
        return classify(err, route.config.retry.short_retry_after_s, route.config.on_content_filter)

    def report(self, route: RouteTable, d: Deployment, ok: bool, stream: bool, ttft_s: float | None = None,
               err: AttemptError | None = None, token_gap_s: float | None = None) -> None:
        """Tell the board and the metrics how an attempt ended (caller faults do not count against it)."""
        now = self.clock()
        if ok:
            judged = None if d.endpoint and self.queueing(d) else ttft_s
            self.board.record(d, Outcome(ok=True, at=now, ttft_s=judged, stream=stream,
                                         token_gap_s=token_gap_s), route.breaker)
            self.traffic.add(route.name, d.key, True, now, ttft_s)
            self.metrics.attempts(route.name, d.provider, d.model, "ok").inc()
            if ttft_s is not None:
                window = self.ttfts.get((d.key, stream))
                if window is None:
                    window = self.ttfts[(d.key, stream)] = SampleWindow()
                window.add(ttft_s)
            return
        assert err is not None
        c = self.classify(route, err)
        self.metrics.attempts(route.name, d.provider, d.model, c.reason).inc()
        if c.penalise:
            long_429 = c.reason == "rate_limited" and c.verdict is Verdict.FAIL_OVER
            self.board.record(d, Outcome(ok=False, at=now, stream=stream, reason=c.reason,
                                         eject_for_s=err.retry_after_s if long_429 else None), route.breaker)
            self.traffic.add(route.name, d.key, False, now)

    async def once(self, log: RequestLog, d: Deployment, call: Call, role: str) -> Reply:
        """One try; the reply is here (whole, or a stream's first event) or AttemptError is raised."""
        started, paused = self.clock(), self.paused()
        record = AttemptRecord(d, started, role=role)
        log.attempts.append(record)
        budget_s = log.remaining(started)
        if budget_s <= 0:
            record.outcome, record.ended = "deadline", started
            record.error = AttemptError(Failure.TIMEOUT, "the request's deadline passed")
            raise record.error
        _journal(self.on_start, log, record, call)
        traceparent = self.tracer.attempt_started(log, record)
        if traceparent:   # the upstream's own spans, where it makes any, are this attempt's children
            call = dataclasses.replace(call, traceparent=traceparent)
        probe = self.board.healths[d.key].state is State.PROBING
        if probe:
            self.board.take_probe(d)
        limit = first_token_limit(self.ttfts.get((d.key, True)), d.timeouts,
                                  (self.ttfts.get((p.key, True)) for p in log.route.deployments if p is not d)) \
            if call.stream else None
        try:
            if limit is not None and limit < d.timeouts.first_token_s:
                reply = await self._open_within(d, call, budget_s, limit)
            else:
                reply = await self.client_for(d).open(d, call, budget_s)
        except AttemptError as err:
            record.ended, record.error = self.clock(), err
            if err.failure is Failure.TIMEOUT and gateways_own(record.ended - started, self.paused() - paused):
                err.failure = Failure.PAUSED   # a bound ran out while the gateway was not reading: retried, not blamed
            if refuses_credential(d, err) and call.credential is not None:
                err.failure = Failure.CREDENTIAL
                self.cooldowns.cool(d.provider, call.credential.fingerprint, record.ended + cooldown_s(d, err),
                                    record.ended)
            record.outcome = self.classify(log.route, err).reason
            _journal(self.on_failed, log, record)
            self.tracer.attempt_failed(log, record)
            self.report(log.route, d, False, call.stream, err=err)
            raise
        finally:
            if probe:
                self.board.release_probe(d)
        record.ended = self.clock()
        record.ttft_s, record.paused_s = record.ended - started, self.paused() - paused
        if not call.stream:  # a stream's outcome is known only once it ends
            self._judge_whole(log, d, call, reply, record)
            self.report(log.route, d, True, False, record.provider_ttft_s)
        return reply

    def _judge_whole(self, log: RequestLog, d: Deployment, call: Call, reply: Reply, record: AttemptRecord) -> None:
        """The answer checks on a whole answer; one of no use at all is a failed attempt (DefectiveAnswer)."""
        checks = log.route.answer_checks
        if not checks.enabled or call.endpoint not in CHECKED_ENDPOINTS:
            return
        found = whole_defects(asked(call), reply.body, call.endpoint, checks)
        self.answers.judged(log.route, d, found)
        if checks.rescue and RESCUABLE.intersection(found):
            err = DefectiveAnswer(reply, found)
            record.error, record.outcome, record.unrelayed = err, "defective_answer", reply.body
            _journal(self.on_failed, log, record)
            self.report(log.route, d, False, False, err=err)
            raise err

    def watch(self, log: RequestLog) -> StreamWatch | None:
        """A watch on a stream's answer as it is relayed, where the route checks answers."""
        checks = log.route.answer_checks
        if not checks.enabled or log.call.endpoint not in CHECKED_ENDPOINTS:
            return None
        return StreamWatch(asked(log.call), checks)

    async def _open_within(self, d: Deployment, call: Call, budget_s: float, limit: float) -> Reply:
        """Open a stream that must show its first token within `limit`, from the deployment's baseline.
        The limit is the provider's time: it is extended by the gateway's own pauses meanwhile."""
        loop = asyncio.get_running_loop()
        opening = asyncio.ensure_future(self.client_for(d).open(d, call, budget_s))
        started, paused = loop.time(), self.paused()
        try:
            while True:
                left = started + limit + (self.paused() - paused) - loop.time()
                if left <= 0:
                    raise AttemptError(Failure.TIMEOUT, f"no first token within {limit:.2f} s "
                                                        f"({d.timeouts.first_token_factor:g}x its recent p99)")
                done, _ = await asyncio.wait((opening,), timeout=left)
                if done:
                    return opening.result()
        finally:
            if not opening.done():
                opening.cancel()
                await _settled(opening)

    async def with_retries(self, log: RequestLog, d: Deployment, call: Call, budget: RetryBudget,
                           role: str = "primary") -> Reply:
        """Tries `d` until it answers, or until a retry would not help, is not allowed, or has no time."""
        route = log.route
        cfg = route.config.retry
        try:  # the first try is outside tenacity: most requests need nothing more
            return await self.once(log, d, call, role)
        except AttemptError as err:
            if cfg.attempts < 2 or not self._worth_retrying(log, d, err, budget):
                raise
            first_error = err

        def should_retry(state: RetryCallState) -> bool:
            err = state.outcome.exception() if state.outcome else None
            return isinstance(err, AttemptError) and self._worth_retrying(log, d, err, budget)

        backoff = wait_random_exponential(multiplier=cfg.backoff_s, max=cfg.max_backoff_s)

        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception() if state.outcome else first_error
            seconds = backoff(state)
            if isinstance(err, AttemptError) and err.retry_after_s:
                seconds = max(seconds, err.retry_after_s)   # the server said when; never sooner
            return max(0.0, min(seconds, log.remaining(self.clock())))

        # The first try failed and is worth another: tenacity waits, then tries the rest.
        retrying = AsyncRetrying(stop=stop_after_attempt(cfg.attempts - 1), wait=wait, retry=should_retry,
                                 reraise=True, sleep=self.sleep)
        await self.sleep(wait(RetryCallState(retrying, None, (), {})))
        async for attempt in retrying:
            with attempt:
                return await self.once(log, d, call, "retry")
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _worth_retrying(self, log: RequestLog, d: Deployment, err: AttemptError, budget: RetryBudget) -> bool:
        """A blip, on a deployment still standing, with time left and room in the retry budget."""
        route = log.route
        c = self.classify(route, err)
        tries = sum(1 for r in log.attempts if r.deployment is d)
        if not worth_another_try(c, self.board.healths[d.key].state, tries, route.config.retry.attempts):
            return False
        if log.remaining(self.clock()) <= 0:
            return False
        if not budget.try_spend(self.clock()):
            self.metrics.retries_denied(route.name).inc()
            return False
        self.metrics.retries(route.name, d.provider, d.model, c.reason).inc()
        return True


def _journal(hook: Callable[..., None], *args: Any) -> None:
    """Tells the ledger's journal of an attempt; bookkeeping never fails an attempt, nor keeps its
    outcome from the breakers."""
    try:
        hook(*args)
    except Exception:
        _logger.exception("journalling an upstream attempt failed")


async def _settled(opening: asyncio.Future[Reply]) -> None:
    """Waits for a cancelled open to unwind; a reply that won the race to the cancel is released."""
    await asyncio.wait((opening,))
    if not opening.cancelled() and opening.exception() is None:
        await opening.result().release()
