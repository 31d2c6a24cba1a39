"""The console's snapshot: a pure function of the health board, the last minute's traffic, the pools, the
failover ring and the spend books, at a given clock and wall time. No sockets."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from gateway.core.metrics import Metrics
from gateway.metering.budgets import BudgetBook
from gateway.metering.spend_today import SpendToday
from gateway.policy.load import parse_policy
from gateway.policy.schema import PolicyDocument
from gateway.routing.breaker import Outcome
from gateway.routing.failovers import Failover, FailoverRing
from gateway.routing.health import HealthBoard
from gateway.routing.pool_metrics import Reading
from gateway.routing.pools import PoolBoard
from gateway.routing.table import Routing, build_routing, resolve_upstreams
from gateway.routing.traffic import TrafficBook
from gateway.serving.console.state import Parts, console_state

UPSTREAM_KEY = "sk-frontier-secret-1234"
POLICY = f"""
version: 1
providers:
  frontier:
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: {UPSTREAM_KEY}
  gpus:
    kind: openai
    endpoints: [http://10.0.0.1:8000/v1, "http://ops:hunter2@10.0.0.2:8000/v1"]
    server: vllm
routes:
  chat:
    description: frontier first
    targets:
      - {{provider: frontier, model: gpt-4o-mini}}
      - {{provider: gpus, model: llama, tier: 2}}
budgets:
  - {{name: search-daily, team: search, period: day, limit_usd: 10, action: warn}}
"""
NOW, WALL = 1_000.0, 1_796_600_000.0   # the gateway's clock and the Unix time read with it


class Gateway:
    """The in-memory parts a running gateway holds, built from POLICY."""

    def __init__(self) -> None:
        self.doc: PolicyDocument = parse_policy(textwrap.dedent(POLICY).lstrip("\n"), "p.yaml", {}).document
        self.routing: Routing = build_routing(self.doc, resolve_upstreams(self.doc, {}))
        self.clock = [0.0]
        metrics = Metrics()
        self.board = HealthBoard(self.routing.deployments(), metrics, lambda: self.clock[0], self.doc.breaker)
        self.board.track(self.routing.deployments(), list(self.routing.routes.values()))
        self.traffic = TrafficBook()
        self.pools = PoolBoard(metrics, lambda: self.clock[0])
        self.failovers = FailoverRing(size=3)
        self.budgets = BudgetBook(self.doc.budgets)
        self.spend = SpendToday()

    @property
    def chat(self):  # type: ignore[no-untyped-def]
        return self.routing.routes["chat"]

    def state(self, now: float = NOW, wall: float = WALL, held: dict[str, int] | None = None) -> dict:  # type: ignore[type-arg]
        parts = Parts(held=held, max_held=None if held is None else 100, routes=tuple(self.routing.routes.values()), healths=self.board.healths,
                      probes=self.board.probes, traffic=self.traffic, pools=self.pools, failovers=self.failovers,
                      budgets=self.budgets, spend=self.spend, policy="p.yaml", policy_sha256="ab" * 32)
        return console_state(parts, now, wall)


def target(state: dict, name: str) -> dict:  # type: ignore[type-arg]
    (route,) = [r for r in state["routes"] if r["name"] == "chat"]
    (row,) = [t for t in route["targets"] if t["target"] == name]
    return row  # type: ignore[no-any-return]


def eject_frontier(gw: Gateway, at: float) -> None:
    """Five timeouts in a row from `at` on, one a second: ejected at `at` + 4, for 30 s."""
    for i in range(5):
        gw.board.record(gw.chat.deployments[0], Outcome(ok=False, at=at + i, reason="timeout"), gw.chat.breaker)


def test_an_ejected_target_shows_its_state_reason_and_since_when_in_wall_time() -> None:
    gw = Gateway()
    eject_frontier(gw, 990.0)
    row = target(gw.state(), "frontier/gpt-4o-mini")
    assert row["state"] == "ejected"
    assert row["reason"] == "5 failures in a row (timeout)"
    assert row["since"] == WALL - (NOW - 994.0)
    assert row["back_in_s"] == 24.0     # ejected for 30 s at 994
    assert gw.state()["routes"][0]["available"] == 2


def test_an_ejection_that_ran_out_shows_as_probing() -> None:
    gw = Gateway()
    eject_frontier(gw, 900.0)
    row = target(gw.state(), "frontier/gpt-4o-mini")
    assert (row["state"], row["reason"], row["back_in_s"]) == ("probing", "probing after ejection", None)


def test_share_error_rate_and_ttft_p50_count_the_last_minute_only() -> None:
    gw = Gateway()
    gw.traffic.add("chat", "frontier/gpt-4o-mini", True, 900.0, 9.0)     # older than a minute: left out
    for i, ttft in enumerate((0.1, 0.3, 0.2)):
        gw.traffic.add("chat", "frontier/gpt-4o-mini", True, 950.0 + i, ttft)
    gw.traffic.add("chat", "frontier/gpt-4o-mini", False, 960.0)
    gw.traffic.add("chat", "gpus/llama@10.0.0.1:8000", True, 970.0, 0.05)
    row = target(gw.state(), "frontier/gpt-4o-mini")
    assert (row["attempts_1m"], row["failed_1m"], row["error_rate_1m"], row["ttft_p50_s"]) == (4, 1, 0.25, 0.2)
    assert row["share_1m"] == 0.8
    assert target(gw.state(), "gpus/llama@10.0.0.1:8000")["share_1m"] == 0.2


def test_tiers_and_quality_are_shown_per_target() -> None:
    gw = Gateway()
    row = target(gw.state(), "gpus/llama@10.0.0.1:8000")
    assert (row["tier"], row["below_best_tier"], row["quality"]) == (2, True, "ok")
    assert target(gw.state(), "frontier/gpt-4o-mini")["below_best_tier"] is False


def test_pools_show_each_replicas_load_kv_use_and_the_queue() -> None:
    gw = Gateway()
    span = gw.chat.pools[0]
    gw.pools.read(span, span.urls[0], Reading(running=3, waiting=1, kv=0.42), at=999.0)
    (pool,) = gw.state()["pools"]
    first, second = pool["replicas"]
    assert (first["endpoint"], first["running"], first["waiting"], first["kv_cache"]) == ("10.0.0.1:8000", 3, 1, 0.42)
    assert first["utilisation"] == 1.0          # a queue stands: no room left
    assert (second["running"], second["read_age_s"]) == (None, None)
    assert (pool["queued"], pool["server"]) == (0, "vllm")


def test_failovers_are_newest_first_in_wall_time_and_the_ring_is_bounded() -> None:
    gw = Gateway()
    for i in range(5):
        gw.failovers.add(Failover(990.0 + i, "chat", "frontier/gpt-4o-mini", "gpus/llama@10.0.0.1:8000", f"r{i}"))
    shown = gw.state()["failovers"]
    assert [f["reason"] for f in shown] == ["r4", "r3", "r2"]
    assert shown[0] == {"at": WALL - 6.0, "route": "chat", "from": "frontier/gpt-4o-mini",
                        "to": "gpus/llama@10.0.0.1:8000", "reason": "r4"}


def test_spend_today_per_team_against_its_budget() -> None:
    gw = Gateway()
    gw.spend.add("search", Decimal("1.5"), WALL)
    gw.spend.add("ads", Decimal("0.25"), WALL)
    gw.spend.add("ads", Decimal("7"), WALL - 86_400)   # yesterday's day was replaced by today's
    gw.spend.add("ads", Decimal("0.25"), WALL)
    gw.budgets.add("search", "web", Decimal("2.5"), datetime.fromtimestamp(WALL, UTC))
    spend = gw.state()["spend"]
    # The budget's own tally (ledger, replicas) is the larger, so it is what the team is shown to have spent.
    assert spend["teams"] == [{"team": "search", "spent_usd": 2.5}, {"team": "ads", "spent_usd": 0.25}]
    (budget,) = spend["budgets"]
    assert (budget["name"], budget["spent_usd"], budget["limit_usd"], budget["used"]) == ("search-daily", 2.5, 10.0, 0.25)


def test_spend_of_an_earlier_day_is_not_today() -> None:
    spend = SpendToday()
    spend.add("search", Decimal(1), WALL)
    assert spend.by_team(WALL + 86_400) == {}


def test_the_snapshot_names_no_key_and_no_credential_of_an_endpoint() -> None:
    gw = Gateway()
    span = gw.chat.pools[0]
    gw.pools.read(span, span.urls[1], Reading(running=1, waiting=0, kv=0.1), at=999.0)
    gw.failovers.add(Failover(999.0, "chat", gw.chat.deployments[2].key, "frontier/gpt-4o-mini", "timeout"))
    text = orjson.dumps(gw.state()).decode()
    assert "10.0.0.2:8000" in text
    for secret in (UPSTREAM_KEY, "hunter2", "ops:", "api.openai.com"):
        assert secret not in text


def test_held_requests_are_counted_per_route_and_in_all_or_not_at_all_where_none_are_held() -> None:
    gw = Gateway()
    assert (gw.state()["waiting"]["held"], gw.state()["routes"][0]["held"]) == (None, None)
    state = gw.state(held={"chat": 3, "gone": 1})    # a route a reload dropped still has its held requests
    assert (state["routes"][0]["held"], state["waiting"]["held"], state["waiting"]["max_held"]) == (3, 4, 100)
