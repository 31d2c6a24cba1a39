"""Canary spend: metered in the ledger as the gateway's own, stopped at its daily budget, never a team's."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx

from gateway.serving.embedded import EmbeddedGateway
from gateway.metering.ledger import ledger_files, read_ledger
from gateway.policy.load import load_policy
from gateway.canaries.budget import CANARY_TEAM
from tests.conftest import free_port, write_policy

ROOT = Path(__file__).resolve().parents[2]

USER = "sk-search-web"
# Dear tokens, so that a few canary items cost real money: the sim reports its usage.
PRICES = "{input_usd_per_mtok: 1000, output_usd_per_mtok: 2000}"


def policy(ledger: Path, budget_usd: str) -> str:
    return f"""
    version: 1
    canaries: {{interval_s: 3600, budget_usd: {budget_usd}, max_tokens: 16}}
    metering: {{ledger: {{path: {ledger}}}}}
    budgets:
      - {{name: search-daily, team: search, period: day, limit_usd: 0.01, action: reject}}
    providers:
      frontier: {{kind: sim, models: {{big: {PRICES}}}}}
    routes:
      chat: {{targets: [{{provider: frontier, model: big}}]}}
    auth:
      keys:
        - {{id: web, sha256: {hashlib.sha256(USER.encode()).hexdigest()}, team: search, app: web}}
    """


def gateway(tmp_path: Path, ledger: Path, budget_usd: str) -> EmbeddedGateway:
    path = write_policy(tmp_path, policy(ledger, budget_usd))
    return EmbeddedGateway(load_policy(path), background_canaries=False).start()


def canary_lines(ledger: Path) -> list[dict[str, object]]:
    return [r for r in read_ledger(ledger_files(ledger)) if r["kind"] == "canary"]


def run_until_skipped(gw: EmbeddedGateway, most: int = 200) -> int:
    """Runs the suite until a whole run is skipped for the budget; how many runs that took."""
    runner = gw.context.canaries
    assert runner is not None
    d = runner.deployments[0]
    for n in range(1, most + 1):
        run = gw.run(runner.run_suite(d))
        if all(r.result == "skipped" for r in run.results):
            return n
    raise AssertionError(f"the canaries were still spending after {most} runs")


def test_canary_spend_stops_at_the_daily_budget_and_a_restart_does_not_renew_it(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = gateway(tmp_path, ledger, "0.5")
    try:
        runs = run_until_skipped(gw)
        gw.run(gw.context.meter.drain())
        metrics = httpx.get(gw.url + "/metrics").text
    finally:
        gw.stop()
    lines = canary_lines(ledger)
    spent = sum(Decimal(str(r["cost_usd"])) for r in lines)
    assert runs > 1 and Decimal("0.25") < spent <= Decimal("0.5")
    assert {r["team"] for r in lines} == {CANARY_TEAM} and all(Decimal(str(r["cost_usd"])) > 0 for r in lines)
    assert 'recloser_cost_usd_total{app="canary",model="big",provider="frontier",route="(canary)",team="recloser-canary"}' \
        in metrics
    assert 'recloser_tokens_total{app="canary",endpoint="chat",model="big",provider="frontier",route="(canary)",' \
        'team="recloser-canary",type="output"}' in metrics

    again = gateway(tmp_path, ledger, "0.5")
    try:
        assert run_until_skipped(again) == 1
    finally:
        again.stop()
    assert len(canary_lines(ledger)) == len(lines)


def test_canary_calls_never_count_against_a_teams_budget(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = gateway(tmp_path, ledger, "0.5")
    try:
        run_until_skipped(gw)   # far more than the team's 0.01 USD a day
        answer = httpx.post(gw.base_url + "/chat/completions", headers={"Authorization": f"Bearer {USER}"},
                            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
        assert answer.status_code == 200
    finally:
        gw.stop()
    restarted = gateway(tmp_path, ledger, "0.5")   # budgets are rebuilt from the ledger at start-up
    try:
        (budget,) = restarted.context.meter.budgets.budgets
        spent = restarted.context.meter.budgets.spent(budget, restarted.context.meter.now_utc())
        assert 0 < spent < Decimal("0.01")   # the one request's cost, none of the canaries'
    finally:
        restarted.stop()


def test_workers_share_the_canaries_daily_budget(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    # Cheap enough per item that each worker alone would spend most of the whole budget.
    text = policy(ledger, "2.0").replace("interval_s: 3600", "interval_s: 0.05") \
        .replace(PRICES, "{input_usd_per_mtok: 100, output_usd_per_mtok: 100}")
    path = write_policy(tmp_path, text)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--policy", str(path), "--port", str(port),
                             "--workers", "2"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        skipped = 0.0
        while skipped < 200 and time.monotonic() < deadline:   # both workers well past their part
            time.sleep(0.2)
            try:
                scrape = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.TransportError:
                continue
            skipped = sum(float(line.rsplit(" ", 1)[1]) for line in scrape.splitlines()
                          if line.startswith("recloser_canary_runs_total{") and 'result="skipped"' in line)
        assert skipped >= 200, "the canaries should have reached their budget"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    spent = sum(Decimal(str(r["cost_usd"])) for r in canary_lines(ledger))
    assert Decimal("1.0") < spent <= Decimal("2.0")   # alone, each would have stopped near 2.0
