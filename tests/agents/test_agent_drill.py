"""`recloser drill --agents` with the released CLIs: a Claude Code session on a subscription and a Codex
session on a personal key, their own retries off, through the whole incident (auth refused, every
frontier target down, the local pool down too for longer than any client's retries, recovery), and
every session finishes, each phase answered by whom it should be and paid by whom it should be."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.commands.agent_drill import agent_drill

pytestmark = pytest.mark.timeout(900)

PHASE_S = 8.0
OUTAGE_S = 20.0


def test_every_agent_session_finishes_the_incident(agent_clients: Path) -> None:
    lines: list[str] = []
    drill = agent_drill(agent_clients, per_cli=1, phase_s=PHASE_S, outage_s=OUTAGE_S, print_line=lines.append)
    assert not drill.dead(), "\n".join(t.detail for s in drill.sessions for t in s.turns if not t.ok)
    assert all(len(s.turns) >= 3 for s in drill.sessions), [len(s.turns) for s in drill.sessions]
    healthy, auth, frontier_down, all_down, recovery = drill.rows
    assert [r.alive for r in drill.rows] == [2] * 5
    assert set(healthy.answered_by) & {"subscription", "personal"} and healthy.paid_by["client"] > 0
    # The credentials refused: the organisation's targets answer (its API-key targets; a request that meets
    # the next phase's outage on its way may end at the pool), none on the refused credentials, and the
    # organisation pays.
    assert set(auth.answered_by) & {"anthropic", "openai"}, auth.answered_by
    assert not set(auth.answered_by) & {"subscription", "personal"}, auth.answered_by
    assert set(auth.paid_by) == {"gateway"}
    # Every frontier target down: the local pool is the last target standing.
    assert set(frontier_down.answered_by) == {"local-gpu"} and frontier_down.turns >= 1
    # Nothing answers: the sessions' requests are held, and answered once targets are back.
    assert all_down.held >= 1 and all_down.held_longest_s >= OUTAGE_S / 2
    assert recovery.turns >= 1 and set(recovery.answered_by) & {"subscription", "personal", "anthropic", "openai"}
