"""What a deployment's canary runs say about its answers: a pure function of its run history.

A deployment is judged against its own baseline, not against a fixed bar: a small local model that
passes 7 of 10 items every day is fine at 7/10, a frontier model that drops from 10/10 to 7/10 is
not. The recent ratio is the mean over the last `window_runs` runs; the baseline follows ordinary
runs (up at once, down slowly, only from runs within `recover_within` of it), never a brownout's.

    ok ──(recent ≤ baseline − degrade_drop)──► degraded ──(recent < eject_below)──► ejected
     ▲                                            │                                   │
     └────────(one run within recover_within of the baseline)─────────────────────────┘
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from gateway.quality.checks import ItemResult
from gateway.policy.quality import Canaries

BASELINE_DECAY = 0.1    # how far one worse-but-acceptable run pulls the baseline down
EPSILON = 1e-9          # 7/10 against 10/10 with a drop of 0.3 is a drop, whatever floats say


class Signal(str, Enum):
    OK = "ok"
    DEGRADED = "degraded"
    EJECTED = "ejected"


@dataclass(frozen=True, slots=True)
class Quality:
    signal: Signal = Signal.OK
    recent: tuple[float, ...] = ()          # pass ratios of the last runs that judged anything
    baseline: float | None = None
    runs: int = 0
    last: tuple[ItemResult, ...] = ()       # the last run's item results

    @property
    def recent_ratio(self) -> float | None:
        return sum(self.recent) / len(self.recent) if self.recent else None

    def describe(self) -> str:
        """The breaker's reason while the canaries hold the deployment down."""
        ratio, base = self.recent_ratio or 0.0, self.baseline or 0.0
        return f"quality: canaries pass {ratio:.0%} over the last {len(self.recent)} runs, baseline {base:.0%}"


def pass_ratio(results: Sequence[ItemResult]) -> float | None:
    """Passed over judged items; failed calls and items over the budget say nothing of quality (None: nothing judged)."""
    judged = [r for r in results if r.result in ("pass", "fail")]
    if not judged:
        return None
    return sum(r.passed for r in judged) / len(judged)


def after_run(q: Quality, results: Sequence[ItemResult], cfg: Canaries) -> Quality:
    """The quality of a deployment after one run of the suite."""
    ratio = pass_ratio(results)
    if ratio is None:
        return replace(q, runs=q.runs + 1, last=tuple(results))
    baseline = ratio if q.baseline is None else q.baseline
    recent = (q.recent + (ratio,))[-cfg.window_runs:]
    mean = sum(recent) / len(recent)
    if q.signal is not Signal.OK and ratio >= baseline - cfg.recover_within - EPSILON:
        signal, recent = Signal.OK, (ratio,)     # recovered: the brownout's runs no longer count
    elif mean < cfg.eject_below - EPSILON:
        signal = Signal.EJECTED
    elif mean <= baseline - cfg.degrade_drop + EPSILON:
        signal = Signal.DEGRADED
    elif q.signal is not Signal.OK:
        signal = Signal.DEGRADED                 # better, not yet good: no flapping back and forth
    else:
        signal = Signal.OK
    if signal is Signal.OK and ratio >= baseline - cfg.recover_within - EPSILON:
        # Only ordinary runs teach the baseline: a slide that has not yet tripped the window must
        # not drag the bar down with it.
        baseline = ratio if ratio > baseline else baseline + BASELINE_DECAY * (ratio - baseline)
    return Quality(signal, recent, baseline, q.runs + 1, tuple(results))
