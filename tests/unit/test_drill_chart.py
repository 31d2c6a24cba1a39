"""`recloser drill --chart`: a PNG or SVG of success, latency and traffic share per phase; a clear error
when it cannot draw one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gateway.commands.drill import PHASES, PhaseReport, Sample
from gateway.commands.drill_chart import ChartUnavailable, check_chart, draw_chart, shares
from gateway.commands.drill_plan import QUICK
from gateway.commands.drill_runner import run_drill


def report(name: str, provider: str, ok: int = 10, failed: int = 0) -> PhaseReport:
    samples = [Sample(True, 0.1, 0.05, provider) for _ in range(ok)] + [Sample(False, 2.0, None, "-")] * failed
    return PhaseReport(name, samples, {"primary": "ejected"})


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_the_chart_is_written_in_the_format_its_name_asks_for(tmp_path: Path, suffix: str) -> None:
    on = [report(p.name, "secondary") for p in PHASES]
    off = [report(p.name, "primary", ok=6, failed=4) for p in PHASES]
    path = tmp_path / f"drill{suffix}"
    draw_chart(on, off, report(PHASES[-1].name, "primary"), path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]


def test_shares_count_failures_so_each_bar_is_all_of_the_phase() -> None:
    assert shares(report("x", "primary", ok=3, failed=1)) == {"primary": 75, "secondary": 0, "local-gpu": 0,
                                                              "failed": 25}


def test_an_unknown_chart_format_is_refused() -> None:
    with pytest.raises(ChartUnavailable, match="must end in .png or .svg"):
        check_chart(Path("drill.pdf"))


def test_without_matplotlib_the_drill_says_so_in_one_line_before_running(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # as if it were not installed
    assert run_drill(QUICK, chart=tmp_path / "drill.png") == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "recloser drill: --chart needs matplotlib: pip install 'recloser[chart]'\n"
