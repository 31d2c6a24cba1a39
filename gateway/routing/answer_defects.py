"""Defects in live answers, per deployment: counted, and turned into the quality state the health
board already holds for canaries (source "answers"), so degraded and ejected mean the same thing,
with the same `x-recloser-degraded` tiers, dashboards and probes, whoever found the answers poor.

The rule is pure (gateway/quality/defect_rate.py); this board holds each deployment's rate, works
out its peers' in the route, and tells the health board and the metrics what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.core.deployment import Deployment
from gateway.core.metrics import Metrics
from gateway.policy.answer_checks import AnswerChecks
from gateway.quality.defect_rate import DefectRate, after_answer
from gateway.quality.verdict import Signal
from gateway.routing.health import HealthBoard
from gateway.routing.table import RouteTable

SOURCE = "answers"


class AnswerBoard:
    def __init__(self, board: HealthBoard, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.board = board
        self.metrics = metrics
        self.clock = clock
        self.rates: dict[str, DefectRate] = {}
        self.checks: dict[str, AnswerChecks] = {}   # the settings each deployment was last judged by

    def peers(self, route: RouteTable, d: Deployment, now: float) -> float | None:
        """The defect rate of the route's other deployments over the window, when they answered enough."""
        cfg = route.answer_checks
        answers = bad = 0
        for other in route.deployments:
            r = self.rates.get(other.key)
            if other.key != d.key and r is not None:
                n, b = r.totals(now, cfg)
                answers += n
                bad += b
        return bad / answers if answers >= cfg.min_answers else None

    def judged(self, route: RouteTable, d: Deployment, found: Sequence[str]) -> None:
        """One answer of `d` was checked; `found`: its defects (maybe none). Counts them and moves the
        deployment's quality state when the rule says so."""
        cfg = route.answer_checks
        self.metrics.answers_checked(route.name, d.provider, d.model).inc()
        self.counted(route, d, found)
        now = self.clock()
        before = self.rates.get(d.key)
        if before is None:   # its series from the first answer on, so a panel shows 0 before any brownout
            before = DefectRate()
            self.metrics.answers_browned_out(d.provider, d.model).set(0)
        after = after_answer(before, tuple(found), now, cfg, lambda: self.peers(route, d, now))
        self.rates[d.key] = after
        self.checks[d.key] = cfg
        if after.signal is not before.signal or after.again:
            self.metrics.answers_browned_out(d.provider, d.model).set(after.signal is not Signal.OK)
            self.board.record_quality(d.key, after.signal, after.describe(now, cfg), SOURCE)

    def report(self, key: str) -> dict[str, Any] | None:
        """What `/admin/deployments` shows of a deployment's checked answers (None: none checked yet)."""
        r = self.rates.get(key)
        if r is None:
            return None
        n, bad = r.totals(self.clock(), self.checks[key])
        return {"signal": r.signal.value, "recent_answers": n, "defective": bad, "usual_rate": round(r.usual, 4),
                "recent_defects": list(r.kinds)}

    def counted(self, route: RouteTable, d: Deployment, found: Sequence[str]) -> None:
        """Defects counted in the metrics only: more of an answer already judged (a stream at its end)."""
        for defect in found:
            self.metrics.answer_defects(route.name, d.provider, d.model, defect).inc()
