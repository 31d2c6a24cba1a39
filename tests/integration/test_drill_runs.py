"""`recloser drill` prints as it goes: a progress line first, then each phase's rows as soon as the runs
they compare have finished that phase, whether the runs go one after another or side by side."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.commands.drill_plan import DrillSettings
from gateway.commands.drill_runner import run_drill

TINY = DrillSettings(rate_per_s=8, phase_s=0.3, outage_s=0.6, recovery_s=0.3, parallel=False)


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def line(self, text: str) -> None:
        self.records.append(("line", text))

    def progress(self, text: str) -> None:
        self.records.append(("progress", text))

    def tick(self, text: str) -> None:
        pass

    def first(self, kind: str, start: str) -> int:
        return next(i for i, (k, text) in enumerate(self.records) if k == kind and start in text)


def test_one_after_another_each_row_prints_before_the_next_phase_starts() -> None:
    out = Recorder()
    assert run_drill(TINY, out) == 0
    assert out.records[0] == ("progress", "  [  0 s] starting 7 runs …")
    assert out.records[1][1].startswith("recloser drill:")
    # Breakers off runs second: its healthy phase ends the first row pair, before its 429 storm starts.
    assert out.first("line", "healthy ") < out.first("progress", "breakers off: 429 storm (2/5)")
    assert out.first("line", "429 storm") < out.first("progress", "breakers off: ttft 20x slower (3/5)")
    # ... and the table is printed long before the long outage runs.
    assert out.first("line", "quality brownout") < out.first("progress", "probes: long outage (1/2)")
    assert "active probes  success while down" in out.records[-1][1]


def test_side_by_side_the_drill_prints_the_whole_table_in_order_and_draws_its_chart(tmp_path: Path) -> None:
    out = Recorder()
    chart = tmp_path / "drill.png"
    assert run_drill(replace(TINY, parallel=True), out, chart=chart) == 0
    assert out.records[0] == ("progress", "  [  0 s] starting 7 runs …")
    lines = [text for kind, text in out.records if kind == "line"]
    rows = [line.split()[0] for line in lines[3:] if line and not line[0].isspace()]
    assert rows[:7] == ["healthy", "429", "ttft", "hard", "recovery", "quality", "blind:"]
    assert "runs side by side" in lines[0] and lines[-1] == f"chart: {chart}"
    assert chart.read_bytes().startswith(b"\x89PNG")
