"""Fixtures for driving the released agent CLIs through a gateway on simulated upstreams."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agents.clients import AGENTS_DIR, BIN_DIR, CLAUDE_CODE_VERSION, CODEX_VERSION, install, install_needed
from tests.agents.policies import Shape
from tests.agents.session import AgentSession, start_session
from tests.conftest import GatewayFactory


@pytest.fixture(scope="session")
def agent_clients(pytestconfig: pytest.Config) -> Path:
    """The pinned CLIs in tests/agents/node_modules, installed from the lock file when missing or stale."""
    if install_needed():
        capture = pytestconfig.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\ntests/agents: npm ci (Codex CLI {CODEX_VERSION}, Claude Code {CLAUDE_CODE_VERSION}) "
                  f"into {AGENTS_DIR / 'node_modules'}", flush=True)
        install()
    return BIN_DIR


SessionFactory = Callable[[Shape], AgentSession]


@pytest.fixture
def agent_session(agent_clients: Path, start_gateway: GatewayFactory, tmp_path: Path) -> SessionFactory:
    """Starts a gateway for a route shape and its client in a scratch home (one session per test)."""
    def start(shape: Shape) -> AgentSession:
        ledger = tmp_path / "ledger.jsonl"
        gateway = start_gateway(shape.policy(ledger))
        return start_session(shape, gateway, tmp_path / "home", ledger)
    return start
