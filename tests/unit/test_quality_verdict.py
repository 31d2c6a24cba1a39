"""Canary verdicts: a deployment's run history in, ok / degraded / ejected out. Pure, no clock needed."""

from __future__ import annotations

from gateway.quality.checks import ItemResult
from gateway.policy.quality import Canaries
from gateway.quality.verdict import Quality, Signal, after_run, pass_ratio

CFG = Canaries(window_runs=3, degrade_drop=0.25, eject_below=0.5, recover_within=0.1)


def results(passed: int, total: int = 10, errors: int = 0) -> list[ItemResult]:
    out = [ItemResult(f"i{i}", "regex", "pass" if i < passed else "fail", "" if i < passed else "wrong")
           for i in range(total)]
    return out + [ItemResult(f"e{i}", "regex", "error", "timed out") for i in range(errors)]


def runs(*passed: int, q: Quality | None = None, cfg: Canaries = CFG) -> Quality:
    q = q or Quality()
    for n in passed:
        q = after_run(q, results(n), cfg)
    return q


def test_a_steady_deployment_stays_ok_and_learns_its_baseline() -> None:
    q = runs(10, 10, 10)
    assert q.signal is Signal.OK and q.baseline == 1.0 and q.runs == 3


def test_a_drop_from_ten_to_seven_of_ten_over_the_window_degrades() -> None:
    q = runs(10, 10, 10, 7, 7, 7, cfg=Canaries(window_runs=3, degrade_drop=0.3, eject_below=0.5))
    assert q.signal is Signal.DEGRADED


def test_one_bad_run_among_good_ones_is_judged_over_the_window() -> None:
    assert runs(10, 10, 10, 8).signal is Signal.OK          # mean 9.3/10: within the drop
    assert runs(10, 10, 10, 1).signal is Signal.DEGRADED    # mean 7/10: 0.3 below the baseline


def test_failing_most_items_ejects() -> None:
    assert runs(10, 10, 10, 0, 0).signal is Signal.EJECTED  # mean 3.3/10 < 0.5


def test_a_small_model_is_judged_against_its_own_baseline_not_a_fixed_bar() -> None:
    assert runs(6, 6, 6, 6, 6, 6).signal is Signal.OK
    assert runs(8, 8, 8, 8, 8, 8).signal is Signal.OK
    assert runs(8, 8, 8, 5, 5, 5).signal is Signal.DEGRADED


def test_one_run_back_at_the_baseline_recovers_and_the_bad_runs_no_longer_count() -> None:
    q = runs(10, 10, 0, 0, 10)
    assert q.signal is Signal.OK and q.recent == (1.0,)


def test_a_better_but_not_good_run_keeps_it_degraded() -> None:
    assert runs(10, 10, 10, 2, 7).signal is Signal.DEGRADED


def test_the_baseline_does_not_follow_a_brownout_down() -> None:
    assert runs(10, 10, 10, 0, 0, 0, 0).baseline == 1.0


def test_items_whose_call_failed_say_nothing_of_quality() -> None:
    assert pass_ratio(results(5, 5, errors=5)) == 1.0
    q = after_run(runs(10, 10), [ItemResult("e", "regex", "error", "refused")], CFG)
    assert q.signal is Signal.OK and q.recent == (1.0, 1.0) and q.runs == 3


def test_a_run_over_the_budget_changes_nothing() -> None:
    before = runs(10, 10, 0)
    after = after_run(before, [ItemResult("s", "regex", "skipped", "over budget")], CFG)
    assert after.signal is before.signal and after.recent == before.recent


def test_the_reason_names_quality_with_ratio_and_baseline() -> None:
    assert runs(10, 10, 10, 1).describe() == "quality: canaries pass 70% over the last 3 runs, baseline 100%"
