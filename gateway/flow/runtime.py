"""What lives for one policy: its route tables, keys, limits, prices, budgets and attempt loop.

A reload builds a new `Runtime` beside the running one and swaps it in one assignment; a request
takes the runtime once, when it starts, and finishes on it. What outlives policies (the upstream
connection pool, the ledger writer, the metrics registry, the health of each deployment) is held by
the `Process` and handed to every runtime.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gateway.flow.attempts import Attempts
from gateway.core.auth import Authenticator
from gateway.flow.dispatch import Dispatcher
from gateway.flow.holding import HoldLine
from gateway.limiting.limiter import Limiter
from gateway.metering.budgets import BudgetBook
from gateway.metering.ledger import LedgerWriter
from gateway.metering.meter import Meter
from gateway.metering.prices import PriceBook
from gateway.core.metrics import Metrics
from gateway.policy.load import LoadedPolicy
from gateway.policy.schema import Limits
from gateway.routing.health import HealthBoard
from gateway.routing.failovers import FailoverRing
from gateway.routing.pools import PoolBoard
from gateway.routing.table import Routing, Upstream, build_routing, resolve_upstreams
from gateway.flow.sharing import Replication
from gateway.flow.tracing import NO_TRACER, Tracer


@dataclass(frozen=True)
class Runtime:
    policy: LoadedPolicy
    routing: Routing
    auth: Authenticator
    limits: Limits
    dispatcher: Dispatcher
    meter: Meter


@dataclass
class Process:
    """The parts of a running gateway that every runtime shares: a reload changes what they are told
    (the policy's deployments, budgets and rate limits), never what they have learnt or counted."""

    metrics: Metrics
    board: HealthBoard
    attempts: Attempts
    ledger: LedgerWriter | None
    budgets: BudgetBook             # spend this period, kept across reloads for budgets that stay
    limiter: Limiter
    clock: Callable[[], float]
    wall: Callable[[], float]
    rng: random.Random
    replication: Replication | None = None
    pools: PoolBoard | None = None  # live load of pool endpoints, kept by endpoint across reloads
    failovers: FailoverRing = field(default_factory=FailoverRing)   # the last failovers, across reloads
    tracer: Tracer = NO_TRACER      # spans for requests and attempts, when traces are on
    holds: HoldLine | None = None   # requests held through an outage, kept across reloads


def build_runtime(loaded: LoadedPolicy, process: Process, sim_upstreams: Mapping[str, Upstream],
                  previous: Runtime | None = None) -> Runtime:
    """A runtime for `loaded`; with `previous`, its meter shares the previous one's pending records.

    Nothing running is touched, so a runtime that is built and then not used costs nothing.
    """
    doc = loaded.document
    routing = build_routing(doc, resolve_upstreams(doc, sim_upstreams))
    priorities = {k.id: k.priority for k in doc.auth.keys if k.priority} if doc.auth else {}
    holds = {k.id: k.hold_s for k in doc.auth.keys if k.hold_s is not None} if doc.auth else {}
    dispatcher = Dispatcher(process.attempts, process.board, process.metrics, process.clock, process.rng,
                            pools=process.pools, key_priorities=priorities, failovers=process.failovers,
                            holds=process.holds, key_holds=holds)
    prices = PriceBook(doc)
    if previous is not None:
        meter = previous.meter.successor(prices)
    else:
        meter = Meter(prices, process.budgets, process.metrics, process.ledger, wall=process.wall)
    if any(r.tpm for r in doc.rate_limits):
        meter.on_tokens = process.limiter.used
    if process.tracer is not NO_TRACER:
        meter.on_request = process.tracer.request_charged
    return Runtime(policy=loaded, routing=routing, auth=Authenticator(doc.auth), limits=doc.limits,
                   dispatcher=dispatcher, meter=meter)
