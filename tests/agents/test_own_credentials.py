"""The released Claude Code on a subscription and Codex on the developer's own OpenAI key, through a
gateway whose first target takes each caller's own credentials (`credentials: client`) and whose
second is the organisation's API key.

The session is answered on the client's credential, which only that target sees (never the gateway
key); when that target refuses the credential (an expired token: 401; a usage limit: 429) the next
turn is answered by the API-key target and the refused credential is not tried again during its
cool-down; who paid is in the ledger and /metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.agents.clients import CLIENT_KEY, ClaudeCode, Codex, Turn
from tests.agents.policies import REPLY_TOKENS, Shape, Upstream
from tests.agents.session import READ_NOTE, AgentSession
from tests.conftest import GatewayFactory

pytestmark = pytest.mark.timeout(900)

OAUTH_TOKEN = "sk-ant-oat01-agent-tests-5d3b9f1e7a2c4860"
PERSONAL_KEY = "sk-proj-agent-tests-personal-0a8c6e4f2b1d"
ORG_KEY = "sk-ant-org-agent-tests-9e7c5a3f1d2b4068"


@dataclass(frozen=True)
class OwnCredentials:
    """A route of the client's own-credential target, then the organisation's API-key target."""

    client: str
    own: Upstream
    org: Upstream
    hold_s: float = 0.0        # the route's hold_s (tests/agents/test_held_outage.py)

    @property
    def route(self) -> str:
        return f"{self.client}-own-credentials"

    def policy(self, ledger: Path) -> str:
        digest = hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
        word = "{wire: %s, agent: true, reply_word: %s, reply_tokens: %d}"
        prices = "{%s: {input_usd_per_mtok: 3, output_usd_per_mtok: 15}}"
        return (f"version: 1\nproviders:\n"
                f"  {self.own.provider}:\n    kind: sim\n    credentials: client\n"
                f"    models: {prices % self.own.model}\n"
                f"    sim: {word % (self.own.wire, self.own.word, REPLY_TOKENS)}\n"
                f"  {self.org.provider}:\n    kind: sim\n    api_key: {ORG_KEY}\n"
                f"    models: {prices % self.org.model}\n"
                f"    sim: {word % (self.org.wire, self.org.word, REPLY_TOKENS)}\n"
                f"routes:\n  {self.route}:\n    hold_s: {self.hold_s}\n    targets:\n"
                f"      - {{provider: {self.own.provider}, model: {self.own.model}}}\n"
                f"      - {{provider: {self.org.provider}, model: {self.org.model}}}\n"
                f"auth:\n  keys:\n    - {{id: agents, sha256: {digest}, team: dev, app: {self.client}}}\n"
                f'metering:\n  ledger: {{path: "{ledger}"}}\n')


CLAUDE = OwnCredentials("claude-code", Upstream("subscription", "anthropic", "sol", "claude-sonnet-4-5"),
                        Upstream("anthropic", "anthropic", "terra", "claude-sonnet-4-5"))
CODEX = OwnCredentials("codex", Upstream("personal", "openai", "luna", "gpt-5.1-codex"),
                       Upstream("openai", "openai", "mare", "gpt-5.1-codex"))
# What each target says when it refuses the client's credential, per client.
EXPIRED = {"claude-code": Fault(status=401), "codex": Fault(status=401)}
LIMITED = {"claude-code": Fault(status=429, usage_limit_reset_s=600),
           "codex": Fault(status=429, error_code="insufficient_quota")}

Start = Callable[[OwnCredentials], AgentSession]


def start_own(route: OwnCredentials, start_gateway: GatewayFactory, scratch: Path) -> AgentSession:
    """The route's gateway, and its client on the caller's own credentials in a home under `scratch`."""
    home, work = scratch / "home", scratch / "home" / "work"
    work.mkdir(parents=True)
    ledger = scratch / "ledger.jsonl"
    gateway = start_gateway(route.policy(ledger))
    shape = Shape(route.route, route.client, route.own, route.org)
    if route.client == "codex":
        cli: ClaudeCode | Codex = Codex(home, work, gateway.base_url, route.route, key=PERSONAL_KEY,
                                        gateway_key=CLIENT_KEY)
    else:
        cli = ClaudeCode(home, work, gateway.url, route.route, oauth_token=OAUTH_TOKEN)
    return AgentSession(shape, gateway, cli, work, ledger)


@pytest.fixture
def own_session(agent_clients: Path, start_gateway: GatewayFactory, tmp_path: Path) -> Start:
    return lambda route: start_own(route, start_gateway, tmp_path)


def answered(turn: Turn) -> str:
    assert turn.returncode == 0, turn.explain()
    return turn.stdout


def own_secret(route: OwnCredentials) -> str:
    return OAUTH_TOKEN if route.client == "claude-code" else PERSONAL_KEY


def headers_seen(gateway: EmbeddedGateway, provider: str) -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in r.headers.items()} for r in gateway.sim(provider).requests]


ROUTES = [pytest.param(r, id=r.client) for r in (CLAUDE, CODEX)]


@pytest.mark.parametrize("refusal", ["expired", "usage_limit"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_session_on_its_own_credentials_keeps_answering_through_the_api_key_target_when_they_are_refused(
        own_session: Start, route: OwnCredentials, refusal: str) -> None:
    s = own_session(route)
    token = s.write_note()
    first = s.cli.first(f"What does the note say?\n{READ_NOTE}")
    text = answered(first)
    assert f"{route.own.word} The tool said:" in text and token in text, first.explain()
    assert s.requests_to(route.org.provider) == 0
    secret = own_secret(route)
    for sent in headers_seen(s.gateway, route.own.provider):
        assert sent["authorization"] == f"Bearer {secret}"
        assert not any(CLIENT_KEY in v or ORG_KEY in v for v in sent.values())
        if route.client == "claude-code":
            assert "oauth-2025-04-20" in sent["anthropic-beta"].split(",")
    assert {r["paid_by"] for r in s.ledger_requests()} == {"client"}
    assert s.metric("recloser_client_paid_usd_total", route=route.route, provider=route.own.provider) > 0
    assert s.metric("recloser_cost_usd_total", provider=route.own.provider) == 0

    s.gateway.set_fault(route.own.provider, (EXPIRED if refusal == "expired" else LIMITED)[route.client])
    before = s.requests_to(route.own.provider)
    second_token = s.write_note()
    second = s.cli.next(f"And now?\n{READ_NOTE}")
    second_text = answered(second)
    assert f"{route.org.word} The tool said:" in second_text and second_token in second_text, second.explain()
    assert s.requests_to(route.own.provider) == before + 1   # refused once, then skipped for the cool-down
    assert s.requests_to(route.org.provider) >= 2            # the tool call, then the answer to its result
    for sent in headers_seen(s.gateway, route.org.provider):
        assert not any(secret in v or CLIENT_KEY in v for v in sent.values())
        assert "oauth-2025-04-20" not in sent.get("anthropic-beta", "")
    later = [r for r in s.ledger_requests() if r["provider"] == route.org.provider]
    assert later and {r["paid_by"] for r in later} == {"gateway"}
    outcome = "credential_refused" if refusal == "expired" else "credential_limited"
    assert s.metric("recloser_upstream_attempts_total", provider=route.own.provider, outcome=outcome) == 1
    assert s.metric("recloser_client_credential_skips_total", provider=route.own.provider) >= 1
