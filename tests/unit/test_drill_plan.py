"""The drill's plan: which settings `--full` selects, and which table lines are ready as runs report phases."""

from __future__ import annotations

from gateway.cli import parser
from gateway.commands.drill import BROWNOUT_PHASES, PhaseReport, Sample
from gateway.commands.drill_plan import (FULL, OFF, ON, PASSIVE, PROBES, Q_BLIND, Q_OFF, Q_ON, QUICK, Table, choose_settings,
                                drill_jobs, planned_seconds, progress)


def settings_from(*argv: str) -> object:
    args = parser().parse_args(["drill", *argv])
    return choose_settings(args.full, args.rate, args.phase_seconds)


def test_full_selects_the_long_drill_one_run_after_another() -> None:
    assert settings_from("--full") == FULL
    assert (FULL.rate_per_s, FULL.phase_s, FULL.outage_s, FULL.recovery_s) == (30, 6, 18, 12)   # the long drill's
    assert not FULL.parallel


def test_the_default_drill_is_the_quick_one_side_by_side() -> None:
    assert settings_from() == QUICK
    assert QUICK.parallel and QUICK.phase_s < FULL.phase_s and QUICK.rate_per_s < FULL.rate_per_s
    assert QUICK.outage_s == FULL.outage_s   # the breaker's ejections are in seconds: the outage keeps its length


def test_the_quick_drill_plans_its_traffic_within_a_minute_and_the_full_one_does_not() -> None:
    assert planned_seconds(QUICK) == 26          # the long outage and its recovery: the longest run
    assert planned_seconds(FULL) == 168          # all seven runs, one after another


def test_rate_and_phase_seconds_override_either_drill() -> None:
    s = choose_settings(True, rate_per_s=10, phase_s=2)
    assert (s.rate_per_s, s.phase_s, s.recovery_s, s.parallel) == (10, 2, 4, False)


def report(name: str) -> PhaseReport:
    return PhaseReport(name, [Sample(True, 0.1, 0.05, "primary")], {"primary": "healthy"}, 1)


def test_a_phase_row_prints_once_both_runs_compared_in_it_have_finished_it() -> None:
    table = Table(QUICK)
    results: dict[str, list[PhaseReport]] = {ON: [], OFF: []}
    head = table.take(results)
    assert head[0].startswith("phase") and len(head) == 2        # the header at once, before any run finished
    results[ON].append(report("healthy"))
    assert table.take(results) == []                             # waits for breakers off
    results[OFF].append(report("healthy"))
    rows = table.take(results)
    assert [r.split()[:2] for r in rows] == [["healthy", "on"], ["off", "100.0%"]]
    assert table.take(results) == []                             # nothing twice


def test_the_quality_rows_wait_for_the_brownout_rows_before_them_then_come_at_once() -> None:
    table = Table(QUICK)
    results: dict[str, list[PhaseReport]] = {k: [report("healthy"), report("quality brownout")]
                                             for k in (Q_ON, Q_BLIND, Q_OFF)}
    for k in (Q_BLIND, Q_OFF):
        results[k].append(report("garbage answers"))
    assert len(table.take(results)) == 2                          # only the header: the table keeps its order
    results[ON] = [report(p.name) for p in BROWNOUT_PHASES]
    results[OFF] = [report(p.name) for p in BROWNOUT_PHASES]
    lines = table.take(results)
    assert any(line.startswith("blind:") for line in lines) and "worst phase success" in lines[-1]
    garbage = [line.split()[:3] for line in lines if line.startswith("garbage answers ")]
    assert garbage == [["garbage", "answers", "blind"]]
    assert not table.complete
    results[PROBES] = results[PASSIVE] = [report("long outage"), report("recovery")]
    assert "with active probes" in table.take(results)[0] and table.complete


def test_progress_names_runs_in_the_same_phase_together_and_leaves_finished_runs_out() -> None:
    jobs = drill_jobs(QUICK)
    line = progress(jobs, {ON: 1, OFF: 1, PROBES: 0}, 12.0)
    assert line == "  [ 12 s] breakers on, breakers off: 429 storm (2/5) · probes: long outage (1/2) …"
