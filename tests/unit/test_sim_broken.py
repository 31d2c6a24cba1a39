"""The simulator's broken answers: each kind, and the schedule that starts and ends them."""

from __future__ import annotations

from gateway.sim.answers import LOOP_WORD, broken_words, reply_words
from gateway.sim.behaviour import SimConfig, SimState
from gateway.sim.faults import Fault


def test_each_broken_kind_answers_as_named() -> None:
    assert broken_words("empty", 20, None) == ([], "stop")
    words, finish = broken_words("loop", 20, 300)
    assert set(words) == {LOOP_WORD} and len(words) == 300 and finish == "length"
    words, _ = broken_words("wrong_script", 20, None)
    assert all(not w.isascii() for w in words)
    assert reply_words("sim", 20, None, [{"role": "user", "content": "hi"}], False, "empty") == ([], "stop")


def test_a_scheduled_brownout_starts_after_its_delay_and_ends_after_its_length() -> None:
    state = SimState(SimConfig(name="sim", broken="loop", broken_after_s=10, broken_for_s=5))
    start = state.started
    state.started = start + 100            # as if started 100 s from now: not yet
    assert state.broken is None
    state.started = start - 12             # 12 s in: 2 s into the brownout
    assert state.broken == "loop"
    state.started = start - 16             # 16 s in: over
    assert state.broken is None


def test_a_fault_breaks_answers_whatever_the_schedule() -> None:
    state = SimState(SimConfig(name="sim"))
    assert state.broken is None
    state.fault = Fault(broken="bad_tool_args")
    assert state.broken == "bad_tool_args"
