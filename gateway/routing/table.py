"""The routing table: a validated policy bound to concrete upstream addresses.

Built once per policy load; the request path looks a route up by the model name the client sent
and reads frozen deployments from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.deployment import Deployment
from gateway.policy.schema import Breaker, PolicyDocument, Route


@dataclass(frozen=True, slots=True)
class RouteTable:
    name: str
    deployments: tuple[Deployment, ...]
    weights: tuple[int, ...]
    priorities: tuple[int, ...]
    config: Route
    breaker: Breaker
    tiers: tuple[int, ...] = ()

    def degraded_tier(self, d: Deployment) -> int | None:
        """The tier of `d` when it is below the route's best, else None (one comparison for most routes)."""
        tiers = self.tiers
        if not tiers or max(tiers) == min(tiers):
            return None
        for i, candidate in enumerate(self.deployments):
            if candidate is d or candidate.key == d.key:
                return tiers[i] if tiers[i] > min(tiers) else None
        return None


@dataclass(frozen=True)
class Upstream:
    """Where a provider is reached once the gateway runs (a sim's address is known only then)."""

    kind: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    beta: tuple[str, ...] = ()


@dataclass(frozen=True)
class Routing:
    routes: Mapping[str, RouteTable]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.routes)

    def deployments(self) -> tuple[Deployment, ...]:
        seen: dict[str, Deployment] = {}
        for table in self.routes.values():
            for d in table.deployments:
                seen.setdefault(d.key, d)
        return tuple(seen.values())


def resolve_upstreams(doc: PolicyDocument, sim_upstreams: Mapping[str, Upstream]) -> dict[str, Upstream]:
    """The address and key of each provider; `sim_upstreams` supplies those of running sims."""
    out: dict[str, Upstream] = {}
    for name, p in doc.providers.items():
        if p.kind == "sim":
            out[name] = sim_upstreams[name]
        else:
            key = p.api_key.get_secret_value() if p.api_key is not None else None
            out[name] = Upstream(kind=p.kind, base_url=(p.base_url or "").rstrip("/"), api_key=key,
                                 api_version=p.api_version, beta=tuple(p.anthropic_beta))
    return out


def inherited_tiers(route: Route) -> tuple[int, ...]:
    """Each target's tier: its own, else the one before it has, and 1 for the first."""
    tiers: list[int] = []
    for t in route.targets:
        tiers.append(t.tier if t.tier is not None else (tiers[-1] if tiers else 1))
    return tuple(tiers)


def build_routing(doc: PolicyDocument, upstreams: Mapping[str, Upstream]) -> Routing:
    routes: dict[str, RouteTable] = {}
    for name, route in doc.routes.items():
        deployments = []
        for t in route.targets:
            provider = doc.providers[t.provider]
            up = upstreams[t.provider]
            timeouts = route.timeouts.over(provider.timeouts) if route.timeouts else provider.timeouts
            deployments.append(
                Deployment(
                    provider=t.provider,
                    model=t.model,
                    kind=up.kind,
                    base_url=up.base_url,
                    timeouts=timeouts,
                    facts=provider.models.get(t.model),
                    api_key=up.api_key,
                    responses=provider.speaks_responses(),
                    api_version=up.api_version,
                    beta=up.beta,
                    via_litellm=provider.via == "litellm",
                )
            )
        routes[name] = RouteTable(
            name=name, deployments=tuple(deployments), weights=tuple(t.weight for t in route.targets),
            priorities=tuple(i if t.priority is None else t.priority for i, t in enumerate(route.targets)),
            config=route, breaker=route.breaker or doc.breaker, tiers=inherited_tiers(route))
    return Routing(routes=routes)
