"""`recloser drill --agents`: released Claude Code and Codex sessions through a scripted incident.

Several sessions of each CLI (their own retries off) work turn after turn, each turn a real tool
round trip (the simulated model asks for `cat note.txt`, the CLI runs it, the answer quotes it),
through a gateway on simulated upstreams: Claude Code on its subscription (`credentials: client`,
the gateway key in `x-recloser-key`), Codex on the developer's own OpenAI key, each route with the
organisation's API-key target behind and a small local pool last, and `hold_s`. The incident:

  healthy → the subscription's (and the personal key's) auth answers 401 → every frontier target
  down, the local pool answering → the local pool down too, nothing answering for longer than any
  client's own retries → recovery.

Per phase it prints the sessions alive, the tool turns finished, who answered, held requests and
who paid; the goal is every session alive at the end.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gateway
from gateway.commands.agent_clis import AgentCLI, ClaudeCode, Codex, find_clis
from gateway.commands.agent_drill_report import PhaseSummary, PhaseWindow, TurnDone, summarise, table
from gateway.metering.record import parse_ts
from gateway.policy.load import parse_policy
from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault

GATEWAY_KEY = "sk-recloser-drill-agents"
OAUTH_TOKEN = "sk-ant-oat01-recloser-drill-0c9e4b7a2f"     # what a Claude subscription login sends
PERSONAL_KEY = "sk-proj-recloser-drill-personal-5a1d"      # a developer's own OpenAI key
FRONTIER = ("subscription", "anthropic", "personal", "openai")
POOL = ("local-gpu", "local-gpu@2")                          # the local pool's two simulated replicas
NOTE = "note.txt"


@dataclass(frozen=True)
class AgentPhase:
    name: str
    seconds: float
    faults: dict[str, Fault]        # every upstream not named here is healthy during the phase


def incident(phase_s: float, outage_s: float) -> list[AgentPhase]:
    auth = Fault(status=401)
    down = Fault(refuse=True)
    return [
        AgentPhase("healthy", phase_s, {}),
        AgentPhase("subscription auth answers 401", phase_s, {"subscription": auth, "personal": auth}),
        AgentPhase("every frontier target down", phase_s, dict.fromkeys(FRONTIER, down)),
        AgentPhase("the local pool down too", outage_s, dict.fromkeys(FRONTIER + POOL, down)),
        AgentPhase("recovery", phase_s, {}),
    ]


def drill_policy(ledger: Path, hold_s: float) -> str:
    digest = hashlib.sha256(GATEWAY_KEY.encode()).hexdigest()
    agent = "wire: {wire}, agent: true, reply_word: {word}, reply_tokens: 12"
    priced = "{{{model}: {{input_usd_per_mtok: {i}, output_usd_per_mtok: {o}}}}}"

    def sim(name: str, wire: str, word: str, model: str, extra: str = "") -> str:
        return (f"  {name}:\n    kind: sim\n{extra}    models: {priced.format(model=model, i=3, o=15)}\n"
                f"    sim: {{{agent.format(wire=wire, word=word)}}}\n")
    client = "    credentials: client\n    credential_cooldown_s: 5\n"
    # No exploration: every answer in a phase comes from the target the incident leaves first.
    return (f"version: 1\n"
            f"breaker: {{probe_interval_s: 1, base_ejection_s: 5, slow_start_s: 2, explore_percent: 0}}\n"
            f'metering: {{ledger: {{path: "{ledger}"}}}}\n'
            f"auth:\n  keys:\n    - {{id: agents, sha256: {digest}, team: research, app: agents}}\n"
            f"providers:\n"
            + sim("subscription", "anthropic", "sol", "claude-sonnet-4-5", client)
            + sim("anthropic", "anthropic", "terra", "claude-sonnet-4-5", "    api_key: sk-ant-drill-org\n")
            + sim("personal", "openai", "luna", "gpt-5.1-codex", client)
            + sim("openai", "openai", "mare", "gpt-5.1-codex", "    api_key: sk-drill-org\n")
            + sim("local-gpu", "openai", "fjord", "qwen3-coder-30b", "    endpoints: 2\n    responses: false\n")
            + f"routes:\n"
            f"  claude-code:\n    hold_s: {hold_s}\n    targets:\n"
            f"      - {{provider: subscription, model: claude-sonnet-4-5}}\n"
            f"      - {{provider: anthropic, model: claude-sonnet-4-5}}\n"
            f"      - {{provider: local-gpu, model: qwen3-coder-30b}}\n"
            f"  codex:\n    hold_s: {hold_s}\n    targets:\n"
            f"      - {{provider: personal, model: gpt-5.1-codex}}\n"
            f"      - {{provider: openai, model: gpt-5.1-codex}}\n"
            f"      - {{provider: local-gpu, model: qwen3-coder-30b}}\n")


@dataclass
class Session:
    name: str
    cli: AgentCLI
    work: Path
    turns: list[TurnDone]

    def run(self, stop: threading.Event, clock: Callable[[], float]) -> None:
        """Turn after turn until told to stop; a turn that fails ends the session, as it would a real one."""
        first = True
        while not stop.is_set():
            token = f"tok-{int(clock() * 1000) % 10**8:08d}-{self.name}"
            (self.work / NOTE).write_text(token + "\n", encoding="utf-8")
            started = clock()
            prompt = f"What does the note say?\nrun: cat {NOTE}"
            turn = self.cli.first(prompt) if first else self.cli.next(prompt)
            ok = turn.returncode == 0 and token in turn.stdout
            self.turns.append(TurnDone(self.name, started, clock(), ok, "" if ok else turn.explain()[-2000:]))
            if not ok:
                return
            first = False


def start_sessions(bin_dir: Path, gw: EmbeddedGateway, home: Path, per_cli: int, turn_timeout_s: float
                   ) -> list[Session]:
    sessions = []
    for i in range(1, per_cli + 1):
        for kind in ("claude-code", "codex"):
            name = f"{kind}-{i}"
            work = home / name / "work"
            work.mkdir(parents=True)
            cli: AgentCLI
            if kind == "codex":
                cli = Codex(bin_dir, home / name, work, gw.base_url, "codex", PERSONAL_KEY, GATEWAY_KEY,
                            timeout_s=turn_timeout_s)
            else:
                cli = ClaudeCode(bin_dir, home / name, work, gw.url, "claude-code", GATEWAY_KEY, OAUTH_TOKEN,
                                 timeout_s=turn_timeout_s)
            sessions.append(Session(name, cli, work, []))
    return sessions


def ledger_requests(path: Path) -> list[dict[str, Any]]:
    """The run's request lines, times in wall seconds; the gateway's own probes left out."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for r in lines:
        if r.get("kind") == "request" and "probe" not in (r.get("events") or ()):
            out.append({**r, "ts": parse_ts(r["ts"])})
    return out


