"""Codex CLI and Claude Code, the released binaries, through a gateway whose primary upstream goes down:
before the session, between two turns, and in the middle of a streamed answer; on a route whose targets
speak the client's own wire and on one that crosses to the other wire.

A prompt's `run: cat note.txt` line makes the simulated model call the client's shell tool; the client
runs it for real in its work directory, and the model's next answer quotes what the command printed, so
an answer holding the note's random token is a whole tool round trip through the gateway.
"""

from __future__ import annotations

import pytest

from gateway.sim import Fault
from tests.agents.clients import Turn
from tests.agents.conftest import SessionFactory
from tests.agents.policies import CLAUDE_SHAPES, CODEX_SHAPES, REPLY_TOKENS, Shape
from tests.agents.session import READ_NOTE

# The first test installs the CLIs when they are missing (minutes on a cold npm cache); every turn of a
# CLI has its own bound (clients.TURN_TIMEOUT_S).
pytestmark = pytest.mark.timeout(900)

SHAPES = [pytest.param(s, id=s.id) for s in (*CODEX_SHAPES, *CLAUDE_SHAPES)]
PLAIN_TEXT = " ".join(f"t{i}" for i in range(1, REPLY_TOKENS))   # what follows the word in a plain answer


def answered(turn: Turn) -> str:
    """The CLI's printed answer, once it has exited 0."""
    assert turn.returncode == 0, turn.explain()
    return turn.stdout


@pytest.mark.parametrize("shape", SHAPES)
def test_a_tool_using_session_whose_primary_is_down_from_the_start_is_served_by_the_secondary(
        agent_session: SessionFactory, shape: Shape) -> None:
    s = agent_session(shape)
    s.primary_down(Fault(refuse=True))
    token = s.write_note()
    turn = s.cli.first(f"What does the note say?\n{READ_NOTE}")
    text = answered(turn)
    assert f"{shape.secondary.word} The tool said:" in text and token in text, turn.explain()
    assert shape.primary.word not in text, turn.explain()
    records = s.ledger_requests()
    assert records and {r["provider"] for r in records} == {shape.secondary.provider}
    assert all(r["fallback"] for r in records)
    assert s.failovers() >= 1
    assert s.dropped_features() >= shape.crossing_drops
    if not shape.crossing_drops:
        assert s.dropped_features() == set()     # the same wire: passed through, nothing dropped


@pytest.mark.parametrize("shape", SHAPES)
def test_the_turn_after_the_primary_goes_down_runs_its_tool_and_is_answered_by_the_secondary(
        agent_session: SessionFactory, shape: Shape) -> None:
    s = agent_session(shape)
    first_token = s.write_note()
    first = s.cli.first(f"What does the note say?\n{READ_NOTE}")
    first_text = answered(first)
    assert f"{shape.primary.word} The tool said:" in first_text and first_token in first_text, first.explain()
    assert s.requests_to(shape.secondary.provider) == 0

    s.primary_down(Fault(status=503))
    second_token = s.write_note()
    second = s.cli.next(f"And now?\n{READ_NOTE}")
    second_text = answered(second)
    assert f"{shape.secondary.word} The tool said:" in second_text and second_token in second_text, second.explain()
    assert shape.primary.word not in second_text, second.explain()
    assert s.requests_to(shape.secondary.provider) >= 2          # the tool call, then the answer to its result
    later = [r for r in s.ledger_requests() if r["provider"] == shape.secondary.provider]
    assert later and all(r["fallback"] for r in later)
    assert s.failovers() >= 1
    assert s.dropped_features() >= shape.crossing_drops


@pytest.mark.parametrize("shape", [pytest.param(s, id=s.id) for s in CLAUDE_SHAPES])
def test_a_messages_stream_cut_mid_answer_is_continued_by_the_secondary(
        agent_session: SessionFactory, shape: Shape) -> None:
    s = agent_session(shape)
    s.primary_down(Fault(cut_after_chunks=3))
    turn = s.cli.first("Say hello.")
    text = answered(turn).strip()
    # The client keeps the primary's first words; the secondary's answer follows them (the simulators
    # ignore the prefix they are given) and ends whole, not truncated.
    assert text.startswith(f"{shape.primary.word} t1") and text.endswith(f"{shape.secondary.word} {PLAIN_TEXT}"), \
        turn.explain()
    last = s.ledger_requests()[-1]
    assert last["provider"] == shape.secondary.provider and "resumed" in last["events"]
    assert s.metric("recloser_mid_stream_failures_total", route=shape.route, provider=shape.primary.provider,
                    action="resumed") >= 1


@pytest.mark.parametrize("shape", [pytest.param(s.twins("twin"), id=s.id) for s in CODEX_SHAPES])
def test_a_responses_stream_cut_mid_answer_is_restarted_on_the_secondary_and_stitched(
        agent_session: SessionFactory, shape: Shape) -> None:
    # A Responses stream has no prefill: it is restarted, and stitched only when the new answer begins
    # with the text the client already has; the two upstreams answer alike, the ledger says who finished.
    s = agent_session(shape)
    s.primary_down(Fault(cut_after_chunks=3))
    turn = s.cli.first("Say hello.")
    text = answered(turn).strip()
    assert text == f"twin {PLAIN_TEXT}", turn.explain()
    last = s.ledger_requests()[-1]
    assert last["provider"] == shape.secondary.provider and "restarted" in last["events"]
    assert s.metric("recloser_mid_stream_failures_total", route=shape.route, provider=shape.primary.provider,
                    action="restarted") >= 1
