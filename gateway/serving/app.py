"""Builds the aiohttp application: endpoints, error rendering, and the resources it owns."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.flow.admission import Admission
from gateway.serving.capacity import max_in_flight
from gateway.flow.holding import HoldLine
from gateway.api import handlers
from gateway.api.access import guard_operational_routes
from gateway.core.errors import ApiError, body_too_large, error_response
from gateway.flow.context import CONTEXT, GatewayContext
from gateway.policy.load import LoadedPolicy
from gateway.policy.schema import PolicyDocument
from gateway.providers.base import UpstreamClient
from gateway.providers.anthropic_messages import MessagesPassThrough
from gateway.providers.crossing import Crossing
from gateway.providers.anthropic_wire import AnthropicWire
from gateway.providers.litellm_bridge import LitellmBridge
from gateway.providers.openai_wire import OpenAIWireClient
from gateway.providers.connections import upstream_connector
from gateway.flow.attempts import Attempts
from gateway.metering.budgets import BudgetBook
from gateway.metering.ledger import LedgerWriter, ledger_files, read_ledger
from gateway.core.metrics import Metrics
from gateway.canaries.runner import CanaryRunner
from gateway.serving.console import handlers as console
from gateway.serving.reload import Reloader
from gateway.routing.health import HealthBoard
from gateway.routing.pools import PoolBoard
from gateway.routing.scrape import PoolScraper
from gateway.core.deployment import Deployment
from gateway.limiting.limiter import Limiter
from gateway.flow.runtime import Process, build_runtime
from gateway.flow.sharing import Replication
from gateway.flow.tracing import NO_TRACER
from gateway.serving.traces import open_tracer
from gateway.serving.sim_pool import SimPool
from gateway.state.memory import MemoryState
from gateway.state.redis import RedisState
from gateway.state.responses import MemoryResponses, ResponseStore, SharedResponses

log = logging.getLogger("recloser")

def response_store(doc: PolicyDocument, shared: RedisState | None, clock: Callable[[], float]) -> ResponseStore:
    """Served Responses kept for `previous_response_id`: in this process, and in Redis when shared."""
    local = MemoryResponses(doc.response_store.ttl_s, doc.response_store.max_responses, clock)
    return local if shared is None else SharedResponses(shared, local)


async def end_holds(app: web.Application) -> None:
    """On shutdown, before the server waits for its handlers: held requests get their error now (a
    stream its error event) instead of waiting out the grace for a target and being cut."""
    ctx = app.get(CONTEXT)
    if ctx is not None and ctx.holds is not None:
        ctx.holds.expire_all()


def build_app(loaded: LoadedPolicy, clock: Callable[[], float] = time.monotonic,
              rng: random.Random | None = None, metrics: Metrics | None = None,
              wall: Callable[[], float] = time.time, watch_loop_lag: bool = True, open_ok: bool = True,
              watch_policy_s: float | None = 1.0, fan_out: Callable[[], None] | None = None,
              background_canaries: bool = True, canary_budget_split: int = 1,
              metrics_route: bool = True) -> web.Application:
    """The gateway for one policy. `clock` and `rng` are injectable so behaviour can be replayed.

    `background_canaries` off builds the canary runner without starting its schedule (`recloser
    canary` runs the suite once, by hand). `canary_budget_split` processes share the canaries' daily
    budget (the workers of `serve --workers N`): each gets its part.

    `watch_loop_lag` off leaves admission to `max_in_flight` alone: an embedded gateway's loop shares
    the interpreter with its host, so how late it runs says more about the host than the gateway.
    `open_ok` False refuses to reload into a policy without keys (the gateway serves beyond loopback);
    `watch_policy_s` is how often the policy file is looked at (None: only SIGHUP and the admin endpoint);
    `fan_out` tells the other workers to reload after `POST /admin/reload`.
    """
    doc = loaded.document
    # No middleware: every level of it is a suspended call each open stream holds for minutes. Errors
    # aiohttp raises get the API's shape from the connection handler (serving/protocol.py); the
    # operational routes get their access check at start-up (api/access.py).
    app = web.Application(client_max_size=doc.limits.max_body_bytes,
                          # An idle keep-alive connection is closed after 75 s (nginx's default), not an hour;
                          # the unread rest of a refused body is drained for 1 s at most, not 10.
                          handler_args={"access_log": None, "keepalive_timeout": 75.0, "lingering_time": 1.0})

    async def resources(app: web.Application) -> AsyncIterator[None]:
        sims = SimPool()
        sim_upstreams = await sims.ensure(doc)
        connector = upstream_connector(limit=0, keepalive_timeout=60, ttl_dns_cache=300)
        # No decompression: identity is asked for, and a body that comes compressed anyway is a broken
        # answer (gateway/providers/answer_check.py), not something to inflate without a bound.
        session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",),
                                        auto_decompress=False)
        bridge = LitellmBridge()
        fast = OpenAIWireClient(session, doc.limits.max_upstream_body_bytes)
        anthropic = AnthropicWire(session, wall, doc.limits.max_upstream_body_bytes)
        native: dict[str, UpstreamClient] = {"openai": fast, "azure": fast, "anthropic": anthropic}
        m = metrics or Metrics()
        board = HealthBoard((), m, clock, doc.breaker)

        def client_for(d: Deployment) -> UpstreamClient:
            return bridge if d.via_litellm else native.get(d.kind, bridge)

        passthrough = MessagesPassThrough(session, anthropic)
        crossing = Crossing(client_for, passthrough)
        attempts = Attempts(lambda d: crossing, board, m, clock)
        attempts.tracer = tracer = open_tracer(doc.tracing, os.environ)
        ledger = LedgerWriter(doc.metering.ledger) if doc.metering.ledger.path else None
        if ledger is not None:
            ledger.recover()   # calls a killed gateway left in flight, charged before budgets read the ledger
        budgets = BudgetBook(doc.budgets)
        if ledger is not None and doc.budgets:
            budgets.load(read_ledger(ledger_files(Path(doc.metering.ledger.path or ""))), datetime.fromtimestamp(wall(), UTC))
        shared = None
        if doc.state is not None:
            shared = RedisState(doc.state.redis_url.get_secret_value(), doc.state.timeout_ms / 1000, doc.state.prefix,
                                on_up=lambda up: m.state_backend_up.set(1 if up else 0))
        limiter = Limiter(doc.rate_limits, shared, MemoryState(), wall)
        pools = PoolBoard(m, clock)
        admission = Admission(max_in_flight(doc.limits.max_in_flight), doc.limits.max_loop_lag_ms, on_cap=m.admission_cap.set,
                              wait_ms=doc.limits.loop_lag_wait_ms,
                              stream_wait_ms=doc.limits.stream_loop_lag_wait_ms)
        holds = HoldLine(board, m, clock, doc.limits.max_held, admission)
        attempts.queueing = pools.waited
        process = Process(metrics=m, board=board, attempts=attempts, ledger=ledger, budgets=budgets, limiter=limiter,
                          clock=clock, wall=wall, rng=rng or random.Random(), pools=pools, tracer=tracer, holds=holds)
        runtime = build_runtime(loaded, process, sim_upstreams)
        replication = None
        if shared is not None and doc.state is not None:
            replication = Replication(shared, board, runtime.routing, runtime.dispatcher, runtime.meter, limiter, m,
                                      doc.state.sync_ms / 1000, clock, wall)
        process.replication = replication
        m.admission_cap.set(admission.cap)
        attempts.paused = admission.paused_s
        canaries = None
        if doc.canaries is not None and doc.canaries.enabled:
            # Settings from the first policy; a reload changes which deployments they watch (Reloader.activate).
            canaries = CanaryRunner(doc.canaries, runtime.routing.deployments(), client_for, m, runtime.meter.prices,
                                    ledger, board, clock=clock, wall=wall,
                                    rng=random.Random(rng.random() if rng else None), budget_split=canary_budget_split)
            if ledger is not None:
                canaries.budget.load(read_ledger(ledger_files(Path(doc.metering.ledger.path or ""))),
                                     datetime.fromtimestamp(wall(), UTC))
        ctx = GatewayContext(metrics=m, board=board, sims=sims.servers, admission=admission, limiter=limiter,
                             responses=response_store(doc, shared, clock), canaries=canaries,
                             anthropic_counts=passthrough, tracer=tracer, holds=holds)
        reloader = Reloader(ctx, process, sims, bridge, open_ok=open_ok, watch_s=watch_policy_s, fan_out=fan_out)
        reloader.activate(runtime)
        ctx.reloader = reloader
        app[CONTEXT] = ctx
        scraper = ctx.scraper = PoolScraper(pools, session, lambda: ctx.routing, clock)
        ctx.pools = pools
        attempts.on_start = lambda log, record, call: ctx.meter.attempt_started(log, record, call)
        attempts.on_failed = lambda log, record: ctx.meter.attempt_failed(log, record)
        try:
            if any(d.via_litellm or d.kind not in native for d in ctx.routing.deployments()):
                await bridge.load()
            await tracer.start()
            reloader.start()
            scraper.start()
            if ledger is not None:
                await ledger.start()
            if shared is not None and replication is not None:
                await shared.start()
                replication.start()
            if watch_loop_lag:
                ctx.admission.start()
            if canaries is not None and background_canaries:
                canaries.start()
            ctx.ready = True
            yield
        finally:
            ctx.ready = False
            ctx.admission.stop()
            await reloader.stop()
            await scraper.stop()
            if canaries is not None:
                await canaries.stop()
            await ctx.meter.drain()
            if replication is not None:
                await replication.stop()
            if shared is not None:
                await shared.close()
            if ledger is not None:
                await ledger.close()
            await session.close()
            await bridge.close()
            if tracer is not NO_TRACER:
                await tracer.close()
            await sims.stop()

    app.cleanup_ctx.append(resources)
    app.on_startup.append(guard_operational_routes)
    app.on_shutdown.append(end_holds)
    app.on_response_prepare.append(handlers.answer_begins)
    app.router.add_post("/v1/chat/completions", handlers.endpoint("chat"))
    app.router.add_post("/v1/completions", handlers.endpoint("completions"))
    app.router.add_post("/v1/embeddings", handlers.endpoint("embeddings"))
    app.router.add_post("/v1/responses", handlers.endpoint("responses"))
    app.router.add_post("/v1/messages", handlers.endpoint("messages"))
    app.router.add_post("/v1/messages/count_tokens", handlers.count_tokens)
    app.router.add_get("/v1/models", handlers.list_models)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/admin/deployments", handlers.admin_deployments)
    app.router.add_post("/admin/reload", handlers.admin_reload)
    console.add_routes(app)
    if metrics_route:  # else `serve --metrics-port` serves it on a listener of its own
        app.router.add_get("/metrics", handlers.metrics)
    return app
