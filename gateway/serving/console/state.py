"""What the console shows, as one JSON-ready snapshot built by a pure function from the gateway's
in-memory state: breakers and health, the last minute's traffic, pools, the last failovers, spend.

Names no secret: no keys, no upstream URL (a pool endpoint is shown as its host and port, without any
credentials its URL carried), nothing a client sent. Times are Unix seconds; the health board's are on
the gateway's monotonic clock and are converted with the wall clock read at the same moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.metering.budgets import BudgetBook, period_start
from gateway.metering.spend_today import SpendToday
from gateway.routing.breaker import Health, back_in, current
from gateway.routing.failovers import FailoverRing
from gateway.routing.picker import fresh, utilisation
from gateway.routing.pools import PoolBoard, stale_after
from gateway.routing.table import PoolSpan, RouteTable
from gateway.routing.traffic import TrafficBook

FAILOVERS_SHOWN = 20


@dataclass(frozen=True)
class Parts:
    """The gateway's state the console reads (gateway/serving/console/handlers.py gathers it)."""

    routes: Sequence[RouteTable]
    healths: Mapping[str, Health]
    probes: Mapping[str, int]
    traffic: TrafficBook
    pools: PoolBoard | None
    failovers: FailoverRing
    budgets: BudgetBook
    spend: SpendToday
    policy: str                 # where the policy came from, and its digest
    policy_sha256: str
    pid: int = 0                # the process that answers: with several workers, each shows its own view
    # Requests held for a target to come back, per route (None: this gateway holds none), and the bound.
    held: Mapping[str, int] | None = None
    max_held: int | None = None


def public_endpoint(endpoint: str) -> str:
    """host:port of a pool endpoint, without the user and password its URL may carry."""
    return endpoint.rsplit("@", 1)[-1]


def public_key(key: str) -> str:
    """A deployment's key (provider/model[@endpoint]) with its endpoint's credentials, if any, left out."""
    name, at, endpoint = key.partition("@")
    return f"{name}@{public_endpoint(endpoint)}" if at else key


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def _usd(amount: Decimal) -> float:
    return round(float(amount), 6)


def _targets(route: RouteTable, parts: Parts, now: float, wall: float) -> list[dict[str, Any]]:
    minutes = [parts.traffic.minute(route.name, d.key, now) for d in route.deployments]
    total = sum(m.attempts for m in minutes)
    best = min(route.tiers) if route.tiers else 1
    rows = []
    for i, (d, m) in enumerate(zip(route.deployments, minutes, strict=True)):
        stored = parts.healths.get(d.key)
        h = current(stored, now, route.breaker) if stored is not None else Health(since=now)
        wait = back_in(h, now)
        tier = route.tiers[i] if route.tiers else 1
        rows.append({
            "target": public_key(d.key), "provider": d.provider, "model": d.model,
            "endpoint": public_endpoint(d.endpoint) if d.endpoint else None,
            "tier": tier, "below_best_tier": tier > best,
            "state": h.state.value, "reason": h.reason, "since": round(wall - (now - h.since), 3),
            "back_in_s": _round(wait, 1), "ejections": h.ejections,
            "quality": h.quality or "ok", "probes_in_flight": parts.probes.get(d.key, 0),
            "attempts_1m": m.attempts, "failed_1m": m.failed,
            "share_1m": round(m.attempts / total, 4) if total else 0.0,
            "error_rate_1m": round(m.failed / m.attempts, 4) if m.attempts else 0.0,
            "ttft_p50_s": _round(m.ttft_p50_s),
        })
    return rows


def _pool(span: PoolSpan, route: RouteTable, parts: Parts, now: float) -> dict[str, Any]:
    board = parts.pools
    stale = stale_after(span)
    replicas: list[dict[str, Any]] = []
    shares: list[float] = []
    for index, url in zip(span.indices, span.urls, strict=True):
        d = route.deployments[index]
        stored = parts.healths.get(d.key)
        state = current(stored, now, route.breaker).state.value if stored is not None else "healthy"
        load = board.load(url) if board is not None and url in board.loads else None
        read = load is not None and fresh(load, now, stale)
        shares.append(utilisation(load, now, stale) if load is not None else 0.0)
        replicas.append({
            "endpoint": public_endpoint(d.endpoint), "state": state,
            "running": load.running if load is not None and read else None,
            "waiting": load.waiting if load is not None and read else None,
            "kv_cache": _round(load.kv) if load is not None and read else None,
            "in_flight": load.in_flight if load is not None else 0,
            "utilisation": round(shares[-1], 4),
            "read_age_s": _round(now - load.read_at, 1) if load is not None and load.read_at is not None else None,
        })
    room = board.rooms.get(span.provider) if board is not None else None
    return {"provider": span.provider, "server": span.server, "replicas": replicas,
            "queued": len(room) if room is not None else 0, "queue_max": span.load.queue_max,
            "utilisation": round(sum(shares) / len(shares), 4) if shares else 0.0}


def _spend(parts: Parts, wall: float) -> dict[str, Any]:
    now_utc = datetime.fromtimestamp(wall, UTC)
    teams = dict(parts.spend.by_team(wall))
    budgets = []
    for b in parts.budgets.budgets:
        spent = parts.budgets.spent(b, now_utc)
        if b.team is not None and b.period == "day":   # the budget's tally also counts the ledger and replicas
            teams[b.team] = max(teams.get(b.team, Decimal(0)), spent)
        budgets.append({"name": b.name, "team": b.team, "key": b.key, "period": b.period,
                        "since": period_start(b.period, now_utc).timestamp(), "spent_usd": _usd(spent),
                        "limit_usd": _usd(b.limit_usd), "action": b.action,
                        "used": round(float(spent / b.limit_usd), 4)})
    return {"day": now_utc.strftime("%Y-%m-%d"),
            "teams": [{"team": t, "spent_usd": _usd(v)} for t, v in sorted(teams.items(), key=lambda kv: -kv[1])],
            "budgets": budgets}


def console_state(parts: Parts, now: float, wall: float) -> dict[str, Any]:
    """The console's snapshot as of `now` (the gateway's clock) and `wall` (Unix seconds) read together."""
    routes, pools, seen = [], [], set()
    queued = 0
    for route in parts.routes:
        targets = _targets(route, parts, now, wall)
        routes.append({"name": route.name, "description": route.config.description or "",
                       "available": sum(t["state"] != "ejected" for t in targets), "hold_s": route.config.hold_s,
                       "held": parts.held.get(route.name, 0) if parts.held is not None else None,
                       "targets": targets})
        for span in route.pools:
            if span.provider not in seen:
                seen.add(span.provider)
                pool = _pool(span, route, parts, now)
                queued += pool["queued"]
                pools.append(pool)
    failovers = [{"at": round(wall - (now - f.at), 3), "route": f.route, "from": public_key(f.source),
                  "to": public_key(f.target), "reason": f.reason} for f in parts.failovers.latest(FAILOVERS_SHOWN)]
    return {"object": "recloser.console_state", "at": round(wall, 3),
            "policy": {"source": parts.policy, "sha256": parts.policy_sha256}, "pid": parts.pid,
            "routes": routes, "pools": pools,
            "waiting": {"held": sum(parts.held.values()) if parts.held is not None else None,
                        "max_held": parts.max_held, "queued_for_pools": queued},
            "failovers": failovers, "spend": _spend(parts, wall)}
