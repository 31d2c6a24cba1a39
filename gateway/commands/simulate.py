"""`recloser simulate`: what the gateway would do if providers went down or slow. A dry run, no network.

For every route, the real planner is asked many times (seeded, so the answer is the same each run)
with the down providers' deployments ejected and the slow ones degraded: where traffic goes, in
what order it fails over, what a million tokens cost before and after, and which routes have nothing
left. The question ops ask before an incident: "what happens if OpenAI goes down?"

A pool target is planned as the gateway plans it, one deployment per endpoint: `--down gpus` takes the
whole pool down, `--down gpus@10.0.0.2:8000` one replica (a sim pool's replicas are `gpus@1` … `gpus@N`).
Shares, prices and the failover order are reported per target, a pool's endpoints together.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from gateway.metering.prices import PriceBook
from gateway.policy.schema import PolicyDocument, Provider, Route, endpoint_label
from gateway.routing.breaker import Health, State
from gateway.routing.planner import plan

SAMPLES = 2000
SEED = 20261130


@dataclass(frozen=True)
class Share:
    target: str                    # provider/model
    percent: float


@dataclass(frozen=True)
class RouteOutcome:
    route: str
    before: tuple[Share, ...]      # who answers with everything up
    after: tuple[Share, ...]       # who answers in the scenario (empty: nothing left)
    failover: tuple[str, ...]      # the usual order of attempts in the scenario, down targets marked
    skipped: tuple[str, ...]       # down targets the breaker has ejected: not even tried
    usd_per_mtok_before: tuple[Decimal, Decimal] | None   # (input, output) of the traffic mix; None: unpriced
    usd_per_mtok_after: tuple[Decimal, Decimal] | None
    panic: bool                    # too few targets stand: every target is tried in order
    hedged_after_s: float | None   # the route hedges a slow first choice after this long

    @property
    def nothing_left(self) -> bool:
        return not self.after


@dataclass(frozen=True)
class Unit:
    """One deployment the planner sees: a target, or one endpoint of a pool target."""

    target: int                    # index into the route's targets
    endpoint: str = ""             # a pool endpoint's label; "" for a target that is one server


def endpoint_labels(provider: Provider) -> tuple[str, ...]:
    """A pool's endpoints as `--down provider@LABEL` names them: host:port, or a sim pool's 1 … N."""
    if isinstance(provider.endpoints, list):
        return tuple(endpoint_label(url) for url in provider.endpoints)
    if isinstance(provider.endpoints, int):
        return tuple(str(n) for n in range(1, provider.endpoints + 1))
    return ()


def unknown_names(doc: PolicyDocument, names: frozenset[str]) -> list[str]:
    """Names in `names` that are neither a provider of `doc` nor `provider@endpoint` of one of its pools."""
    out = []
    for name in sorted(names):
        provider, _, endpoint = name.partition("@")
        p = doc.providers.get(provider)
        if p is None or (endpoint and endpoint not in endpoint_labels(p)):
            out.append(name)
    return out


def _units(doc: PolicyDocument, route: Route) -> list[Unit]:
    units: list[Unit] = []
    for i, t in enumerate(route.targets):
        labels = endpoint_labels(doc.providers[t.provider])
        units += [Unit(i, label) for label in labels] if labels else [Unit(i)]
    return units


def _in(route: Route, unit: Unit, names: frozenset[str]) -> bool:
    provider = route.targets[unit.target].provider
    return provider in names or (bool(unit.endpoint) and f"{provider}@{unit.endpoint}" in names)


def _shares(route: Route, units: Sequence[Unit], health: Sequence[Health],
            doc: PolicyDocument) -> tuple[tuple[Share, ...], tuple[int, ...], bool]:
    """Who answers first, how often (%), the most common order of attempts (units), and whether in panic."""
    cfg = route.breaker or doc.breaker
    given = [t.priority for t in route.targets]
    priorities = [g if (g := given[u.target]) is not None else u.target for u in units]
    weights = [route.targets[u.target].weight for u in units]
    rng = random.Random(SEED)
    first: Counter[int] = Counter()
    orders: Counter[tuple[int, ...]] = Counter()
    panic = False
    for _ in range(SAMPLES):
        p = plan(priorities, weights, health, [True] * len(health), cfg, True, rng, targets=[u.target for u in units])
        panic = panic or p.panic
        alive = [i for i in p.order if health[i].state is not State.EJECTED]   # a down target fails: the next answers
        if alive:
            first[units[alive[0]].target] += 1
        orders[p.order] += 1
    names = [f"{t.provider}/{t.model}" for t in route.targets]
    shares = tuple(Share(names[i], round(100 * n / SAMPLES, 1)) for i, n in first.most_common())
    return shares, orders.most_common(1)[0][0] if orders else (), panic


def _failover(route: Route, units: Sequence[Unit], order: Sequence[int], down: frozenset[str],
              slow: frozenset[str]) -> tuple[str, ...]:
    """The order of attempts by target (a pool's endpoints tried one after another are one step)."""
    steps: list[str] = []
    last: int | None = None
    for i in order:
        unit = units[i]
        if unit.target == last:
            continue
        last = unit.target
        t = route.targets[unit.target]
        mine = [u for u in units if u.target == unit.target]
        out = sum(1 for u in mine if _in(route, u, down))
        mark = (" (down)" if out == len(mine) else f" ({out} of {len(mine)} endpoints down)" if out else
                " (slow)" if t.provider in slow else "")
        steps.append(f"{t.provider}/{t.model}{mark}")
    return tuple(steps)


def _mix(route: Route, shares: Sequence[Share], prices: PriceBook) -> tuple[Decimal, Decimal] | None:
    if not shares:
        return None
    by_name = {f"{t.provider}/{t.model}": t for t in route.targets}
    inp = out = Decimal(0)
    for share in shares:
        t = by_name[share.target]
        price = prices.price(t.provider, t.model)
        if price.source == "unknown":
            return None
        weight = Decimal(str(share.percent)) / 100
        inp += weight * price.input_per_mtok
        out += weight * price.output_per_mtok
    return inp.quantize(Decimal("0.01")), out.quantize(Decimal("0.01"))


def simulate(doc: PolicyDocument, down: frozenset[str], slow: frozenset[str]) -> list[RouteOutcome]:
    """Each route's outcome with the `down` providers unreachable and the `slow` ones browning out."""
    prices = PriceBook(doc)
    ejected = Health(state=State.EJECTED, reason="down", ejected_until=float("inf"))
    degraded = Health(state=State.DEGRADED, reason="slow")
    outcomes = []
    for name, route in doc.routes.items():
        units = _units(doc, route)
        healthy = [Health() for _ in units]
        scenario = [ejected if _in(route, u, down) else degraded if _in(route, u, slow) else Health() for u in units]
        before, _, _ = _shares(route, units, healthy, doc)
        after, order, panic = _shares(route, units, scenario, doc)
        hedge = route.hedge.after_s if route.hedge is not None else None
        skipped: list[str] = []
        if not panic:
            for i, t in enumerate(route.targets):
                mine = [u for u in units if u.target == i]
                out = [u for u in mine if _in(route, u, down)]
                if out and len(out) == len(mine):
                    skipped.append(f"{t.provider}/{t.model}")
                else:
                    skipped += [f"{t.provider}/{t.model}@{u.endpoint}" for u in out]
        outcomes.append(RouteOutcome(name, before, after, _failover(route, units, order, down, slow), tuple(skipped),
                                     _mix(route, before, prices), _mix(route, after, prices), panic,
                                     hedge if any(_in(route, u, slow) for u in units) else None))
    return outcomes


def _usd(mix: tuple[Decimal, Decimal] | None) -> str:
    return "unpriced" if mix is None else f"${mix[0]} in / ${mix[1]} out per 1M tokens"


def report(outcomes: Sequence[RouteOutcome], down: frozenset[str], slow: frozenset[str]) -> str:
    """The dry run as text, one block per route, then the routes with nothing left."""
    scenario = ", ".join([f"{p} down" for p in sorted(down)] + [f"{p} slow" for p in sorted(slow)]) or "nothing"
    lines = [f"Scenario: {scenario}", ""]
    for o in outcomes:
        lines.append(f"route {o.route}")
        lines.append("  now:   " + ", ".join(f"{s.target} {s.percent:g}%" for s in o.before) + f"  ({_usd(o.usd_per_mtok_before)})")
        if o.nothing_left:
            lines.append("  then:  NOTHING LEFT: every target is down; requests get 503")
        else:
            lines.append("  then:  " + ", ".join(f"{s.target} {s.percent:g}%" for s in o.after) + f"  ({_usd(o.usd_per_mtok_after)})")
        lines.append("  order: " + " -> ".join(o.failover))
        if o.skipped:
            lines.append("  skips: " + ", ".join(o.skipped) + " (down: ejected by the breaker, not tried)")
        if o.panic:
            lines.append("  panic: too few targets stand, so every target is tried in order (down ones fail first)")
        if o.hedged_after_s is not None:
            lines.append(f"  hedge: a slow first choice is hedged after {o.hedged_after_s:g} s")
        lines.append("")
    dead = [o.route for o in outcomes if o.nothing_left]
    lines.append(f"Routes with nothing left: {', '.join(dead) if dead else 'none'}")
    return "\n".join(lines)
