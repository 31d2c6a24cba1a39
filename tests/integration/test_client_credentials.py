"""Callers' own credentials through the gateway, on real sockets with the official SDKs as clients:
a subscription's OAuth bearer and a personal OpenAI key reach only `credentials: client` targets;
when those refuse them (expired, a usage limit) the caller fails over to the route's API-key target
and its credential is kept off the provider for the cool-down, while other callers' are not; what
they paid is counted apart from the organisation's spend."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from gateway.routing.breaker import State
from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from gateway.sim.credentials import ANTHROPIC_OAUTH_EXPIRED
from tests.conftest import UPSTREAM_KEY, GatewayFactory
from tests.otlp_receiver import OtlpReceiver, attributes

GATEWAY_KEY = "sk-recloser-dev-7c1e5a9b3d2f4068"
ADMIN_KEY = "sk-recloser-admin-2b8e4d6f0a1c3957"
OAUTH_A = "sk-ant-oat01-alice-3f9a1c7e5b2d4086aa"
OAUTH_B = "sk-ant-oat01-bob-8d2b6f0e4a1c5397bb"
PERSONAL = "sk-proj-personal-5e1a9c3f7b2d4068cc"
OAUTH_BETAS = "oauth-2025-04-20,claude-code-20250219"
SECRETS = (OAUTH_A, OAUTH_B, PERSONAL)
HELLO = [{"role": "user", "content": "hello"}]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def policy(ledger: Path) -> str:
    prices = "{input_usd_per_mtok: 3, output_usd_per_mtok: 15}"
    return f"""
version: 1
providers:
  subscription:
    kind: sim
    credentials: client
    credential_cooldown_s: 30
    models: {{claude-sonnet-4-5: {prices}}}
    sim: {{wire: anthropic, reply_word: sub, reply_tokens: 5}}
  anthropic-key:
    kind: sim
    api_key: {UPSTREAM_KEY}
    models: {{claude-sonnet-4-5: {prices}}}
    sim: {{wire: anthropic, reply_word: org, reply_tokens: 5}}
  personal:
    kind: sim
    credentials: client
    models: {{gpt-5.1-codex: {prices}}}
    sim: {{wire: openai, reply_word: mine, reply_tokens: 5}}
  openai-key:
    kind: sim
    api_key: {UPSTREAM_KEY}
    models: {{gpt-5.1-codex: {prices}}}
    sim: {{wire: openai, reply_word: org, reply_tokens: 5}}
  local:
    kind: sim
    endpoints: 2
    sim: {{wire: openai, reply_word: pool, reply_tokens: 5}}
routes:
  claude-pool:
    targets:
      - {{provider: subscription, model: claude-sonnet-4-5}}
      - {{provider: local, model: qwen3-coder}}
  claude:
    targets:
      - {{provider: subscription, model: claude-sonnet-4-5}}
      - {{provider: anthropic-key, model: claude-sonnet-4-5}}
  claude-org:
    targets: [{{provider: anthropic-key, model: claude-sonnet-4-5}}]
  claude-sub-only:
    targets: [{{provider: subscription, model: claude-sonnet-4-5}}]
  codex:
    targets:
      - {{provider: personal, model: gpt-5.1-codex}}
      - {{provider: openai-key, model: gpt-5.1-codex}}
auth:
  keys:
    - {{id: dev-laptop, sha256: {digest(GATEWAY_KEY)}, team: dev, app: agents}}
    - {{id: ops, sha256: {digest(ADMIN_KEY)}, team: platform, app: ops, admin: true}}
budgets:
  - {{name: dev-daily, team: dev, period: day, limit_usd: 100, action: warn}}
metering:
  ledger: {{path: "{ledger}"}}
