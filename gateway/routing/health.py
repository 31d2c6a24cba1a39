"""The live health of every deployment: the one mutable map the dispatcher updates.

The breaker decides (pure); this board only holds its results, counts probes in flight, and tells
metrics about transitions. Time comes from an injected clock.

When replicas share state (`share`), the board also keeps what the others must hear: outcome counts
since the last exchange, and the ejections and recoveries it decided; and it probes a recovering
deployment only while it holds the shared claim to do so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.core.metrics import Metrics
from gateway.policy.schema import Breaker
from gateway.quality.verdict import Signal
from gateway.routing.breaker import Health, Outcome, State, back_in, current, on_outcome, on_quality
from gateway.routing.planner import slower_than_peers
from gateway.core.deployment import Deployment
from gateway.routing.recovery import on_probe
from gateway.routing.table import RouteTable


_RANK = {Signal.OK: 0, Signal.DEGRADED: 1, Signal.EJECTED: 2}


def _worst(found: dict[str, tuple[Signal, str]]) -> tuple[Signal, str]:
    return max(found.values(), key=lambda f: _RANK[f[0]], default=(Signal.OK, ""))


class HealthBoard:
    def __init__(self, deployments: Sequence[Deployment], metrics: Metrics, clock: Callable[[], float],
                 default_breaker: Breaker) -> None:
        self.clock = clock
        self.metrics = metrics
        self.default_breaker = default_breaker
        self.healths: dict[str, Health] = {}
        self.probes: dict[str, int] = {}
        self.names: dict[str, tuple[str, str]] = {}
        self.endpoints: dict[str, str] = {}                 # a pool endpoint's host:port, by deployment key
        self.current: frozenset[str] = frozenset()
        self.tally: dict[str, list[int]] | None = None     # sharing: [ok, failed] since the last exchange
        self.news: dict[str, Health] = {}                   # sharing: ejections and recoveries decided here
        self.probe_claims: set[str] | None = None           # sharing: deployments this replica may probe
        self.on_news: Callable[[], None] = lambda: None
        self.route_keys: dict[str, tuple[str, ...]] = {}
        self.quality_by: dict[str, dict[str, tuple[Signal, str]]] = {}   # by deployment, by source
        self.on_back: Callable[[str], None] = lambda key: None   # a deployment out of ejection or probing
        self.track(deployments)

    def track(self, deployments: Sequence[Deployment], routes: Sequence[RouteTable] = ()) -> None:
        """The deployments of a (re)loaded policy: those already known keep their health and baselines,
        new ones start healthy. Ones the policy dropped stay on the board, out of reports, because
        requests still in flight on the previous policy may report on them."""
        for d in deployments:
            if d.key not in self.healths:
                self.healths[d.key] = Health(since=self.clock())
                self.probes[d.key] = 0
                self.names[d.key] = (d.provider, d.model)
                if d.endpoint:
                    self.endpoints[d.key] = d.endpoint
                self.metrics.set_state(d.provider, d.model, State.HEALTHY)
        self.current = frozenset(d.key for d in deployments)
        before, self.route_keys = self.route_keys, {r.name: tuple(d.key for d in r.deployments) for r in routes}
        for gone in set(before) - set(self.route_keys):
            self.metrics.forget_route(gone)
        for name in self.route_keys:
            self._count_available(name)

    def _count_available(self, route: str) -> None:
        keys = self.route_keys[route]
        self.metrics.route_available(route).set(sum(self.healths[k].state is not State.EJECTED for k in keys))

    def share(self, on_news: Callable[[], None]) -> None:
        """From now on, gather what other replicas must hear; `on_news` is called on an ejection or recovery."""
        self.tally = {}
        self.probe_claims = set()
        self.on_news = on_news

    def snapshot(self, route: RouteTable) -> list[Health]:
        now = self.clock()
        cfg = route.breaker
        out = []
        for d in route.deployments:
            h = self.healths[d.key]
            seen = current(h, now, cfg)
            if seen is not h:
                self._store(d.key, h, seen)
            out.append(seen)
        return out

    def probe_free(self, route: RouteTable) -> list[bool]:
        return [self.probes[d.key] < route.breaker.probe_requests and self.may_probe(d.key)
                for d in route.deployments]

    def may_probe(self, key: str) -> bool:
        """Alone, always; sharing, only while this replica holds the claim to probe `key`."""
        return self.probe_claims is None or key in self.probe_claims

    def record(self, d: Deployment, outcome: Outcome, cfg: Breaker, probe: bool = False) -> Health:
        """Apply an attempt's outcome (`probe`: an active probe of the gateway's own)."""
        before = self.healths[d.key]
        after = (on_probe if probe else on_outcome)(before, outcome, cfg)
        if after is not before:
            self._store(d.key, before, after)
        if self.tally is not None:
            counts = self.tally.get(d.key)
            if counts is None:
                counts = self.tally[d.key] = [0, 0]
            counts[0 if outcome.ok else 1] += 1
        return after

    def adopt(self, key: str, after: Health) -> None:
        """Another replica's news, already merged (gateway/routing/shared_health.py)."""
        before = self.healths[key]
        if after is not before:
            self._store(key, before, after, heard=True)

    def take_tally(self) -> dict[str, list[int]]:
        if self.tally is None:
            return {}
        tally, self.tally = self.tally, {}
        return tally

    def take_news(self) -> dict[str, Health]:
        news, self.news = self.news, {}
        return news

    def record_quality(self, key: str, signal: Signal, why: str, source: str = "canaries") -> Health:
        """What a judge of answers found (key: the deployment's `provider/model`; `source`: the canaries,
        or the checks on live answers). The worst of the sources holds: one finding answers good does
        not clear what another still finds."""
        before = self.healths[key]
        found = self.quality_by.setdefault(key, {})
        was = _worst(found)
        found[source] = (signal, why)
        now = _worst(found)
        if now == was and signal is Signal.OK:
            return before   # nothing changed that the breaker would act on
        after = on_quality(before, now[0], now[1], self.clock(), self.default_breaker)
        if after is not before:
            self._store(key, before, after)
        return after

    def _store(self, key: str, before: Health, after: Health, heard: bool = False) -> None:
        self.healths[key] = after
        if self.tally is not None and not heard and after.state is not before.state and (
                after.state is State.EJECTED or (after.state is State.HEALTHY and before.state is State.PROBING)):
            self.news[key] = after
            self.on_news()
        if after.state is not before.state:
            if before.state in (State.EJECTED, State.PROBING) and after.state is not State.EJECTED:
                self.on_back(key)
            provider, model = self.names[key]
            self.metrics.transitions(provider, model, before.state.value, after.state.value).inc()
            self.metrics.set_state(provider, model, after.state)
            if State.EJECTED in (before.state, after.state):
                for route, keys in self.route_keys.items():
                    if key in keys:
                        self._count_available(route)

    def take_probe(self, d: Deployment) -> None:
        self.probes[d.key] += 1

    def release_probe(self, d: Deployment) -> None:
        self.probes[d.key] = max(0, self.probes[d.key] - 1)

    def report(self, routes: Sequence[RouteTable]) -> list[dict[str, Any]]:
        """Per deployment, what `/admin/deployments` shows."""
        now = self.clock()
        slow: dict[str, list[str]] = {}
        for route in routes:
            healths = self.snapshot(route)
            for stream in (True, False):
                for i in slower_than_peers(healths, stream, route.breaker):
                    slow.setdefault(route.deployments[i].key, []).append(route.name)
        rows = []
        for key, h in self.healths.items():
            if key not in self.current:
                continue
            h = current(h, now, self.default_breaker)
            provider, model = self.names[key]
            rate, n = h.window.failure_rate(now, self.default_breaker.window_s)
            wait = back_in(h, now)
            rows.append({
                "provider": provider, "model": model, **({"endpoint": self.endpoints[key]} if key in self.endpoints
                                                         else {}),
                "state": h.state.value, "reason": h.reason,
                "ejected_for_s": round(wait, 3) if wait is not None else None,
                "ejections": h.ejections, "error_rate": round(rate, 4), "requests_in_window": n,
                "ttft_baseline_s": round(h.ttft.baseline, 4) if h.ttft.samples else None,
                "ttft_recent_s": round(h.ttft.recent, 4) if h.ttft.samples else None,
                "latency_baseline_s": round(h.latency.baseline, 4) if h.latency.samples else None,
                "token_gap_baseline_s": round(h.token_gap.baseline, 5) if h.token_gap.samples else None,
                "token_gap_recent_s": round(h.token_gap.recent, 5) if h.token_gap.samples else None,
                "probes_in_flight": self.probes[key],
                "slower_than_peers_in": sorted(set(slow.get(key, []))),
            })
        return rows
