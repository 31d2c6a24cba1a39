"""Claude Code on a subscription and Codex on the developer's own OpenAI key, their own retries off,
through a 30-second outage of every target of their route (the own-credential target and the
organisation's API-key target behind it): with the route's `hold_s`, the turn that meets the outage
is held (a stream's headers and keepalives at once, the answer once a target is back) and the
session goes on, tool round trip and all. Both sessions run at the same time, each on its own
gateway, so the outage is waited out once.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gateway.sim import Fault
from tests.agents.clients import Turn
from tests.agents.policies import Shape
from tests.agents.session import READ_NOTE, AgentSession
from tests.agents.test_own_credentials import CLAUDE, CODEX, start_own
from tests.conftest import GatewayFactory

pytestmark = pytest.mark.timeout(900)

OUTAGE_S = 30.0
HELD_ROUTES = (replace(CLAUDE, hold_s=120.0), replace(CODEX, hold_s=120.0))


@dataclass
class Outlived:
    session: AgentSession
    token: str
    before: Turn
    during: Turn
    took_s: float


def through_the_outage(s: AgentSession) -> Outlived:
    """A first turn while all is well; then every target down for OUTAGE_S, and the next turn at once."""
    s.write_note()
    before = s.cli.first(f"What does the note say?\n{READ_NOTE}")
    for provider in (s.shape.primary.provider, s.shape.secondary.provider):
        s.gateway.set_fault(provider, Fault(refuse=True, duration_s=OUTAGE_S))
    token = s.write_note()
    started = time.monotonic()
    during = s.cli.next(f"And now?\n{READ_NOTE}")
    return Outlived(s, token, before, during, time.monotonic() - started)


def test_agent_sessions_with_their_own_retries_off_survive_a_30_second_outage_of_every_target(
        agent_clients: Path, start_gateway: GatewayFactory, tmp_path: Path) -> None:
    sessions = [start_own(route, start_gateway, tmp_path / route.client) for route in HELD_ROUTES]
    with ThreadPoolExecutor(len(sessions)) as pool:
        results = list(pool.map(through_the_outage, sessions))
    for r in results:
        shape: Shape = r.session.shape
        assert r.before.returncode == 0, r.before.explain()
        assert r.during.returncode == 0, r.during.explain()
        assert "The tool said:" in r.during.stdout and r.token in r.during.stdout, r.during.explain()
        assert r.took_s >= OUTAGE_S * 0.8, f"{shape.client} was answered in {r.took_s:.1f} s: it was never held"
        assert r.session.metric("recloser_held_requests_total", route=shape.route, outcome="released") >= 1
        assert r.session.metric("recloser_held_requests_total", route=shape.route, outcome="expired") == 0
        held = [rec for rec in r.session.ledger_requests() if "held" in rec["events"]]
        assert held and all(rec["outcome"] == "ok" for rec in held)
        assert max(rec["held_s"] for rec in held) >= OUTAGE_S * 0.5
