"""What ops see of a brownout: the admin view of deployments, the metrics, and the final errors."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import GatewayFactory

ADMIN, USER = "sk-ops", "sk-user"
POLICY_TEMPLATE = f"""
version: 1
breaker: {{consecutive_failures: 2, base_ejection_s: 30, panic_percent: PANIC}}
providers:
  openai: {{kind: sim}}
  anthropic: {{kind: sim}}
  local: {{kind: sim}}
routes:
  chat:
    retry: {{attempts: 1}}
    targets:
      - {{provider: openai, model: gpt-4o-mini}}
      - {{provider: anthropic, model: claude}}
      - {{provider: local, model: llama}}
auth:
  keys:
    - {{id: ops, sha256: {hashlib.sha256(ADMIN.encode()).hexdigest()}, team: platform, app: ops, admin: true}}
    - {{id: web, sha256: {hashlib.sha256(USER.encode()).hexdigest()}, team: search, app: web}}
"""
POLICY = POLICY_TEMPLATE.replace("PANIC", "0")
HELLO = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)


def post(gw: EmbeddedGateway) -> httpx.Response:
    return httpx.post(gw.base_url + "/chat/completions", json=HELLO, headers={"Authorization": f"Bearer {USER}"})


def deployments(gw: EmbeddedGateway, key: str = ADMIN) -> httpx.Response:
    return httpx.get(gw.url + "/admin/deployments", headers={"Authorization": f"Bearer {key}"})


def test_the_admin_view_needs_an_admin_key(gw: EmbeddedGateway) -> None:
    assert deployments(gw, USER).status_code == 403
    assert deployments(gw, "nope").status_code == 401


def test_the_admin_view_shows_an_ejection_with_its_reason_and_time(gw: EmbeddedGateway) -> None:
    gw.set_fault("openai", Fault(status=429, retry_after_s=40))
    assert post(gw).headers["x-recloser-provider"] == "anthropic"
    rows = {r["provider"]: r for r in deployments(gw).json()["data"]}
    assert rows["openai"]["state"] == "ejected"
    assert "rate limited" in rows["openai"]["reason"]
    assert 35 < rows["openai"]["ejected_for_s"] <= 40
    assert rows["openai"]["ejections"] == 1
    assert rows["anthropic"]["state"] == "healthy"
    assert rows["anthropic"]["ttft_baseline_s"] is None and rows["anthropic"]["latency_baseline_s"] > 0
    assert set(rows["local"]) >= {"provider", "model", "state", "reason", "ejected_for_s", "error_rate", "ejections"}


def test_the_final_error_names_every_target_and_carries_retry_after(gw: EmbeddedGateway) -> None:
    gw.set_fault("openai", Fault(status=429, retry_after_s=40))
    gw.set_fault("anthropic", Fault(status=500))
    gw.set_fault("local", Fault(refuse=True))
    post(gw)
    post(gw)  # anthropic and local now have two failures in a row each: ejected
    r = post(gw)
    assert r.status_code == 503
    message = r.json()["error"]["message"]
    assert message.startswith("All 3 targets of route 'chat' are unavailable:")
    assert "openai/gpt-4o-mini ejected (rate limited" in message
    assert "anthropic/claude" in message and "local/llama" in message
    assert 1 <= int(r.headers["Retry-After"]) <= 40


def test_in_panic_every_target_is_tried_again(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY_TEMPLATE.replace("PANIC", "50"))
    for name in ("openai", "anthropic", "local"):
        gw.set_fault(name, Fault(status=500))
    post(gw)
    post(gw)  # every target has failed twice in a row: all ejected
    assert {r["state"] for r in deployments(gw).json()["data"]} == {"ejected"}
    for name in ("openai", "anthropic", "local"):
        gw.set_fault(name, None)
    r = post(gw)
    assert r.status_code == 200 and r.headers["x-recloser-provider"] == "openai"


def test_metrics_show_state_attempts_failovers_and_transitions(gw: EmbeddedGateway) -> None:
    gw.set_fault("openai", Fault(status=500))
    for _ in range(3):
        post(gw)
    text = httpx.get(gw.url + "/metrics").text
    assert 'recloser_deployment_state{model="gpt-4o-mini",provider="openai",state="ejected"} 1.0' in text
    assert 'recloser_deployment_state{model="gpt-4o-mini",provider="openai",state="healthy"} 0.0' in text
    assert ('recloser_upstream_attempts_total{model="gpt-4o-mini",outcome="server_error",provider="openai",'
            'route="chat"} 2.0') in text
    assert ('recloser_failovers_total{from_provider="openai",reason="server_error",route="chat",'
            'to_provider="anthropic"} 2.0') in text
    assert ('recloser_breaker_transitions_total{from_state="healthy",model="gpt-4o-mini",provider="openai",'
            'to_state="ejected"} 1.0') in text
