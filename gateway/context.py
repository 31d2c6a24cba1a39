"""What a request needs from the running gateway, held by the app (never in module globals)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from aiohttp import web

from gateway.auth import Authenticator
from gateway.admission import Admission
from gateway.metrics import Metrics
from gateway.policy.load import LoadedPolicy
from gateway.policy.schema import Limits
from gateway.routing.health import HealthBoard
from gateway.routing.table import Routing
from gateway.state.responses import MemoryResponses, ResponseStore

if TYPE_CHECKING:
    from gateway.dispatch import Dispatcher
    from gateway.limiting.limiter import Limiter
    from gateway.metering.meter import Meter
    from gateway.quality.runner import CanaryRunner


@dataclass
class GatewayContext:
    policy: LoadedPolicy
    routing: Routing
    auth: Authenticator
    limits: Limits
    metrics: Metrics
    board: HealthBoard
    dispatcher: Dispatcher
    meter: Meter
    ready: bool = False
    admission: Admission = field(default_factory=lambda: Admission(1_000_000, 0))
    sims: dict[str, object] = field(default_factory=dict)   # provider name → running SimServer
    limiter: Limiter | None = None                           # rate limits, when the policy has any
    responses: ResponseStore = field(default_factory=lambda: MemoryResponses(86_400.0, 10_000, time.monotonic))
    canaries: CanaryRunner | None = None                     # when the policy has `canaries:`


CONTEXT: Final = web.AppKey("context", GatewayContext)
