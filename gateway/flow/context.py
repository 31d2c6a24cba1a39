"""What a request needs from the running gateway, held by the app (never in module globals)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from aiohttp import web

from gateway.core.auth import Authenticator
from gateway.flow.admission import Admission
from gateway.core.metrics import Metrics
from gateway.policy.load import LoadedPolicy, ReloadResult
from gateway.policy.schema import Limits
from gateway.routing.health import HealthBoard
from gateway.routing.table import Routing
from gateway.state.responses import MemoryResponses, ResponseStore
from gateway.flow.tracing import NO_TRACER, Tracer

if TYPE_CHECKING:
    from gateway.flow.dispatch import Dispatcher
    from gateway.flow.holding import HoldLine
    from gateway.limiting.limiter import Limiter
    from gateway.metering.meter import Meter
    from gateway.canaries.runner import CanaryRunner
    from gateway.providers.anthropic_messages import MessagesPassThrough
    from gateway.routing.pools import PoolBoard
    from gateway.routing.scrape import PoolScraper
    from gateway.flow.runtime import Runtime


class PolicyReloader(Protocol):
    """Reads the policy file again and swaps the runtime (gateway/serving/reload.py's Reloader)."""

    async def reload(self, trigger: str) -> ReloadResult: ...

    def request(self, trigger: str) -> None:
        """A reload from a signal handler, run as a task."""


@dataclass
class GatewayContext:
    """The process's parts, and the policy runtime new requests get (`runtime`, swapped on reload).

    A request reads `runtime` once and keeps it, so it finishes on the policy it started with.
    """

    metrics: Metrics
    board: HealthBoard
    ready: bool = False
    draining: bool = False      # SIGTERM came: not ready any more, requests in flight finishing
    admission: Admission = field(default_factory=lambda: Admission(1_000_000, 0))
    sims: dict[str, object] = field(default_factory=dict)   # provider name → running SimServer
    limiter: Limiter | None = None                           # rate limits, when the policy has any
    responses: ResponseStore = field(default_factory=lambda: MemoryResponses(86_400.0, 10_000, time.monotonic))
    canaries: CanaryRunner | None = None                     # when the policy has `canaries:`
    anthropic_counts: MessagesPassThrough | None = None      # Anthropic's own count_tokens
    reloader: PolicyReloader | None = None
    pools: PoolBoard | None = None                           # live load of pool endpoints
    scraper: PoolScraper | None = None                       # reads their /metrics
    tracer: Tracer = NO_TRACER                               # spans for requests and attempts (traces on)
    holds: HoldLine | None = None                            # requests held through an outage
    _runtime: Runtime | None = None

    @property
    def has_runtime(self) -> bool:
        return self._runtime is not None

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "the gateway has not started"
        return self._runtime

    @runtime.setter
    def runtime(self, runtime: Runtime) -> None:
        self._runtime = runtime

    # The current runtime's parts, for what reads one of them once (lists, admin views).
    @property
    def policy(self) -> LoadedPolicy:
        return self.runtime.policy

    @property
    def routing(self) -> Routing:
        return self.runtime.routing

    @property
    def auth(self) -> Authenticator:
        return self.runtime.auth

    @property
    def limits(self) -> Limits:
        return self.runtime.limits

    @property
    def dispatcher(self) -> Dispatcher:
        return self.runtime.dispatcher

    @property
    def meter(self) -> Meter:
        return self.runtime.meter


CONTEXT: Final = web.AppKey("context", GatewayContext)
