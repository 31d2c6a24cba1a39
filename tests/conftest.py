"""Shared fixtures: gateways on loopback started from policy text, free ports, and aiohttp apps served."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import openai
import pytest
from aiohttp import web

from gateway.serving.embedded import EmbeddedGateway
from gateway.policy.load import load_policy
from tests import services

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

UPSTREAM_KEY = "sk-upstream-secret-0123456789"


def pytest_configure(config: pytest.Config) -> None:
    """tests/services.py's notes (a fetch of redis-server or prometheus) reach the terminal past the capture."""
    def say(line: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        terminal = config.pluginmanager.getplugin("terminalreporter")
        if capture is None or terminal is None:
            print(line, flush=True)
            return
        with capture.global_and_fixture_disabled():
            terminal.ensure_newline()
            if getattr(terminal, "_width_of_current_line", 0):   # after -q's progress dots
                terminal.write("\n")
            terminal.write_line(line)
            terminal.flush()
    services.announce = say


def digest(key: str) -> str:
    """A key as a policy's `auth.keys` names it: its SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    """`app` served by aiohttp's own runner on a free loopback port (yielded) until the block ends."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def write_policy(directory: Path, text: str, name: str = "policy.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


GatewayFactory = Callable[[str], EmbeddedGateway]


def sdk(gw: EmbeddedGateway) -> openai.OpenAI:
    """The official openai SDK pointed at `gw`, with its own retries off so every attempt is the gateway's."""
    return openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Starts a gateway on loopback from policy YAML; every one started is stopped after the test."""
    started: list[EmbeddedGateway] = []

    def start(text: str) -> EmbeddedGateway:
        path = write_policy(tmp_path, text, name=f"policy-{len(started)}.yaml")
        gw = EmbeddedGateway(load_policy(path)).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


TWO_SIMS = f"""
version: 1
providers:
  alpha:
    kind: sim
    api_key: {UPSTREAM_KEY}
    sim: {{wire: openai, reply_tokens: 8}}
  beta:
    kind: sim
    sim: {{wire: openai, reply_tokens: 6}}
routes:
  chat:
    targets:
      - {{provider: alpha, model: alpha-model}}
      - {{provider: beta, model: beta-model}}
  embed:
    targets:
      - {{provider: alpha, model: alpha-embed}}
"""


@pytest.fixture
def two_sims(start_gateway: GatewayFactory) -> EmbeddedGateway:
    """Route `chat` = [alpha, beta], both simulated OpenAI-wire upstreams; alpha has a known key."""
    return start_gateway(TWO_SIMS)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, persistence off; stopped (and woken first) after the test."""
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()
