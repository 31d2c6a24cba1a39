"""The drill's quality brownout: breakers that see quality move traffic off a primary that answers fast,
with status 200 and wrong; breakers that see only errors and latency keep sending it everything."""

from __future__ import annotations

from gateway.commands.drill import GARBAGE, PhaseReport, run_quality_phase


def primary_share(report: PhaseReport) -> float:
    answered = [s for s in report.samples if s.ok]
    return sum(s.provider == "primary" for s in answered) / max(1, len(answered))


def test_only_breakers_that_see_quality_move_traffic_away_from_a_dumb_primary() -> None:
    seeing = run_quality_phase(True, True, rate_per_s=15, phase_s=4)
    blind = run_quality_phase(True, False, rate_per_s=15, phase_s=4)
    assert seeing.success_rate() == 1.0 and blind.success_rate() == 1.0   # nothing failed: every answer was a 200
    # Out for its answers: degraded, or ejected; or probing, once an ejection by the canaries has run out
    # (base_ejection_s 4, as long as the phase, which a loaded machine stretches) and no request tried it yet.
    assert seeing.states["primary"] in ("degraded", "ejected", "probing") and blind.states["primary"] == "healthy"
    assert primary_share(blind) > 0.9
    assert primary_share(seeing) < primary_share(blind) - 0.3


def test_garbage_answers_lose_the_primary_its_traffic_without_any_canary() -> None:
    blind = run_quality_phase(True, False, rate_per_s=15, phase_s=4, phase=GARBAGE)
    off = run_quality_phase(False, False, rate_per_s=15, phase_s=4, phase=GARBAGE)
    assert blind.success_rate() == 1.0 and off.success_rate() == 1.0   # every answer a 200: only its content is wrong
    assert primary_share(off) > 0.9
    assert primary_share(blind) < 0.5, blind.shares()
