"""Journalling an attempt is bookkeeping: when it fails, the attempt and its outcome go on regardless."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from gateway.core.auth import Caller
from gateway.core.deployment import Deployment
from gateway.core.metrics import Metrics
from gateway.flow.attempts import Attempts
from gateway.policy.load import parse_policy
from gateway.providers.base import AttemptError, Call, Failure, Reply
from gateway.routing.health import HealthBoard
from gateway.routing.request_log import RequestLog
from gateway.routing.table import build_routing, resolve_upstreams

POLICY = """
version: 1
providers:
  up: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
routes:
  chat:
    targets: [{provider: up, model: m}]
"""


class Upstream:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        if self.fail:
            raise AttemptError(Failure.STATUS, status=503)
        return Reply(200, body=b"{}")


def broken(*args: object) -> None:
    raise RuntimeError("the journal's disk is full")


@pytest.mark.parametrize("fail", [False, True])
def test_a_journal_that_fails_neither_fails_the_attempt_nor_hides_its_outcome(fail: bool) -> None:
    doc = parse_policy(textwrap.dedent(POLICY).lstrip("\n"), "p.yaml", {}).document
    route = build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]
    d = route.deployments[0]
    board = HealthBoard(route.deployments, Metrics(), lambda: 0.0, route.breaker)
    attempts = Attempts(lambda _: Upstream(fail), board, Metrics(), lambda: 0.0)
    attempts.on_start, attempts.on_failed = broken, broken
    log = RequestLog(route, Call("chat", {"model": "chat", "messages": []}, False, "r"), Caller("k", "t", "a"), 0.0, 60.0)
    if fail:
        with pytest.raises(AttemptError):
            asyncio.run(attempts.once(log, d, log.call, "primary"))
        assert board.healths[d.key].window.totals(0.0, route.breaker.window_s) == (0, 1)
    else:
        assert asyncio.run(attempts.once(log, d, log.call, "primary")).status == 200
        assert board.healths[d.key].window.totals(0.0, route.breaker.window_s) == (1, 0)
