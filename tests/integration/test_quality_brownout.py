"""Quality brownouts end to end: a simulator switched to fluent wrong answers is caught by canaries,
loses its traffic, shows why in the admin view, and gets its traffic back once it answers well again."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import httpx
import openai

from gateway.serving.embedded import EmbeddedGateway
from gateway.quality.checks import SHOWN_CHARS
from gateway.routing.breaker import State
from gateway.sim import Fault
from tests.conftest import GatewayFactory

ADMIN, USER = "sk-ops", "sk-user"
PRIMARY = "primary/frontier"


def policy(canaries: str) -> str:
    return f"""
    version: 1
    canaries: {canaries}
    # Latency is not what these tests are about: on a busy test machine a stall of a few hundred
    # milliseconds would make a simulator "slow" (degraded, or slower than its peer), so only
    # slowdowns far beyond any stall count here, and no request goes exploring.
    breaker: {{degraded_share: 0.1, base_ejection_s: 60, slow_min_s: 5, slow_ttft_factor: 1000,
               eject_ttft_factor: 10000, explore_percent: 0}}
    providers:
      primary: {{kind: sim}}
      secondary: {{kind: sim}}
    routes:
      chat:
        targets:
          - {{provider: primary, model: frontier}}
          - {{provider: secondary, model: small}}
    auth:
      keys:
        - {{id: ops, sha256: {hashlib.sha256(ADMIN.encode()).hexdigest()}, team: platform, app: ops, admin: true}}
        - {{id: web, sha256: {hashlib.sha256(USER.encode()).hexdigest()}, team: search, app: web}}
    """


def shares(gw: EmbeddedGateway, n: int) -> Counter[str]:
    client = openai.OpenAI(base_url=gw.base_url, api_key=USER, max_retries=0)
    seen: Counter[str] = Counter()
    for _ in range(n):
        raw = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hello"}])
        seen[raw.headers["x-recloser-provider"]] += 1
    client.close()
    return seen


def runs_so_far(gw: EmbeddedGateway) -> int:
    assert gw.context.canaries is not None
    return gw.context.canaries.quality[PRIMARY].runs


def wait_runs(gw: EmbeddedGateway, n: int) -> None:
    runner = gw.context.canaries
    assert runner is not None
    gw.run(runner.runs_done(PRIMARY, n), timeout=30)


def state_within_runs(gw: EmbeddedGateway, wanted: State, runs: int) -> tuple[int, str]:
    """Waits run by run (at most `runs` more) until the primary is in `wanted`; (runs taken, reason)."""
    start = runs_so_far(gw)
    for k in range(1, runs + 1):
        wait_runs(gw, start + k)
        h = gw.context.board.healths[PRIMARY]
        if h.state is wanted:
            return k, h.reason
    return runs + 1, gw.context.board.healths[PRIMARY].reason


def metrics(gw: EmbeddedGateway) -> str:
    return httpx.get(gw.url + "/metrics").text


def test_wrong_answers_degrade_the_deployment_for_quality_and_its_traffic_falls_then_recovers(
        start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("{interval_s: 0.05, eject_below: 0}"))
    wait_runs(gw, 2)
    assert shares(gw, 40)["primary"] == 40

    gw.set_fault("primary", Fault(dumb=True))
    runs, reason = state_within_runs(gw, State.DEGRADED, 3)
    assert runs <= 3 and reason.startswith("quality: canaries pass")
    degraded = shares(gw, 100)
    assert degraded["primary"] < 25, degraded        # degraded_share 0.1 of 100, with room for chance
    assert gw.context.board.healths[PRIMARY].state is State.DEGRADED

    gw.set_fault("primary", None)
    runs, reason = state_within_runs(gw, State.HEALTHY, 3)
    assert runs <= 3 and reason == "recovered"
    assert shares(gw, 40)["primary"] == 40


def test_mostly_wrong_answers_eject_and_passing_canaries_bring_it_back(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("{interval_s: 0.05}"))
    wait_runs(gw, 2)
    gw.set_fault("primary", Fault(dumb=True))
    runs, reason = state_within_runs(gw, State.EJECTED, 3)
    assert runs <= 3 and reason.startswith("quality")
    assert shares(gw, 20) == Counter({"secondary": 20})

    gw.set_fault("primary", None)
    state_within_runs(gw, State.PROBING, 3)
    shares(gw, 5)   # real requests probe it (probe_requests successes end probing)
    assert gw.context.board.healths[PRIMARY].state is State.HEALTHY


def test_the_admin_view_shows_the_last_failing_items_truncated(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("{interval_s: 0.05, eject_below: 0}"))
    wait_runs(gw, 2)   # its baseline first: a deployment is judged against its own
    gw.set_fault("primary", Fault(dumb=True))
    assert state_within_runs(gw, State.DEGRADED, 3)[0] <= 3
    rows = {r["provider"]: r for r in httpx.get(gw.url + "/admin/deployments",
                                                 headers={"Authorization": f"Bearer {ADMIN}"}).json()["data"]}
    primary, secondary = rows["primary"], rows["secondary"]
    assert primary["state"] == "degraded" and primary["reason"].startswith("quality")
    failing = {f["item"]: f for f in primary["canaries"]["failing"]}
    assert failing["add"] == {"item": "add", "check": "regex", "result": "fail", "got": "The answer is 43."}
    assert "arguments are not JSON" in failing["tool-call"]["got"]
    assert all(len(f["got"]) <= SHOWN_CHARS for f in failing.values())
    assert primary["canaries"]["last_pass_ratio"] == 0.0 and primary["canaries"]["baseline_pass_ratio"] == 1.0
    assert secondary["canaries"]["failing"] == [] and secondary["canaries"]["last_pass_ratio"] == 1.0


def test_canary_calls_are_not_user_traffic(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("{interval_s: 0.05}"))
    wait_runs(gw, 2)
    text = metrics(gw)
    assert "recloser_requests_total{" not in text
    assert "recloser_upstream_attempts_total{" not in text
    assert re.search(r'recloser_canary_runs_total\{model="frontier",provider="primary",result="pass"\} (\d+)', text)
    assert 'recloser_canary_pass_ratio{model="frontier",provider="primary"} 1.0' in text
    assert gw.context.board.healths[PRIMARY].window.totals(0, 30) == (0, 0)


def test_a_reload_moves_the_canaries_to_the_deployments_of_the_new_policy(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy("{interval_s: 0.05}"))
    runner = gw.context.canaries
    assert runner is not None
    wait_runs(gw, 1)
    path = Path(gw.context.policy.source)
    path.write_text(path.read_text().replace("model: small", "model: larger"))   # secondary/small → secondary/larger
    assert gw.context.reloader is not None
    assert gw.run(gw.context.reloader.reload("test")).result == "ok"

    runs = gw.run(runner.runs_done("secondary/larger", 2)).runs
    assert runs >= 2 and "secondary/small" not in runner.current
    seen_small = runner.quality["secondary/small"].runs
    wait_runs(gw, runs_so_far(gw) + 3)
    assert runner.quality["secondary/small"].runs == seen_small   # no more canary spend on it
