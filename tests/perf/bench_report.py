"""The overhead bench's report: what one gateway measured, the table beside direct's, and the blocks
of docs/performance.md it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from report import render, replace_block

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Measures:
    name: str
    start_s: float = float("nan")
    idle_rss_mb: float = float("nan")
    peak_rss_mb: float = float("nan")
    latency: dict[int, tuple[float, float]] = field(default_factory=dict)    # rate → (p50, p99) seconds
    ttft_p50: float = float("nan")
    saturation: float = float("nan")
    cpu_ms: float = float("nan")
    streams: float = float("nan")
    stream_cpu_ms: float = float("nan")
    overload: tuple[float, float, float, float] | None = None   # offered rps, admitted p99, shed share, shed p99
    errors: int = 0
    children_idle_rss_mb: float = 0.0   # of the idle RSS: the gateway's child processes' (the span export)


def ms(seconds: float) -> str:
    return "–" if seconds != seconds else f"{1000 * seconds:.2f}"


def table(direct: Measures, gateways: list[Measures]) -> str:
    def added(m: Measures, rate: int, i: int) -> str:
        if rate not in m.latency:
            return "–"
        return ms(m.latency[rate][i] - direct.latency[rate][i])

    rows: list[tuple[str, list[str], str]] = [
        ("added latency p50 / p99 at 100 rps (ms)",
         [f"{added(m, 100, 0)} / {added(m, 100, 1)}" for m in gateways], "≤ 1.0 / ≤ 3.0"),
        ("added latency p50 / p99 at 200 rps (ms)",
         [f"{added(m, 200, 0)} / {added(m, 200, 1)}" for m in gateways], "–"),
        ("added time to first token p50 (ms)", [ms(m.ttft_p50 - direct.ttft_p50) for m in gateways], "≤ 1.0"),
        ("saturation, non-stream (req/s)", [f"{m.saturation:,.0f}" for m in gateways], "≥ 1,500"),
        ("saturation, 20-chunk streams (streams/s)", [f"{m.streams:,.0f}" for m in gateways], "≥ 500"),
        ("CPU per request, non-stream / stream (ms)",
         [f"{m.cpu_ms:.2f} / {m.stream_cpu_ms:.2f}" for m in gateways], "–"),
        ("start to ready (s)", [f"{m.start_s:.2f}" for m in gateways], "≤ 1.0"),
        ("idle / peak RSS (MB), child processes included",
         [f"{m.idle_rss_mb:.0f} / {m.peak_rss_mb:.0f}" for m in gateways], "≤ 80 idle"),
        ("2x overload: offered req/s", [f"{m.overload[0]:,.0f}" if m.overload else "–" for m in gateways], "–"),
        ("2x overload: admitted p99 (ms)", [ms(m.overload[1]) if m.overload else "–" for m in gateways],
         "≤ unloaded p99 + 50"),
        ("2x overload: shed (503) share, p99 of a 503 (ms)",
         [f"{100 * m.overload[2]:.0f} % , {ms(m.overload[3])}" if m.overload else "–" for m in gateways],
         "the rest 503 at once"),
        ("non-200 answers below saturation", [str(m.errors) for m in gateways], "0"),
    ]
    return render([["measure", *(m.name for m in gateways), "goal"]] + [[label, *values, goal]
                                                                      for label, values, goal in rows])


def write_docs(report: str, facts: str, direct: Measures, notes: list[str], flags: str) -> None:
    replace_block(ROOT / "docs" / "performance.md", "bench", (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python tests/perf/bench.py {flags}`.\n\n"
        f"Machine: {facts}\n\n{report}\n\nDirect (the load generator straight to the fake upstream): p50/p99 "
        f"at 100 rps {ms(direct.latency[100][0])}/{ms(direct.latency[100][1])} ms; its closed-loop ceiling "
        f"{direct.saturation:,.0f} req/s and {direct.streams:,.0f} streams/s.\n\n" + "".join(f"- {n}\n" for n in notes)))


def write_failover_docs(tables: list[str], facts: str, flags: str) -> None:
    replace_block(ROOT / "docs" / "performance.md", "failover", (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python tests/perf/bench.py {flags}`.\n\n"
        f"Machine: {facts}\n\n" + "\n\n".join(tables) + "\n"))
