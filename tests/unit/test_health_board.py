"""The health board across policy reloads: what it learned about a deployment outlives the policy."""

from __future__ import annotations

from gateway.metrics import Metrics
from gateway.policy.schema import Breaker, Timeouts
from gateway.routing.breaker import Outcome, State
from gateway.routing.health import HealthBoard
from gateway.deployment import Deployment

CFG = Breaker(consecutive_failures=2)


def deployment(provider: str) -> Deployment:
    return Deployment(provider=provider, model="m", kind="openai", base_url="http://127.0.0.1:1/v1",
                      timeouts=Timeouts())


def test_adopting_a_new_policy_keeps_the_state_of_deployments_it_still_names() -> None:
    a, b, c = deployment("a"), deployment("b"), deployment("c")
    now = 100.0
    board = HealthBoard([a, b], Metrics(), lambda: now, CFG)
    for _ in range(2):
        board.record(a, Outcome(ok=False, at=now, reason="server_error"), CFG)
    assert board.healths[a.key].state is State.EJECTED

    board.track([a, c])
    assert board.healths[a.key].state is State.EJECTED
    assert board.healths[c.key].state is State.HEALTHY
    assert [row["provider"] for row in board.report([])] == ["a", "c"], "a dropped deployment leaves the report"
    board.record(b, Outcome(ok=True, at=now), CFG)   # a request still in flight on the old policy
