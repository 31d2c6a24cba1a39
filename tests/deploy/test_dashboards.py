"""Every panel query of every Grafana dashboard, template variables substituted, is evaluated by a
real Prometheus scraping a gateway that served a failover, retries, a hedge, a resumed stream, a
shed request, a request held through an outage, answers below the route's quality tier, a policy reload and spend for two teams, runs
quality canaries, and shares its state through a real redis-server: each must parse and return data."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import GatewayFactory
from tests.redis_server import RedisServer
from tests.integration.test_prometheus import Prometheus, prometheus  # noqa: F401  (the fixture)

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
KEYS = {"search": "sk-search-key", "ads": "sk-ads-key", "ops": "sk-ops-key"}
# What Grafana puts in place of its variables: every template variable at its "All" value.
SUBSTITUTES = {"__rate_interval": "5m", "__interval": "15s", "__range": "1h",
               "team": ".*", "route": ".*", "provider": ".*"}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def policy(redis_url: str, ledger: Path) -> str:
    return POLICY + (f"state: {{redis_url: '{redis_url}', sync_ms: 100}}\n"
                     f"metering: {{ledger: {{path: '{ledger}'}}}}\n")


POLICY = f"""
version: 1
auth:
  keys:
    - {{id: search, sha256: {digest(KEYS["search"])}, team: search, app: web}}
    - {{id: ads, sha256: {digest(KEYS["ads"])}, team: ads, app: bidder}}
    - {{id: ops, sha256: {digest(KEYS["ops"])}, team: platform, app: ops, admin: true}}
providers:
  alpha:
    kind: sim
    models:
      alpha-model: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}
      strict-model: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}
  beta:
    kind: sim
    models:
      beta-model: {{input_usd_per_mtok: 3, output_usd_per_mtok: 6}}
  gamma:
    kind: sim
    sim: {{chunk_delay_s: 0.01}}
    models:
      gamma-model: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}
  slow:
    kind: sim
    sim: {{first_token_delay_s: 0.5}}
    models:
      slow-model: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}
  own:
    kind: sim
    credentials: client
    models:
      own-model: {{input_usd_per_mtok: 3, output_usd_per_mtok: 15}}
  down:
    kind: sim
  gpus:
    kind: sim
    endpoints: 2
    load: {{scrape_s: 0.2}}
    sim: {{gpu: {{max_batch: 4}}}}
    models:
      llama: {{input_usd_per_mtok: 0.1, output_usd_per_mtok: 0.2}}
breaker: {{consecutive_failures: 3, base_ejection_s: 300, probe_interval_s: 0.5}}
canaries: {{interval_s: 1, jitter: 0.2, timeout_s: 2}}
budgets:
  - {{name: ads-daily, team: ads, period: day, limit_usd: 1000, action: warn, warn_at_percent: 0}}
routes:
  chat:
    targets:
      - {{provider: alpha, model: alpha-model}}
      - {{provider: beta, model: beta-model, tier: 2}}
  strict:
    retry: {{budget_percent: 0, budget_min_per_s: 0}}
    targets:
      - {{provider: alpha, model: strict-model}}
      - {{provider: beta, model: beta-model}}
  resume:
    mid_stream: resume
    targets:
      - {{provider: gamma, model: gamma-model}}
      - {{provider: beta, model: beta-model}}
  hedged:
    hedge: {{after_s: 0.05, max_percent: 100}}
    targets:
      - {{provider: slow, model: slow-model}}
      - {{provider: beta, model: beta-model}}
  mystery:
    targets:
      - {{provider: beta, model: mystery-model}}
  local:
    targets:
      - {{provider: gpus, model: llama}}
      - {{provider: beta, model: beta-model}}
  own:
    targets:
      - {{provider: own, model: own-model}}
      - {{provider: beta, model: beta-model}}
  held:
    hold_s: 1
    targets:
      - {{provider: down, model: down-model}}
"""
# A prompt of several chunks: the turns after the first find it on their replica (prefix hits).
POOL_SYSTEM = {"role": "system", "content": "You answer questions about the runbook. " * 30}


def chat(gw: EmbeddedGateway, team: str, route: str, stream: bool = False) -> httpx.Response:
    body = {"model": route, "stream": stream, "messages": [{"role": "user", "content": "hello there"}]}
    return httpx.post(gw.base_url + "/chat/completions", json=body, timeout=20,
                      headers={"Authorization": f"Bearer {KEYS[team]}"})


def on_own_credentials(gw: EmbeddedGateway, team: str) -> None:
    """A call a developer's own key pays for (the gateway key in x-recloser-key)."""
    body = {"model": "own", "messages": [{"role": "user", "content": "hello there"}]}
    r = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=20,
                   headers={"Authorization": f"Bearer sk-proj-own-{team}", "x-recloser-key": KEYS[team]})
    assert r.status_code == 200 and r.headers["x-recloser-provider"] == "own", r.text


def pooled(gw: EmbeddedGateway, team: str, turn: int) -> None:
    """One turn of a conversation on the local pool's route."""
    body = {"model": "local", "messages": [POOL_SYSTEM, *[{"role": "user", "content": f"turn {n}"} for n in range(turn + 1)]]}
    r = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=20,
                   headers={"Authorization": f"Bearer {KEYS[team]}"})
    assert r.status_code == 200 and r.headers["x-recloser-provider"] == "gpus", r.text


def crossed(gw: EmbeddedGateway, team: str) -> httpx.Response:
    """A Messages request asking for thinking, on a route of chat targets: served, with `thinking` dropped."""
    body = {"model": "chat", "max_tokens": 20, "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": "hello there"}]}
    r = httpx.post(gw.url + "/v1/messages", json=body, timeout=20, headers={"x-api-key": KEYS[team]})
    assert r.status_code == 200 and r.headers["x-recloser-dropped"] == "thinking"
    return r


