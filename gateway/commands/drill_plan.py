"""What a drill runs and how its table is printed, phase by phase as results come in (pure: no I/O, no clock).

A drill is seven independent runs, each on a gateway and simulated providers of its own: the brownout
with breakers on and off, the quality brownout three ways (canaries, blind, off) and the long outage
with and without active probes. `Table` turns whatever results have arrived into the lines that can be
printed now, in the table's order: a phase's row waits only for the runs it compares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from gateway.commands.drill import BACK_SHARE, BROWNOUT_PHASES, GARBAGE, PHASES, QUALITY, Phase, PhaseReport


@dataclass(frozen=True)
class DrillSettings:
    rate_per_s: float
    phase_s: float        # each phase of the brownout and of the quality brownout
    outage_s: float       # the long outage, in seconds of its own: ejections (4 s, growing) are in seconds too
    recovery_s: float     # after the long outage
    parallel: bool        # the runs side by side in processes of their own, or one after another


# The same comparisons in under a minute: the seven runs at once, 4 s phases, 20 streams/s (seven runs at
# 30/s would take over a core of the two, and a loaded machine slows the gateways more than the faults do).
# The long outage keeps its 18 s: shorter, and without probes the primary's second ejection (8 s) would end
# with the outage, leaving nothing for probes to win.
QUICK = DrillSettings(rate_per_s=20, phase_s=4, outage_s=18, recovery_s=8, parallel=True)
# The long version: 6 s phases, a 12 s recovery, each run alone on the machine, one after another.
FULL = DrillSettings(rate_per_s=30, phase_s=6, outage_s=18, recovery_s=12, parallel=False)


def choose_settings(full: bool, rate_per_s: float | None = None, phase_s: float | None = None) -> DrillSettings:
    """The quick or the full drill, with the rate or the phase length the command line asked for."""
    base = FULL if full else QUICK
    if rate_per_s is not None:
        base = replace(base, rate_per_s=rate_per_s)
    if phase_s is not None:
        base = replace(base, phase_s=phase_s, recovery_s=2 * phase_s)
    return base


@dataclass(frozen=True)
class Job:
    key: str              # short: it names the run in progress lines and results
    breakers: bool
    canaries: bool
    active_probes: bool
    phases: tuple[Phase, ...]


ON, OFF = "breakers on", "breakers off"
Q_ON, Q_BLIND, Q_OFF = "quality on", "quality blind", "quality off"
PROBES, PASSIVE = "probes", "no probes"   # the long outage, with active probes and without


def long_outage(s: DrillSettings) -> tuple[Phase, ...]:
    return (Phase("long outage", {"status": 503}, length=s.outage_s / s.phase_s),
            Phase("recovery", {}, length=s.recovery_s / s.phase_s))


def drill_jobs(s: DrillSettings) -> tuple[Job, ...]:
    """In the order a sequential drill runs them: the rows of both brownout runs print as the second goes."""
    warm_quality = (BROWNOUT_PHASES[0], QUALITY)   # a healthy warm-up in which canaries learn a baseline
    return (
        Job(ON, True, False, True, BROWNOUT_PHASES),
        Job(OFF, False, False, True, BROWNOUT_PHASES),
        Job(Q_ON, True, True, True, warm_quality),
        # Without canaries the dumb answers leave no trace, so garbage answers follow on the same gateways.
        Job(Q_BLIND, True, False, True, warm_quality + (GARBAGE,)),
        Job(Q_OFF, False, False, True, warm_quality + (GARBAGE,)),
        Job(PROBES, True, False, True, long_outage(s)),
        Job(PASSIVE, True, False, False, long_outage(s)),
    )


def planned_seconds(s: DrillSettings) -> float:
    """Seconds of traffic: the longest run's when side by side, all of them one after another."""
    lengths = [sum(p.length for p in job.phases) * s.phase_s for job in drill_jobs(s)]
    return max(lengths) if s.parallel else sum(lengths)


def intro(s: DrillSettings) -> str:
    how = (f"{len(drill_jobs(s))} runs side by side, each in a process of its own" if s.parallel
           else "one run after another")
    return (f"recloser drill: {len(PHASES) + 1} phases of {s.phase_s:g} s at {s.rate_per_s:g} streams/s, breakers on "
            f"and off, the quality brownout with breakers blind to quality, garbage answers with no canaries, "
            f"an outage of {s.outage_s:g} s with and "
            f"without active probes ({how}, about {planned_seconds(s):.0f} s of traffic)")


# -- the table -------------------------------------------------------------------------------------

Results = Mapping[str, Sequence[PhaseReport]]

HEAD = (f"{'phase':<16} {'breakers':<8} {'success':>8} {'p50 ms':>8} {'p99 ms':>8} {'ttft p50':>9} "
        f"{'ttft p99':>9}  {'traffic share':<26} primary state")


