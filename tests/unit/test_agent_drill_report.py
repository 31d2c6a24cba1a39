"""The agent drill's table: sessions alive per phase, answers and payers where their answering attempt
began, held requests where they began to wait; and the drill finding the CLIs it drives."""

from __future__ import annotations

from pathlib import Path

from gateway.commands.agent_clis import find_clis
from gateway.commands.agent_drill import run_agent_drill
from gateway.commands.agent_drill_report import PhaseWindow, TurnDone, summarise, table

PHASES = [PhaseWindow("healthy", 0, 10), PhaseWindow("down", 10, 40), PhaseWindow("recovery", 40, 50)]


def test_a_session_counts_as_alive_until_the_phase_in_which_its_turn_failed() -> None:
    turns = [TurnDone("a", 0, 5, True), TurnDone("b", 0, 5, True), TurnDone("b", 5, 12, False, "API Error: 503")]
    rows = summarise(PHASES, ["a", "b"], turns, [])
    assert [(r.alive, r.turns) for r in rows] == [(2, 2), (1, 0), (1, 0)]


def test_answers_count_where_they_began_and_a_held_request_where_it_began_to_wait() -> None:
    ledger = [
        {"ts": 5.0, "latency_s": 1.0, "provider": "subscription", "paid_by": "client"},
        {"ts": 42.0, "latency_s": 25.0, "provider": "anthropic", "paid_by": "gateway", "held_s": 24.0},
    ]
    rows = summarise(PHASES, ["a"], [TurnDone("a", 0, 45, True)], ledger)
    assert dict(rows[0].answered_by) == {"subscription": 1} and dict(rows[0].paid_by) == {"client": 1}
    assert (rows[1].held, rows[1].held_longest_s) == (1, 24.0) and not rows[1].answered_by
    assert dict(rows[2].answered_by) == {"anthropic": 1} and rows[2].held == 0
    assert rows[2].turns == 1


def test_an_answer_begun_before_a_phase_changed_belongs_to_the_earlier_phase() -> None:
    # Begun at 9.5 s under the healthy phase's faults, written at 10.3 s: the subscription answered it healthy.
    ledger = [{"ts": 10.3, "latency_s": 0.8, "provider": "subscription", "paid_by": "client"}]
    rows = summarise(PHASES, ["a"], [TurnDone("a", 0, 11, True)], ledger)
    assert dict(rows[0].answered_by) == {"subscription": 1} and not rows[1].answered_by


def test_turns_that_end_after_the_script_belong_to_its_last_phase() -> None:
    rows = summarise(PHASES, ["a"], [TurnDone("a", 48, 55, True)], [{"ts": 54.0, "provider": "openai"}])
    assert rows[2].turns == 1 and dict(rows[2].answered_by) == {"openai": 1}


def test_the_table_has_a_row_per_phase_under_its_header() -> None:
    lines = table(summarise(PHASES, ["a"], [], []))
    assert lines[0].split()[:3] == ["phase", "alive", "turns"]
    assert [line.split()[0] for line in lines[1:]] == ["healthy", "down", "recovery"]


def test_the_drill_says_where_to_get_the_clis_when_it_cannot_find_both(tmp_path: Path) -> None:
    (tmp_path / "claude").write_text("")
    assert find_clis(tmp_path, tmp_path) is None
    (tmp_path / "codex").write_text("")
    assert find_clis(tmp_path, tmp_path) == tmp_path
    lines: list[str] = []
    assert run_agent_drill(tmp_path / "nowhere", print_line=lines.append) == 2
    assert "--clients" in lines[0] and "npm" in lines[0]
