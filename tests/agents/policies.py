"""The route shapes the agent CLIs are driven through: a primary and a secondary simulated upstream in
agent mode, on the same wire as the client's API or across wires, each answering with a word of its own
so a printed answer says who wrote it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.agents.clients import CLIENT_KEY

REPLY_TOKENS = 12   # a plain answer is `<word> t1 … t11`: chunks enough to cut one half-way


@dataclass(frozen=True)
class Upstream:
    provider: str              # the provider's name in the policy (and in the gateway's metrics and ledger)
    wire: str                  # the simulator's wire: openai or anthropic
    word: str                  # the first word of its answers
    model: str
    chat_only: bool = False    # an OpenAI-wire server without the Responses API, as vLLM is

    def yaml(self) -> str:
        responses = "\n    responses: false" if self.chat_only else ""
        return (f"  {self.provider}:\n    kind: sim{responses}\n"
                f"    sim: {{wire: {self.wire}, agent: true, reply_word: {self.word}, reply_tokens: {REPLY_TOKENS}}}\n")


@dataclass(frozen=True)
class Shape:
    """A route of two targets for one client: the primary, then the secondary it fails over to."""

    id: str
    client: str                # codex or claude-code
    primary: Upstream
    secondary: Upstream
    # What the client sends that the secondary's wire has no place for: dropped, and counted as such.
    # Empty on the same wire, where a request passes untouched but for its model.
    crossing_drops: frozenset[str] = field(default_factory=frozenset)
    hold_s: float = 0.0        # the route's hold_s: requests no target answers wait this long for one

    @property
    def route(self) -> str:
        return self.id

    def twins(self, word: str) -> Shape:
        """The same route with both upstreams answering alike: a restarted Responses stream is stitched only
        when the new answer begins with the text the client already has."""
        return replace(self, primary=replace(self.primary, word=word), secondary=replace(self.secondary, word=word))

    def policy(self, ledger: Path) -> str:
        key_digest = hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
        return (f"version: 1\nproviders:\n{self.primary.yaml()}{self.secondary.yaml()}"
                f"routes:\n  {self.route}:\n    hold_s: {self.hold_s}\n    targets:\n"
                f"      - {{provider: {self.primary.provider}, model: {self.primary.model}}}\n"
                f"      - {{provider: {self.secondary.provider}, model: {self.secondary.model}}}\n"
                f"auth:\n  keys:\n    - {{id: agents, sha256: {key_digest}, team: dev, app: {self.client}}}\n"
                f'metering:\n  ledger: {{path: "{ledger}"}}\n')


OPENAI_A = Upstream("openai", "openai", "atlas", "gpt-5.1-codex")
OPENAI_B = Upstream("azure-openai", "openai", "birch", "gpt-5.1-codex")
ANTHROPIC_FOR_CODEX = Upstream("anthropic", "anthropic", "cedar", "claude-sonnet-4-5")
ANTHROPIC_A = Upstream("anthropic", "anthropic", "dune", "claude-sonnet-4-5")
ANTHROPIC_B = Upstream("anthropic-eu", "anthropic", "elm", "claude-sonnet-4-5")
LOCAL_VLLM = Upstream("local-vllm", "openai", "fjord", "qwen3-coder-30b", chat_only=True)

CODEX_SAME_WIRE = Shape("codex-same-wire", "codex", OPENAI_A, OPENAI_B)
CODEX_CROSSED = Shape("codex-crossed-wire", "codex", OPENAI_A, ANTHROPIC_FOR_CODEX,
                      frozenset({"reasoning", "web_search"}))
CLAUDE_SAME_WIRE = Shape("claude-same-wire", "claude-code", ANTHROPIC_A, ANTHROPIC_B)
CLAUDE_CROSSED = Shape("claude-crossed-wire", "claude-code", ANTHROPIC_A, LOCAL_VLLM,
                       frozenset({"thinking", "context_management", "effort"}))

CODEX_SHAPES = (CODEX_SAME_WIRE, CODEX_CROSSED)
CLAUDE_SHAPES = (CLAUDE_SAME_WIRE, CLAUDE_CROSSED)