def set_faults(gw: EmbeddedGateway, faults: dict[str, Fault]) -> None:
    for name in FRONTIER + POOL:
        gw.set_fault(name, faults.get(name, Fault()))


@dataclass
class AgentDrill:
    rows: list[PhaseSummary]
    sessions: list[Session]
    began: float

    def dead(self) -> list[Session]:
        return [s for s in self.sessions if not all(t.ok for t in s.turns)]


def run_agent_drill(clis: Path | None, per_cli: int = 2, phase_s: float = 15.0, outage_s: float = 30.0,
                    print_line: Callable[[str], None] = print) -> int:
    """Runs the incident; prints the phases as they begin, then the table. 0 when every session lived."""
    bin_dir = find_clis(clis, Path(gateway.__file__).resolve().parent.parent)
    if bin_dir is None:
        print_line("recloser drill --agents needs the released `claude` and `codex` CLIs: give their folder with "
                   "--clients, put both on the PATH (npm install -g @anthropic-ai/claude-code @openai/codex), "
                   "or run `npm ci` in tests/agents of a checkout.")
        return 2
    drill = agent_drill(bin_dir, per_cli, phase_s, outage_s, print_line)
    for line in table(drill.rows):
        print_line(line)
    dead, sessions = drill.dead(), drill.sessions
    if not dead:
        turns = sum(len(s.turns) for s in sessions)
        print_line(f"Every session finished: {len(sessions)}/{len(sessions)} alive after {turns} tool turns.")
        return 0
    print_line(f"{len(dead)} of {len(sessions)} sessions died:")
    for s in dead:
        failed = next(t for t in s.turns if not t.ok)
        lines = failed.detail.strip().splitlines() or ["(no output)"]
        said = next((line for line in lines if "error" in line.lower()), lines[-1])
        print_line(f"  {s.name} at {failed.ended - drill.began:.0f} s: {said[:300]}")
    return 1


def agent_drill(bin_dir: Path, per_cli: int, phase_s: float, outage_s: float,
                print_line: Callable[[str], None] = print) -> AgentDrill:
    """The incident, run: each phase's faults set as it begins (announced), the sessions' turns gathered."""
    script = incident(phase_s, outage_s)
    hold_s = outage_s * 4
    clock = time.time
    with tempfile.TemporaryDirectory(prefix="recloser-agent-drill-") as scratch:
        root = Path(scratch)
        ledger = root / "ledger.jsonl"
        with EmbeddedGateway(parse_policy(drill_policy(ledger, hold_s), "<agent drill>")) as gw:
            sessions = start_sessions(bin_dir, gw, root / "homes", per_cli, hold_s + 90)
            print_line(f"{len(sessions)} agent sessions ({per_cli} Claude Code on a subscription, {per_cli} Codex on "
                       f"a personal key, their own retries off), each turn a tool round trip; routes hold requests "
                       f"up to {hold_s:.0f} s; the incident lasts {sum(p.seconds for p in script):.0f} s.")
            stop = threading.Event()
            threads = [threading.Thread(target=s.run, args=(stop, clock), name=s.name, daemon=True)
                       for s in sessions]
            for t in threads:
                t.start()
            began = clock()
            windows = []
            for phase in script:
                set_faults(gw, phase.faults)     # then the clock: what starts in the phase meets its faults
                start = clock()
                alive = sum(1 for s in sessions if all(t.ok for t in s.turns))
                print_line(f"{start - began:5.0f} s  {phase.name} ({alive} sessions alive)")
                stop.wait(phase.seconds)
                windows.append(PhaseWindow(phase.name, start, clock()))
            stop.set()
            for t in threads:
                t.join(hold_s + 120)
            gw.run(gw.context.meter.drain())
            rows = summarise(windows, [s.name for s in sessions], [t for s in sessions for t in s.turns],
                             ledger_requests(ledger))
    return AgentDrill(rows, sessions, began)
