"""One agent session on one gateway: the CLI, its scratch work directory, and what the gateway recorded.

The gateway is the embedded one the other suites use, its simulated upstreams started by the policy;
an outage is a fault set on a simulator between (or before) the CLI's turns.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.agents.clients import AgentCLI, ClaudeCode, Codex
from tests.agents.policies import Shape

NOTE = "note.txt"
READ_NOTE = f"run: cat {NOTE}"


@dataclass
class AgentSession:
    shape: Shape
    gateway: EmbeddedGateway
    cli: AgentCLI
    work: Path
    ledger: Path

    def write_note(self) -> str:
        """A fresh random token in the work directory's note: only a command really run can read it."""
        token = f"tok-{secrets.token_hex(6)}"
        (self.work / NOTE).write_text(f"{token}\n", encoding="utf-8")
        return token

    def primary_down(self, fault: Fault) -> None:
        self.gateway.set_fault(self.shape.primary.provider, fault)

    def requests_to(self, provider: str) -> int:
        return int(self.gateway.sim(provider).request_count())

    def ledger_requests(self) -> list[dict[str, Any]]:
        """The ledger's request lines so far (written behind the answers: drained first)."""
        self.gateway.run(self.gateway.context.meter.drain())
        lines = self.ledger.read_text(encoding="utf-8").splitlines() if self.ledger.exists() else []
        return [r for r in map(json.loads, lines) if r["kind"] == "request"]

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """The samples of one metric on the gateway's /metrics, read over HTTP as Prometheus would."""
        with urllib.request.urlopen(f"{self.gateway.url}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())]

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples with these labels (0 when there are none)."""
        return sum(value for _, value in self.samples(name, **labels))

    def dropped_features(self) -> set[str]:
        """The features the route's crossings dropped, as `recloser_dropped_features_total` counts them."""
        return {labels["feature"] for labels, value in
                self.samples("recloser_dropped_features_total", route=self.shape.route) if value > 0}

    def failovers(self) -> float:
        return self.metric("recloser_failovers_total", route=self.shape.route,
                           from_provider=self.shape.primary.provider, to_provider=self.shape.secondary.provider)


def start_session(shape: Shape, gateway: EmbeddedGateway, home: Path, ledger: Path) -> AgentSession:
    """The shape's client on a fresh home and work directory, pointed at `gateway`'s route."""
    work = home / "work"
    work.mkdir(parents=True)
    cli: AgentCLI
    if shape.client == "codex":
        cli = Codex(home, work, gateway.base_url, shape.route)
    else:
        cli = ClaudeCode(home, work, gateway.url, shape.route)
    return AgentSession(shape, gateway, cli, work, ledger)
