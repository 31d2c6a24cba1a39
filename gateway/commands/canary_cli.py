"""`recloser canary --policy FILE [--deployment P/M]`: the suite once against each deployment, as a table.

For ops before a route moves to a new model, and after an incident. Calls go through the same
clients as the gateway's, are metered in the ledger as canary spend and respect its daily budget.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from gateway.serving.embedded import EmbeddedGateway
from gateway.policy.load import LoadedPolicy
from gateway.canaries.runner import CanaryRunner, Run
from gateway.policy.quality import Canaries

FAILING_SHOWN = 4


def format_runs(runs: Sequence[Run]) -> str:
    head = f"{'deployment':<36} {'passed':>7} {'ratio':>6} {'p50 ms':>7} {'max ms':>7} {'cost usd':>11}  failing items"
    lines = [head, "-" * len(head)]
    for run in runs:
        judged = [r for r in run.results if r.result in ("pass", "fail")]
        passed = sum(r.passed for r in judged)
        ratio = "-" if run.pass_ratio is None else f"{100 * run.pass_ratio:.0f}%"
        answered = [1000 * r.latency_s for r in run.results if r.result in ("pass", "fail")]
        p50 = f"{statistics.median(answered):.0f}" if answered else "-"
        worst = f"{max(answered):.0f}" if answered else "-"
        failing = [f"{r.item} ({r.result}: {r.got})" if r.got else f"{r.item} ({r.result})"
                   for r in run.results if not r.passed]
        shown = "; ".join(failing[:FAILING_SHOWN]) + (f"; … {len(failing) - FAILING_SHOWN} more"
                                                      if len(failing) > FAILING_SHOWN else "")
        lines.append(f"{run.deployment.key:<36} {f'{passed}/{len(judged)}':>7} {ratio:>6} {p50:>7} {worst:>7} "
                     f"{run.cost_usd:>11.6f}  {shown or '-'}")
    return "\n".join(lines)


def run_canary(loaded: LoadedPolicy, only: str | None = None) -> int:
    doc = loaded.document
    with EmbeddedGateway(loaded, background_canaries=False) as gw:
        ctx = gw.context
        deployments = ctx.routing.deployments()
        if only is not None:
            deployments = tuple(d for d in deployments if d.key == only)
            if not deployments:
                known = ", ".join(d.key for d in ctx.routing.deployments())
                print(f"recloser canary: no deployment '{only}' in {loaded.source} (known: {known})")
                return 2
        runner = ctx.canaries
        if runner is None:   # the policy runs no canaries on a schedule: the defaults, by hand
            runner = CanaryRunner(doc.canaries or Canaries(), deployments, ctx.dispatcher.attempts.client_for,
                                  ctx.metrics, ctx.meter.prices, ctx.meter.ledger)
        runs = [gw.run(runner.run_suite(d), timeout=runner.cfg.timeout_s * 2 + 30) for d in deployments]
        if ctx.meter.ledger is not None:
            gw.run(ctx.meter.ledger.flush())
    print(f"recloser canary: {len(runner.items)} items against {len(runs)} deployments ({loaded.source})")
    print(format_runs(runs))
    return 0