def serve_the_traffic(gw: EmbeddedGateway) -> int:
    """Every kind of event the dashboards show; returns how many client requests it made."""
    gw.set_fault("alpha", Fault(status=503))
    assert chat(gw, "search", "strict").status_code == 200           # retry refused by the budget, failover
    for _ in range(3):
        assert chat(gw, "search", "chat").status_code == 200         # retries, failovers, then alpha ejected
    gw.set_fault("alpha", None)
    gw.set_fault("gamma", Fault(cut_after_chunks=2))
    r = chat(gw, "search", "resume", stream=True)
    assert r.status_code == 200 and "error" not in r.text             # resumed on beta
    gw.set_fault("gamma", None)
    hedged = chat(gw, "ads", "hedged")
    assert hedged.headers["x-recloser-provider"] == "beta"           # the hedge won
    for team in ("search", "ads"):
        for stream in (False, True):
            assert chat(gw, team, "chat", stream).status_code == 200
            assert chat(gw, team, "resume", stream).status_code == 200
    gw.set_fault("beta", Fault(broken="wrong_script"))
    assert chat(gw, "ads", "mystery").status_code == 200             # unpriced, and an answer in the wrong script
    gw.set_fault("beta", None)
    for turn in range(2):
        pooled(gw, "search", turn)                                   # the local pool, a prefix hit
    crossed(gw, "search")                                            # a feature dropped across wires
    on_own_credentials(gw, "search")                                 # paid by the caller's own key
    gw.set_fault("down", Fault(refuse=True))
    assert chat(gw, "search", "held").status_code == 503             # held for its hold_s, then its error
    gw.context.admission.cap = 0
    assert chat(gw, "search", "chat").status_code == 503             # shed
    gw.context.admission.cap = gw.context.admission.max_in_flight
    assert httpx.post(gw.url + "/admin/reload", headers={"Authorization": f"Bearer {KEYS['ops']}"}).status_code == 200
    return 20                                                        # the shed one is counted apart


def steady_traffic(gw: EmbeddedGateway) -> None:
    """Answers after Prometheus has seen the series once, so rates, ratios and quantiles have a change to show."""
    for team in ("search", "ads"):
        for stream in (False, True):
            for route in ("chat", "resume", "hedged"):
                assert chat(gw, team, route, stream).status_code == 200
        crossed(gw, team)
        on_own_credentials(gw, team)
        for turn in range(2, 4):
            pooled(gw, team, turn)
    gw.set_fault("beta", Fault(broken="wrong_script"))
    assert chat(gw, "ads", "mystery").status_code == 200             # another answer defect
    gw.set_fault("beta", None)


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def substitute(expr: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in SUBSTITUTES, f"unknown template variable ${name} in {expr}"
        return SUBSTITUTES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, PromQL with variables substituted) for every target of every panel."""
    out = []
    for d in dashboards():
        for p in panels(d):
            assert p.get("targets"), f"{d['title']}: panel '{p['title']}' has no query"
            out += [(d["title"], p["title"], substitute(t["expr"])) for t in p["targets"]]
    return out


def test_the_dashboards_are_the_two_the_ops_kit_ships_with_their_variables() -> None:
    titles = {d["title"]: d for d in dashboards()}
    assert set(titles) == {"Recloser — traffic and brownouts", "Recloser — spend"}
    for d in titles.values():
        names = {v["name"] for v in d["templating"]["list"]}
        assert {"team", "route", "provider"} <= names


@pytest.fixture
def scraped(start_gateway: GatewayFactory, prometheus: Callable[[str], Prometheus],  # noqa: F811
            redis_server: RedisServer, tmp_path: Path) -> Prometheus:
    gw = start_gateway(policy(redis_server.url, tmp_path / "ledger.jsonl"))
    prom = prometheus(f"127.0.0.1:{gw.port}")
    served = serve_the_traffic(gw)
    prom.wait_for("sum(recloser_requests_total)", served)
    steady_traffic(gw)
    gw.run(gw.context.meter.drain())
    return prom


def returns_data(prom: Prometheus, promql: str, deadline: float) -> list[dict[str, Any]]:
    """The query's result once it has one (Prometheus needs two scrapes after the traffic for a rate)."""
    while True:
        r = httpx.get(prom.url + "/api/v1/query", params={"query": promql}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{promql}: {body.get('error')}"
        result: list[dict[str, Any]] = body["data"]["result"]
        if any(not math.isnan(float(s["value"][1])) for s in result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_every_panel_query_parses_and_returns_data(scraped: Prometheus) -> None:
    deadline = time.monotonic() + 60
    empty = []
    for dashboard, panel, promql in queries():
        result = returns_data(scraped, promql, deadline)
        if not any(not math.isnan(float(s["value"][1])) for s in result):
            empty.append(f"{dashboard} / {panel}: {promql}")
    assert empty == [], "panels without data:\n" + "\n".join(empty)


def test_every_template_variable_lists_values(scraped: Prometheus) -> None:
    for d in dashboards():
        for v in d["templating"]["list"]:
            if v["type"] != "query":
                continue
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", v["query"]["query"]).groups()  # type: ignore[union-attr]
            values = httpx.get(scraped.url + f"/api/v1/label/{label}/values", params={"match[]": metric}).json()["data"]
            assert values, f"{d['title']}: ${v['name']} lists nothing"
            if v["name"] == "team":
                assert {"search", "ads"} <= set(values)