"""


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def gw(start_gateway: GatewayFactory, ledger: Path) -> EmbeddedGateway:
    return start_gateway(policy(ledger))


def claude(gw: EmbeddedGateway, token: str = OAUTH_A, gateway_key: str = GATEWAY_KEY) -> anthropic.Anthropic:
    """The anthropic SDK as Claude Code on a subscription sends: the OAuth bearer with its beta flag,
    the gateway key in x-recloser-key (ANTHROPIC_CUSTOM_HEADERS)."""
    return anthropic.Anthropic(base_url=gw.url, auth_token=token, max_retries=0,
                               default_headers={"anthropic-beta": OAUTH_BETAS, "x-recloser-key": gateway_key})


def codex(gw: EmbeddedGateway, key: str = PERSONAL) -> openai.OpenAI:
    """The openai SDK as Codex with its own key (env_key) and the gateway key in http_headers."""
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0,
                         default_headers={"x-recloser-key": GATEWAY_KEY})


def ask(client: anthropic.Anthropic, route: str = "claude") -> str:
    message = client.messages.create(model=route, max_tokens=50, messages=HELLO)  # type: ignore[arg-type]
    block = message.content[0]
    assert block.type == "text"
    return block.text


def raw_messages(gw: EmbeddedGateway, route: str, token: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/messages", timeout=10, json={"model": route, "max_tokens": 9, "messages": HELLO},
                      headers={"Authorization": f"Bearer {token}", "anthropic-beta": OAUTH_BETAS,
                               "anthropic-version": "2023-06-01", "x-recloser-key": GATEWAY_KEY})


def header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def seen(gw: EmbeddedGateway, provider: str) -> list[dict[str, str]]:
    return [r.headers for r in gw.sim(provider).requests]


def metric(gw: EmbeddedGateway, name: str, **labels: str) -> float:
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def ledger_requests(gw: EmbeddedGateway, ledger: Path) -> list[dict[str, Any]]:
    gw.run(gw.context.meter.drain())
    return [r for r in map(json.loads, ledger.read_text().splitlines()) if r["kind"] == "request"]


def test_a_subscription_bearer_reaches_the_client_credential_target_and_never_the_gateway_key(
        gw: EmbeddedGateway) -> None:
    assert ask(claude(gw)).startswith("sub")
    [sent] = seen(gw, "subscription")
    assert header(sent, "Authorization") == f"Bearer {OAUTH_A}"
    assert "oauth-2025-04-20" in (header(sent, "anthropic-beta") or "").split(",")
    assert header(sent, "x-api-key") is None
    assert not any(GATEWAY_KEY in v or UPSTREAM_KEY in v for v in sent.values())


def test_a_gateway_key_provider_never_receives_the_bearer_nor_the_oauth_beta_flag(gw: EmbeddedGateway) -> None:
    assert ask(claude(gw), "claude-org").startswith("org")
    gw.set_fault("subscription", Fault(status=503))
    assert ask(claude(gw)).startswith("org")   # failed over from the client-credential target
    for sent in seen(gw, "anthropic-key"):
        assert header(sent, "x-api-key") == UPSTREAM_KEY
        assert not any(OAUTH_A in v or GATEWAY_KEY in v for v in sent.values())
        betas = (header(sent, "anthropic-beta") or "").split(",")
        assert "claude-code-20250219" in betas and "oauth-2025-04-20" not in betas


def test_an_expired_token_fails_over_to_the_api_key_target_and_is_not_tried_again_during_the_cool_down(
        gw: EmbeddedGateway) -> None:
    gw.set_fault("subscription", Fault(status=401))
    assert ask(claude(gw)).startswith("org")
    assert gw.sim("subscription").request_count() == 1
    assert ask(claude(gw)).startswith("org")
    assert gw.sim("subscription").request_count() == 1   # skipped without a round trip
    assert metric(gw, "recloser_upstream_attempts_total", provider="subscription",
                  outcome="credential_refused") == 1
    assert metric(gw, "recloser_client_credential_skips_total", provider="subscription") == 1
    # The deployment is not at fault: its breaker never heard of the refusal.
    d = gw.context.routing.routes["claude"].deployments[0]
    assert gw.context.board.healths[d.key].state is State.HEALTHY


def test_another_callers_credential_keeps_using_the_provider_while_one_is_cooling_down(
        gw: EmbeddedGateway) -> None:
    gw.set_fault("subscription", Fault(status=401, only_credential=OAUTH_A))
    assert ask(claude(gw, OAUTH_A)).startswith("org")
    assert ask(claude(gw, OAUTH_B)).startswith("sub")
    assert ask(claude(gw, OAUTH_A)).startswith("org")
    assert [header(h, "Authorization") for h in seen(gw, "subscription")] == [f"Bearer {OAUTH_A}",
                                                                              f"Bearer {OAUTH_B}"]


def test_a_usage_limit_fails_over_and_cools_the_credential_until_its_reset(gw: EmbeddedGateway) -> None:
    gw.set_fault("subscription", Fault(status=429, usage_limit_reset_s=600))
    assert ask(claude(gw)).startswith("org")
    assert ask(claude(gw)).startswith("org")
    assert gw.sim("subscription").request_count() == 1
    cooldowns = gw.context.runtime.dispatcher.attempts.cooldowns
    [((provider, _), until)] = cooldowns.until.items()
    assert provider == "subscription"
    assert 590 <= until - gw.context.runtime.dispatcher.clock() <= 601   # the reset, not the 30 s cool-down
    assert metric(gw, "recloser_upstream_attempts_total", provider="subscription",
                  outcome="credential_limited") == 1


def test_a_request_without_client_credentials_skips_the_client_target_without_failing_it(
        gw: EmbeddedGateway) -> None:
    plain = anthropic.Anthropic(base_url=gw.url, api_key=GATEWAY_KEY, max_retries=0)   # the gateway key alone
    assert ask(plain).startswith("org")
    assert gw.sim("subscription").request_count() == 0
    assert metric(gw, "recloser_upstream_attempts_total", provider="subscription") == 0


@pytest.mark.parametrize("gateway_key", [None, "sk-recloser-unknown-0000000000"])
def test_an_unknown_or_missing_gateway_key_is_401_whatever_else_the_request_carries(
        gw: EmbeddedGateway, gateway_key: str | None) -> None:
    headers = {"Authorization": f"Bearer {OAUTH_A}", "anthropic-beta": OAUTH_BETAS, "anthropic-version": "2023-06-01",
               "x-api-key": PERSONAL}
    if gateway_key is not None:
        headers["x-recloser-key"] = gateway_key
    body = {"model": "claude", "max_tokens": 20, "messages": HELLO}
    for method, path in (("POST", "/v1/messages"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                         ("GET", "/admin/deployments")):
        answer = httpx.request(method, gw.url + path, headers=headers, json=body if method == "POST" else None,
                               timeout=10)
        assert answer.status_code == 401, path
    assert gw.sim("subscription").request_count() == gw.sim("anthropic-key").request_count() == 0


def test_only_the_callers_own_credential_could_be_tried_so_its_refusal_is_the_answer(gw: EmbeddedGateway) -> None:
    gw.set_fault("subscription", Fault(status=401))
    with pytest.raises(anthropic.AuthenticationError) as refused:
        ask(claude(gw), "claude-sub-only")
    assert ANTHROPIC_OAUTH_EXPIRED in str(refused.value)


def test_codex_with_its_own_openai_key_answers_on_the_responses_wire_then_fails_over_on_insufficient_quota(
        gw: EmbeddedGateway) -> None:
    client = codex(gw)
    assert client.responses.create(model="codex", input="hello").output_text.startswith("mine")
    [sent] = seen(gw, "personal")
    assert header(sent, "Authorization") == f"Bearer {PERSONAL}"
    gw.set_fault("personal", Fault(status=429, error_code="insufficient_quota"))
    assert client.responses.create(model="codex", input="hello").output_text.startswith("org")
    assert client.responses.create(model="codex", input="hello").output_text.startswith("org")
    assert gw.sim("personal").request_count() == 2
    for org in seen(gw, "openai-key"):
        assert header(org, "Authorization") == f"Bearer {UPSTREAM_KEY}"


def test_client_paid_calls_are_counted_apart_from_the_organisations_spend(gw: EmbeddedGateway, ledger: Path) -> None:
    assert ask(claude(gw)).startswith("sub")
    labels = {"team": "dev", "app": "agents", "route": "claude", "provider": "subscription"}
    assert metric(gw, "recloser_client_paid_usd_total", **labels) > 0
    assert metric(gw, "recloser_cost_usd_total", **labels) == 0
    assert metric(gw, "recloser_budget_spent_usd", budget="dev-daily") == 0
    [line] = ledger_requests(gw, ledger)
    assert line["paid_by"] == "client" and float(line["cost_usd"]) > 0

    assert ask(claude(gw), "claude-org").startswith("org")
    assert metric(gw, "recloser_cost_usd_total", provider="anthropic-key") > 0
    assert metric(gw, "recloser_budget_spent_usd", budget="dev-daily") > 0
    assert ledger_requests(gw, ledger)[-1]["paid_by"] == "gateway"


def test_no_client_credential_shows_in_logs_ledger_metrics_admin_views_or_error_bodies(
        gw: EmbeddedGateway, ledger: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen_text: list[str] = []
    ask(claude(gw, OAUTH_A))
    codex(gw).responses.create(model="codex", input="hello")
    gw.set_fault("subscription", Fault(status=401, only_credential=OAUTH_A))
    ask(claude(gw, OAUTH_A))                       # refused, failed over, cooled down
    ask(claude(gw, OAUTH_A))                       # skipped
    gw.set_fault("personal", Fault(status=401, echo_key=True))
    codex(gw).responses.create(model="codex", input="hello")
    gw.set_fault("subscription", Fault(status=401))
    refused = raw_messages(gw, "claude-sub-only", OAUTH_B)   # the provider's refusal handed back
    gw.set_fault("anthropic-key", Fault(status=503))
    failed = raw_messages(gw, "claude", OAUTH_A)             # every target out: the gateway's own error
    assert (refused.status_code, failed.status_code) == (401, 503)
    seen_text += [refused.text, str(refused.headers), failed.text, str(failed.headers)]
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    seen_text += [httpx.get(f"{gw.url}/admin/deployments", headers=admin, timeout=10).text,
                  httpx.get(f"{gw.url}/admin/state", headers=admin, timeout=10).text,
                  httpx.get(f"{gw.url}/metrics", timeout=10).text]
    gw.run(gw.context.meter.drain())
    seen_text.append(ledger.read_text())
    seen_text += [caplog.text, *(repr(r.__dict__) for r in caplog.records)]
    for text in seen_text:
        for secret in SECRETS:
            assert secret not in text


def test_count_tokens_on_a_subscription_route_is_counted_by_the_provider_with_the_callers_credential(
        gw: EmbeddedGateway) -> None:
    counted = claude(gw).messages.count_tokens(model="claude", messages=HELLO)  # type: ignore[arg-type]
    assert counted.input_tokens > 0
    [sent] = [r.headers for r in gw.sim("subscription").requests if r.path.endswith("/count_tokens")]
    assert header(sent, "Authorization") == f"Bearer {OAUTH_A}"
    assert gw.sim("anthropic-key").request_count() == 0


def test_a_traced_client_paid_request_says_who_paid_and_carries_no_credential(
        start_gateway: GatewayFactory, ledger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = OtlpReceiver().start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        gw = start_gateway(policy(ledger))
        assert ask(claude(gw)).startswith("sub")
        spans = receiver.wait_for_spans(2)
        [request] = [attributes(span.attributes) for _, span in spans if span.kind == Span.SPAN_KIND_SERVER]
        assert request["recloser.paid_by"] == "client" and request["recloser.cost_usd"] > 0
        assert not any(secret.encode() in export.SerializeToString() for export in receiver.requests
                       for secret in (OAUTH_A, GATEWAY_KEY))
    finally:
        receiver.stop()


def test_a_cooled_credential_is_skipped_on_a_route_whose_last_target_is_a_local_pool(gw: EmbeddedGateway) -> None:
    gw.set_fault("subscription", Fault(status=401))
    assert ask(claude(gw), "claude-pool").startswith("pool")
    assert ask(claude(gw), "claude-pool").startswith("pool")
    assert gw.sim("subscription").request_count() == 1
