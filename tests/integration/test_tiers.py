"""Quality tiers: an answer served below the route's intended quality is labelled, counted and recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import openai

from gateway.serving.embedded import EmbeddedGateway
from gateway.metering.ledger import ledger_files, read_ledger
from gateway.sim import Fault
from tests.conftest import GatewayFactory

USER = "sk-search-web"


def policy(ledger: Path) -> str:
    return f"""
    version: 1
    providers:
      frontier: {{kind: sim}}
      local: {{kind: sim}}
    metering: {{ledger: {{path: {ledger}}}}}
    routes:
      chat:
        retry: {{attempts: 1}}
        targets:
          - {{provider: frontier, model: big}}
          - {{provider: local, model: small, tier: 2}}
      flat:
        retry: {{attempts: 1}}
        targets:
          - {{provider: frontier, model: big}}
          - {{provider: local, model: small}}
    auth:
      keys:
        - {{id: web, sha256: {hashlib.sha256(USER.encode()).hexdigest()}, team: search, app: web}}
    """


def ask(gw: EmbeddedGateway, route: str, stream: bool = False) -> dict[str, str]:
    client = openai.OpenAI(base_url=gw.base_url, api_key=USER, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=route, messages=[{"role": "user", "content": "hello"}], stream=stream)
    if stream:
        list(raw.parse())   # read the stream to its end
    headers = dict(raw.headers)
    client.close()
    return headers


def ledger_lines(gw: EmbeddedGateway, ledger: Path) -> list[dict[str, object]]:
    gw.run(gw.context.meter.drain())
    return list(read_ledger(ledger_files(ledger)))


def degraded_count(gw: EmbeddedGateway, route: str) -> float:
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith("recloser_degraded_answers_total{") and f'route="{route}"' in line:
            assert 'team="search"' in line and 'tier="2"' in line, line
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_answer_from_a_tier_two_target_after_tier_one_fails_is_labelled_counted_and_recorded(
        start_gateway: GatewayFactory, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = start_gateway(policy(ledger))
    healthy = ask(gw, "chat")
    assert healthy["x-recloser-provider"] == "frontier" and "x-recloser-degraded" not in healthy

    gw.set_fault("frontier", Fault(status=503))
    answer = ask(gw, "chat")
    streamed = ask(gw, "chat", stream=True)
    assert answer["x-recloser-provider"] == "local" and answer["x-recloser-degraded"] == "tier=2"
    assert streamed["x-recloser-degraded"] == "tier=2"
    assert degraded_count(gw, "chat") == 2

    requests = [r for r in ledger_lines(gw, ledger) if r["kind"] == "request"]
    assert [(r["provider"], r["degraded_tier"]) for r in requests] == [
        ("frontier", None), ("local", 2), ("local", 2)]


def test_a_route_whose_targets_are_all_tier_one_never_labels(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = start_gateway(policy(ledger))
    gw.set_fault("frontier", Fault(status=503))
    answer = ask(gw, "flat")
    assert answer["x-recloser-provider"] == "local" and "x-recloser-degraded" not in answer
    assert degraded_count(gw, "flat") == 0
    assert [r["degraded_tier"] for r in ledger_lines(gw, ledger)] == [None]