def row(label: str, r: PhaseReport, first: bool) -> str:
    return (f"{r.name if first else '':<16} {label:<8} {100 * r.success_rate():>7.1f}% "
            f"{1000 * r.latency(50):>8.0f} {1000 * r.latency(99):>8.0f} {1000 * r.ttft(50):>9.0f} "
            f"{1000 * r.ttft(99):>9.0f}  {r.shares():<26} {r.states.get('primary', '-') if label != 'off' else '-'}")


def compared(results: Results) -> tuple[list[PhaseReport], list[PhaseReport], PhaseReport]:
    """Breakers on and off through all six phases, and the blind quality phase: the table's and the chart's."""
    on = [*results[ON], results[Q_ON][1]]
    off = [*results[OFF], results[Q_OFF][1]]
    return on, off, results[Q_BLIND][1]


def format_recovery(active: Sequence[PhaseReport], passive: Sequence[PhaseReport], recovery_s: float) -> str:
    """Per run: requests the primary got while down, and how soon it had its traffic back."""
    lines = []
    for label, (down, up) in (("active probes", active), ("without", passive)):
        seconds = up.primary_back_after()
        back = f"after {seconds:.1f} s" if seconds is not None else f"not within {recovery_s:g} s"
        lines.append(f"{label:<14} success while down {100 * down.success_rate():5.1f}%, "
                     f"{down.primary_requests} of {len(down.samples)} requests reached the primary, "
                     f"primary back to {100 * BACK_SHARE:.0f}% of the traffic {back} "
                     f"(recovery phase: {up.shares()})")
    return "\n".join(lines)


@dataclass(frozen=True)
class Section:
    needs: tuple[tuple[str, int], ...]            # (run, phases it must have finished)
    lines: Callable[[Results], list[str]]


def sections(s: DrillSettings) -> list[Section]:
    def brownout(i: int) -> Section:
        return Section(((ON, i + 1), (OFF, i + 1)),
                       lambda r: [row("on", r[ON][i], True), row("off", r[OFF][i], False)])

    def quality(r: Results) -> list[str]:
        return [row("on", r[Q_ON][1], True), row("blind", r[Q_BLIND][1], False), row("off", r[Q_OFF][1], False),
                "blind: breakers on without quality canaries, seeing only errors and latency"]

    def garbage(r: Results) -> list[str]:
        return [row("blind", r[Q_BLIND][2], True), row("off", r[Q_OFF][2], False),
                "garbage answers: no canaries either; the checks on live answers see the wrong script"]

    def worst(r: Results) -> list[str]:
        on, off, _ = compared(r)
        return [f"\nworst phase success: breakers on {100 * min(x.success_rate() for x in on):.1f}%, "
                f"off {100 * min(x.success_rate() for x in off):.1f}%"]

    def recovery(r: Results) -> list[str]:
        return [f"\nthe primary down (503) for {s.outage_s:g} s, then healthy, breakers on: with active probes and "
                "slow start, then without", format_recovery(r[PROBES], r[PASSIVE], s.recovery_s)]

    n = len(BROWNOUT_PHASES)
    everything = ((ON, n), (OFF, n), (Q_ON, 2), (Q_BLIND, 2), (Q_OFF, 2))
    return [Section((), lambda r: [HEAD, "-" * len(HEAD)]),
            *(brownout(i) for i in range(n)),
            Section(((Q_ON, 2), (Q_BLIND, 2), (Q_OFF, 2)), quality),
            Section(((Q_BLIND, 3), (Q_OFF, 3)), garbage),
            Section(everything, worst),
            Section(((PROBES, 2), (PASSIVE, 2)), recovery)]


class Table:
    """Hands out the table's lines in order, each section as soon as the runs it needs have finished it."""

    def __init__(self, s: DrillSettings) -> None:
        self._sections = sections(s)
        self._next = 0

    def take(self, results: Results) -> list[str]:
        lines: list[str] = []
        while self._next < len(self._sections) and all(
                len(results.get(run, ())) >= count for run, count in self._sections[self._next].needs):
            lines += self._sections[self._next].lines(results)
            self._next += 1
        return lines

    @property
    def complete(self) -> bool:
        return self._next == len(self._sections)


def progress(jobs: Sequence[Job], running: Mapping[str, int], elapsed_s: float, idle: str = "finishing") -> str:
    """One line: the phase each unfinished run is in, runs in the same phase named together."""
    groups: dict[str, list[str]] = {}
    for job in jobs:
        if job.key in running:
            i = running[job.key]
            groups.setdefault(f"{job.phases[i].name} ({i + 1}/{len(job.phases)})", []).append(job.key)
    where = " · ".join(f"{', '.join(keys)}: {phase}" for phase, keys in groups.items())
    return f"  [{elapsed_s:3.0f} s] {where or idle} …"
