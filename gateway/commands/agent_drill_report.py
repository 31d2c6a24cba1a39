"""What `recloser drill --agents` prints: per phase of the incident, the sessions alive, the tool turns
they finished, who answered, how long requests were held and who paid. Pure: from the sessions' turns
and the gateway's ledger lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TurnDone:
    """One CLI turn: when it ran (wall seconds) and whether it ended well (exit 0, the tool's output quoted)."""

    session: str
    started: float
    ended: float
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class PhaseWindow:
    name: str
    start: float
    end: float


@dataclass
class PhaseSummary:
    name: str
    alive: int
    sessions: int
    turns: int
    answered_by: Counter[str] = field(default_factory=Counter)
    held: int = 0
    held_longest_s: float = 0.0
    paid_by: Counter[str] = field(default_factory=Counter)


def died_at(turns: Sequence[TurnDone]) -> dict[str, float]:
    """When each session that died did (the end of its first failed turn)."""
    out: dict[str, float] = {}
    for t in sorted(turns, key=lambda t: t.ended):
        if not t.ok and t.session not in out:
            out[t.session] = t.ended
    return out


def summarise(phases: Sequence[PhaseWindow], sessions: Sequence[str], turns: Sequence[TurnDone],
              ledger: Sequence[Mapping[str, Any]]) -> list[PhaseSummary]:
    """`ledger`: the request lines of the run (`ts` in wall seconds already), probes left out. Answers
    and payers count in the phase their answering attempt began in (the faults then in force chose who
    answered: a request begun just before a phase changed is the earlier phase's, a held one is the phase
    it was let go in), held requests in the phase they began to wait in."""
    dead = died_at(turns)
    out = []
    for i, p in enumerate(phases):
        last = i == len(phases) - 1       # turns that end after the script still belong to its last phase
        within = [t for t in turns if t.ok and p.start <= t.ended and (last or t.ended < p.end)]
        lines = [r for r in ledger if p.start <= answered_from(r) and (last or answered_from(r) < p.end)]
        end = max([p.end, *(t.ended for t in turns)]) if last else p.end
        s = PhaseSummary(p.name, sum(1 for name in sessions if dead.get(name, end + 1) > end), len(sessions),
                         len(within))
        for r in lines:
            s.answered_by[r["provider"] or "nobody"] += 1
            s.paid_by[r.get("paid_by", "gateway")] += 1
        # A held request counts where it began to wait, not where it was answered.
        for r in ledger:
            began = r["ts"] - float(r.get("latency_s") or 0.0)
            if r.get("held_s") is not None and p.start <= began and (last or began < p.end):
                s.held += 1
                s.held_longest_s = max(s.held_longest_s, float(r["held_s"]))
        out.append(s)
    return out


def answered_from(line: Mapping[str, Any]) -> float:
    """When the request's answering attempt began: its start, or the end of its hold."""
    return float(line["ts"]) - float(line.get("latency_s") or 0.0) + float(line.get("held_s") or 0.0)


def _counts(c: Counter[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in c.most_common()) or "–"


def table(rows: Sequence[PhaseSummary]) -> list[str]:
    width = max(len(r.name) for r in rows)
    out = [f"{'phase':<{width}}  alive  turns  {'answered by':<44}  {'held (longest)':<16}  paid by (calls)"]
    for r in rows:
        held = f"{r.held} ({r.held_longest_s:.0f} s)" if r.held else "–"
        out.append(f"{r.name:<{width}}  {f'{r.alive}/{r.sessions}':>5}  {r.turns:>5}  {_counts(r.answered_by):<44}  "
                   f"{held:<16}  {_counts(r.paid_by)}")
    return out
