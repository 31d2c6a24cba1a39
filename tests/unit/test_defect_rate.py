"""The rule that turns defects in live answers into a brownout: a rate over a minimum count, against the
deployment's own usual rate and its peers'; and the health board hearing it beside the canaries."""

from __future__ import annotations

from gateway.core.deployment import Deployment
from gateway.core.metrics import Metrics
from gateway.policy.answer_checks import AnswerChecks
from gateway.policy.schema import Breaker, Timeouts
from gateway.quality.defect_rate import DefectRate, after_answer
from gateway.quality.verdict import Signal
from gateway.routing.breaker import State
from gateway.routing.health import HealthBoard

CFG = AnswerChecks()


def play(answers: list[bool], r: DefectRate | None = None, start: float = 0.0, peers: float | None = None,
         step: float = 0.05) -> DefectRate:
    r = r or DefectRate()
    for i, bad in enumerate(answers):
        r = after_answer(r, ("wrong_script",) if bad else (), start + i * step, CFG, lambda: peers)
    return r


def test_one_odd_answer_is_not_a_brownout() -> None:
    assert play([True]).signal is Signal.OK
    assert play([False] * 30 + [True] + [False] * 10).signal is Signal.OK


def test_defects_under_the_minimum_count_say_nothing_yet() -> None:
    assert play([True] * (CFG.min_answers - 1)).signal is Signal.OK


def test_a_jump_to_mostly_defective_answers_ejects_at_the_minimum_count() -> None:
    assert play([False] * 50 + [True] * CFG.min_answers).signal is Signal.EJECTED


def test_a_rate_between_the_thresholds_degrades() -> None:
    assert play([False] * 50 + [True, False, False] * 10).signal is Signal.DEGRADED


def test_a_rate_its_peers_share_is_the_traffic_not_the_deployment() -> None:
    assert play([True, False] * 20, peers=0.5).signal is Signal.OK


def test_a_deployment_whose_defects_are_usual_is_judged_against_its_own_rate() -> None:
    usual = DefectRate(usual=0.3)
    assert play([True, False, False] * 10, r=usual).signal is Signal.OK


def test_old_answers_leave_the_window_by_time_and_by_count() -> None:
    r = play([True] * 5)
    r = play([False] * 5, r=r, start=CFG.window_s * 2)
    assert r.totals(CFG.window_s * 2 + 1, CFG) == (5, 0)
    r = play([False] * (CFG.recent_answers + 5))
    assert r.totals(10, CFG) == (CFG.recent_answers, 0)


def test_after_an_ejection_clean_answers_in_a_row_bring_it_back_and_a_defect_ejects_it_again() -> None:
    r = play([True] * CFG.min_answers)
    assert r.signal is Signal.EJECTED
    r = play([False] * (CFG.recover_answers - 1), r=r, start=10)
    assert r.signal is Signal.EJECTED
    again = play([True], r=r, start=20)
    assert again.signal is Signal.EJECTED and again.again
    assert play([False], r=r, start=20).signal is Signal.OK


def board() -> tuple[HealthBoard, float]:
    d = Deployment(provider="p", model="m", kind="openai", base_url="http://127.0.0.1:1", timeouts=Timeouts())
    now = [100.0]
    b = HealthBoard([d], Metrics(), lambda: now[0], Breaker())
    return b, now[0]


def test_the_worst_of_canaries_and_answers_holds_on_the_board() -> None:
    b, _ = board()
    b.record_quality("p/m", Signal.EJECTED, "quality: answers defective", source="answers")
    assert b.healths["p/m"].state is State.EJECTED
    b.record_quality("p/m", Signal.OK, "", source="canaries")   # canaries fine, answers still not
    assert b.healths["p/m"].state is State.EJECTED
    b.record_quality("p/m", Signal.OK, "", source="answers")
    assert b.healths["p/m"].state is State.PROBING


def test_once_degraded_its_last_answers_alone_eject_it_though_older_good_ones_remain_in_the_window() -> None:
    r = play([False] * 20 + [True] * 4)          # 4 of the last 20: degraded
    assert r.signal is Signal.DEGRADED
    r = play([True], r=r, start=5)               # 5 of its last 10: ejected, though only 5 of its last 20
    assert r.signal is Signal.EJECTED
