"""Codex CLI and Claude Code, the released binaries, in a tool-using session on a healthy route: every
answer they get is checked (their real system prompts, tool schemas and tool round trips), and none is
counted as a defect."""

from __future__ import annotations

import pytest

from tests.agents.conftest import SessionFactory
from tests.agents.policies import CLAUDE_SHAPES, CODEX_SHAPES, Shape
from tests.agents.session import READ_NOTE

pytestmark = pytest.mark.timeout(900)


@pytest.mark.parametrize("shape", [pytest.param(s, id=s.id) for s in (*CODEX_SHAPES, *CLAUDE_SHAPES)])
def test_a_real_agents_tool_using_session_counts_no_answer_defect(agent_session: SessionFactory,
                                                                    shape: Shape) -> None:
    s = agent_session(shape)
    token = s.write_note()
    turn = s.cli.first(f"What does the note say?\n{READ_NOTE}")
    assert turn.returncode == 0 and token in turn.stdout, turn.explain()
    assert sum(v for _, v in s.samples("recloser_answers_checked_total")) >= 2   # the tool call and the answer
    assert s.samples("recloser_answer_defects_total") == []
