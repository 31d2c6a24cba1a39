"""The health board across policy reloads: what it learned about a deployment outlives the policy."""

from __future__ import annotations

from gateway.core.metrics import Metrics
from gateway.policy.schema import Breaker, Route, Target, Timeouts
from gateway.routing.breaker import Outcome, State
from gateway.routing.health import HealthBoard
from gateway.core.deployment import Deployment
from gateway.routing.table import RouteTable

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


def test_a_route_whose_targets_are_all_ejected_shows_no_available_target() -> None:
    a, b = deployment("a"), deployment("b")
    now = 100.0
    metrics = Metrics()
    board = HealthBoard([a, b], metrics, lambda: now, CFG)
    route = RouteTable(name="chat", deployments=(a, b), weights=(1, 1), priorities=(0, 1),
                       config=Route(targets=[Target(provider="a", model="m"), Target(provider="b", model="m")]),
                       breaker=CFG)
    board.track([a, b], [route])

    def available() -> float | None:
        return metrics.registry.get_sample_value("recloser_route_available_targets", {"route": "chat"})

    assert available() == 2
    for d in (a, b):
        for _ in range(2):
            board.record(d, Outcome(ok=False, at=now, reason="server_error"), CFG)
    assert available() == 0
    board.track([a], [])
    assert available() is None, "a route the policy dropped leaves the metrics"
