"""When defects in live answers make a brownout: a pure function of a deployment's recent answers.

One odd answer is not a brownout. Of its last `recent_answers` answers within `window_s`, a
deployment needs at least `min_answers`, and a defect rate at `degrade_rate` (degraded) or
`eject_rate` (ejected) that is also `margin` above both its own usual rate (learnt slowly from
ordinary times) and its peers' rate in the route (a kind of request every target answers "badly" is
the traffic, not the deployment). Once degraded, its last `min_answers` answers alone may eject it.

    ok ──(rate ≥ degrade_rate)──► degraded ──(rate ≥ eject_rate)──► ejected (on probation)
     ▲                               │                                 │
     └──(rate below half of degrade_rate)    (recover_answers clean answers in a row)──► ok

An ejection starts afresh: the brownout's answers no longer count, and while on probation every
defective answer ejects it again (`again`), so probes decide when it is back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.policy.answer_checks import AnswerChecks
from gateway.quality.verdict import Signal

USUAL_ALPHA = 0.01      # how fast the usual rate follows ordinary answers …
DRIFT_ALPHA = 0.001     # … and, while judged browned out, how slowly a lasting change is learnt


@dataclass(frozen=True, slots=True)
class DefectRate:
    signal: Signal = Signal.OK
    recent: tuple[tuple[float, bool], ...] = ()   # (when, defective) of the last answers
    usual: float = 0.0          # the deployment's ordinary defect rate
    clean_in_row: int = 0       # on probation: clean answers since the ejection
    kinds: tuple[str, ...] = () # the defects of the window's last defective answers (for the reason)
    again: bool = False         # this answer, defective on probation, ejects it once more

    def totals(self, now: float, cfg: AnswerChecks) -> tuple[int, int]:
        """(answers, defective ones) among the recent answers still within the window."""
        return _counts(self.recent, now - cfg.window_s)

    def describe(self, now: float, cfg: AnswerChecks) -> str:
        """The breaker's reason while the answers hold the deployment down (starts with "quality")."""
        n, bad = self.totals(now, cfg)
        what = ", ".join(self.kinds) or "defects"
        if self.signal is Signal.EJECTED and n == 0:
            return f"quality: answers defective ({what})"
        return f"quality: {bad} of the last {n} answers defective ({what}), usually {self.usual:.0%}"


def _counts(recent: tuple[tuple[float, bool], ...], since: float) -> tuple[int, int]:
    answers = bad = 0
    for at, defective in recent:
        if at > since:
            answers += 1
            bad += defective
    return answers, bad


def after_answer(r: DefectRate, found: tuple[str, ...], now: float, cfg: AnswerChecks,
                 peers: Callable[[], float | None] = lambda: None) -> DefectRate:
    """The defect rate of a deployment after one checked answer (`found`: its defects, maybe none);
    `peers()`: the defect rate of the route's other deployments over the window (None: too few answers),
    asked only when the deployment's own rate has jumped. This runs on every answer: one new state,
    built once."""
    defective = bool(found)
    kinds = tuple(dict.fromkeys(found + r.kinds))[:3] if defective else r.kinds
    if r.signal is Signal.EJECTED:   # on probation after an ejection
        if defective:
            return replace(r, clean_in_row=0, kinds=kinds, again=True)
        if r.clean_in_row + 1 >= cfg.recover_answers:
            return DefectRate(Signal.OK, (), r.usual)
        return replace(r, clean_in_row=r.clean_in_row + 1, again=False)
    recent = (r.recent + ((now, defective),))[-cfg.recent_answers:]
    usual = r.usual + (USUAL_ALPHA if r.signal is Signal.OK else DRIFT_ALPHA) * (defective - r.usual)
    signal = r.signal
    n, bad = _counts(recent, now - cfg.window_s)
    if n >= cfg.min_answers:
        rate = bad / n
        if r.signal is Signal.DEGRADED:
            # Degraded, it gets only `degraded_share` of its traffic, and the ordinary answers from before
            # would leave the window slowly: its last `min_answers` answers alone may eject it.
            last, last_bad = _counts(recent[-cfg.min_answers:], now - cfg.window_s)
            if last >= cfg.min_answers:
                rate = max(rate, last_bad / last)
        jumped = bad > 0 and rate - usual >= cfg.margin
        if jumped:
            others = peers()
            jumped = others is None or rate - others >= cfg.margin
        if jumped and rate >= cfg.eject_rate:
            # Start afresh: what follows (probes, then real traffic) decides when it is back.
            return DefectRate(Signal.EJECTED, (), usual, 0, kinds)
        if jumped and rate >= cfg.degrade_rate:
            signal = Signal.DEGRADED
        elif not (r.signal is Signal.DEGRADED and jumped and rate >= cfg.degrade_rate / 2):
            signal = Signal.OK           # (better, not yet good, stays degraded: no flapping back and forth)
    return DefectRate(signal, recent, usual, 0, kinds)
