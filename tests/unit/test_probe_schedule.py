"""When the prober probes an ejected deployment: a jittered interval from the ejection on, however
long the ejection is. An injected clock; no sockets, no sleeps."""

from __future__ import annotations

import random

from gateway.core.deployment import Deployment
from gateway.core.metrics import Metrics
from gateway.policy.schema import Breaker, Route, Target, Timeouts
from gateway.flow.prober import Prober
from gateway.routing.breaker import Outcome
from gateway.routing.health import HealthBoard
from gateway.routing.table import RouteTable, Routing

CFG = Breaker(consecutive_failures=1, base_ejection_s=300, max_ejection_s=300, probe_interval_s=5)
D = Deployment("p", "m", "openai", "http://127.0.0.1:9", Timeouts())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def prober(cfg: Breaker = CFG, d: Deployment = D) -> tuple[Prober, HealthBoard, Clock]:
    clock = Clock()
    route = RouteTable("chat", (d,), (1,), (0,), Route(targets=[Target(provider="p", model="m")]), cfg)
    board = HealthBoard([d], Metrics(), clock, cfg)
    p = Prober(Routing({"chat": route}), board, None, cfg, clock, random.Random(3))  # type: ignore[arg-type]
    return p, board, clock


def eject(board: HealthBoard, clock: Clock) -> None:
    board.record(D, Outcome(ok=False, at=clock.now, reason="server_error"), CFG)


def test_a_healthy_deployment_is_not_probed() -> None:
    p, _, clock = prober()
    clock.now += 60
    assert p.due_now() == []


def test_an_ejected_client_credential_deployment_is_never_probed_by_the_gateway() -> None:
    own = Deployment("p", "m", "anthropic", "http://127.0.0.1:9", Timeouts(), client_credentials=True)
    p, board, clock = prober(d=own)
    board.record(own, Outcome(ok=False, at=clock.now, reason="server_error"), CFG)
    for _ in range(100):                           # 20 s: probes would have been due several times
        clock.now += 0.2
        assert p.due_now() == []


def test_an_ejected_deployment_is_probed_every_interval_whatever_the_ejection_length() -> None:
    p, board, clock = prober()
    eject(board, clock)                            # out for 300 s
    assert p.due_now() == []                       # not at once: one interval after the ejection
    probed_at = []
    for _ in range(300):                           # a minute in steps of 0.2 s
        clock.now += 0.2
        if p.due_now():
            probed_at.append(clock.now - 100)
    gaps = [b - a for a, b in zip(probed_at, probed_at[1:])]
    assert 3.75 <= probed_at[0] <= 6.45
    assert len(probed_at) >= 9 and all(3.75 <= g <= 6.45 for g in gaps), gaps
    assert len(set(round(g, 1) for g in gaps)) > 1  # jittered, so replicas do not probe in step


def test_no_active_probes_when_the_policy_turns_them_off() -> None:
    cfg = CFG.model_copy(update={"active_probes": False})
    p, board, clock = prober(cfg)
    board.record(D, Outcome(ok=False, at=clock.now, reason="server_error"), cfg)
    clock.now += 60
    assert p.due_now() == [] and not Prober.wanted(p.routing, cfg)


def test_a_deployment_that_asked_to_be_left_alone_is_not_probed_before_its_retry_after() -> None:
    p, board, clock = prober()
    board.record(D, Outcome(ok=False, at=clock.now, reason="rate_limited", eject_for_s=30), CFG)
    probed_at = []
    for _ in range(200):                           # 40 s in steps of 0.2 s
        clock.now += 0.2
        if p.due_now():
            probed_at.append(round(clock.now - 100, 1))
    assert probed_at and probed_at[0] >= 30        # then every interval, as for any ejection
