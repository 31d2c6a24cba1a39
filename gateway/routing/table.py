"""The routing table: a validated policy bound to concrete upstream addresses.

Built once per policy load; the request path looks a route up by the model name the client sent
and reads frozen deployments from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from gateway.core.deployment import Deployment
from gateway.policy.answer_checks import AnswerChecks
from gateway.policy.pools import PoolLoad
from gateway.policy.schema import Breaker, PolicyDocument, Provider, Route, endpoint_label


@dataclass(frozen=True, slots=True)
class PoolSpan:
    """A pool target of a route: which of the route's deployments are its endpoints, and how to read them."""

    provider: str
    indices: tuple[int, ...]        # into the route's deployments, one per endpoint
    urls: tuple[str, ...]           # each endpoint's base URL: the key its live load is kept under
    server: str
    load: PoolLoad
    slots: int = 0                  # requests each endpoint runs at once; 0: learnt from readings
    cache_tokens: int = 200_000     # prompt tokens each endpoint's prefix cache holds


@dataclass(frozen=True, slots=True)
class RouteTable:
    name: str
    deployments: tuple[Deployment, ...]
    weights: tuple[int, ...]
    priorities: tuple[int, ...]
    config: Route
    breaker: Breaker
    tiers: tuple[int, ...] = ()
    pools: tuple[PoolSpan, ...] = ()   # empty for most routes: the dispatcher then never looks at load
    frontier: int | None = None        # the first deployment that is no pool's: what a pool's tokens would cost
    targets: tuple[int, ...] = ()      # the route target each deployment stands for (a pool's endpoints share one)
    answer_checks: AnswerChecks = AnswerChecks()   # the route's own, else the policy's

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
    endpoints: tuple[str, ...] = ()   # a pool: each replica's base URL (base_url is then the first)


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
            urls = tuple(u.rstrip("/") for u in p.endpoints) if isinstance(p.endpoints, list) else ()
            out[name] = Upstream(kind=p.kind, base_url=urls[0] if urls else (p.base_url or "").rstrip("/"),
                                 api_key=key, api_version=p.api_version, beta=tuple(p.anthropic_beta),
                                 endpoints=urls)
    return out


def inherited_tiers(route: Route) -> tuple[int, ...]:
    """Each target's tier: its own, else the one before it has, and 1 for the first."""
    tiers: list[int] = []
    for t in route.targets:
        tiers.append(t.tier if t.tier is not None else (tiers[-1] if tiers else 1))
    return tuple(tiers)


def build_routing(doc: PolicyDocument, upstreams: Mapping[str, Upstream]) -> Routing:
    """Route tables for `doc`. A pool target becomes one deployment per endpoint, side by side in the
    target's place with its weight, priority and tier, so health and the planner see each replica."""
    routes: dict[str, RouteTable] = {}
    for name, route in doc.routes.items():
        deployments: list[Deployment] = []
        weights: list[int] = []
        priorities: list[int] = []
        tiers: list[int] = []
        targets: list[int] = []
        pools: list[PoolSpan] = []
        frontier: int | None = None
        for i, (t, tier) in enumerate(zip(route.targets, inherited_tiers(route), strict=True)):
            provider = doc.providers[t.provider]
            up = upstreams[t.provider]
            timeouts = route.timeouts.over(provider.timeouts) if route.timeouts else provider.timeouts
            one = Deployment(
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
                client_credentials=provider.credentials == "client",
                credential_cooldown_s=provider.credential_cooldown_s,
            )
            urls = up.endpoints or (up.base_url,)
            start = len(deployments)
            if up.endpoints:
                deployments += [replace(one, base_url=url, endpoint=endpoint_label(url)) for url in urls]
                slots, cache_tokens = _capacity(provider)
                pools.append(PoolSpan(provider=t.provider, indices=tuple(range(start, len(deployments))), urls=urls,
                                      server=provider.server or _simulated_server(provider), load=provider.load,
                                      slots=slots, cache_tokens=cache_tokens))
            else:
                deployments.append(one)
                if frontier is None:
                    frontier = start
            n = len(deployments) - start
            weights += [t.weight] * n
            priorities += [i if t.priority is None else t.priority] * n
            tiers += [tier] * n
            targets += [i] * n
        routes[name] = RouteTable(
            name=name, deployments=tuple(deployments), weights=tuple(weights), priorities=tuple(priorities),
            config=route, breaker=route.breaker or doc.breaker, tiers=tuple(tiers), pools=tuple(pools),
            frontier=frontier if pools else None, targets=tuple(targets) if pools else (),
            answer_checks=route.answer_checks or doc.answer_checks)
    return Routing(routes=routes)


def _capacity(provider: Provider) -> tuple[int, int]:
    """Each endpoint's batch size and prefix cache in tokens: the policy's, else a sim's, else unknown and
    200,000 (a mid-size model's KV cache on one 80 GB GPU)."""
    gpu = provider.sim.gpu if provider.sim is not None else None
    slots = provider.load.slots or (gpu.max_batch if gpu is not None else 0)
    cache = provider.load.cache_tokens or (gpu.prefix_cache_entries * gpu.chunk_tokens if gpu is not None
                                           else 200_000)
    return slots, max(64, cache)


def _simulated_server(provider: Provider) -> str:
    """The metrics dialect a pool of simulated GPU servers speaks: the one its simulator plays."""
    gpu = provider.sim.gpu if provider.sim is not None else None
    return gpu.server if gpu is not None else "openai"
