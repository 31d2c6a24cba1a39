"""The gateway never blames a provider for its own pauses: the time its loop spent elsewhere is taken out
of the first-token times the breaker judges, and a first-token limit waits out those pauses."""

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
from gateway.routing.breaker import State
from gateway.routing.classify import Verdict
from gateway.routing.health import HealthBoard
from gateway.routing.request_log import RequestLog
from gateway.routing.table import RouteTable, build_routing, resolve_upstreams
from tests.unit.test_attempt_journal_hooks import POLICY

class World:
    """A fake clock and a fake loop-pause counter that an upstream's answer moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.paused = 0.0


class Upstream:
    """Answers after `took` seconds, of which the gateway's loop was paused `paused`."""

    def __init__(self, world: World) -> None:
        self.world, self.took, self.gateway_paused = world, 0.1, 0.0

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        self.world.now += self.took
        self.world.paused += self.gateway_paused
        return Reply(200, body=b"{}")


def setup() -> tuple[RouteTable, HealthBoard, Attempts, Upstream]:
    doc = parse_policy(textwrap.dedent(POLICY).lstrip("\n"), "p.yaml", {}).document
    route = build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]
    world = World()
    board = HealthBoard(route.deployments, Metrics(), lambda: world.now, route.breaker)
    upstream = Upstream(world)
    attempts = Attempts(lambda _: upstream, board, Metrics(), lambda: world.now)
    attempts.paused = lambda: world.paused
    return route, board, attempts, upstream


def answer(route: RouteTable, attempts: Attempts) -> None:
    log = RequestLog(route, Call("chat", {"model": "chat", "messages": []}, False, "r"), Caller("k", "t", "a"),
                     attempts.clock(), attempts.clock() + 60.0)
    asyncio.run(attempts.once(log, route.deployments[0], log.call, "primary"))


@pytest.mark.parametrize("gateway_paused, expected", [(1.9, State.HEALTHY), (0.0, State.EJECTED)])
def test_answers_slow_only_by_the_gateways_own_pauses_leave_a_provider_healthy(
        gateway_paused: float, expected: State) -> None:
    route, board, attempts, upstream = setup()
    for _ in range(40):              # its usual pace: 0.1 s
        answer(route, attempts)
    upstream.took, upstream.gateway_paused = 2.0, gateway_paused
    for _ in range(20):              # 2 s as the gateway saw it; 0.1 s of it the provider's when it was paused 1.9 s
        answer(route, attempts)
    assert board.healths[route.deployments[0].key].state is expected


async def test_a_first_token_limit_waits_out_the_gateways_own_pauses() -> None:
    route, _, attempts, upstream = setup()
    loop = asyncio.get_running_loop()
    began = loop.time()

    class Slow:
        async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
            await asyncio.sleep(0.15)
            return Reply(200, body=b"{}")

    attempts.client_for = lambda _: Slow()
    attempts.paused = lambda: max(0.0, loop.time() - began - 0.01)   # paused nearly all along
    d, call = route.deployments[0], Call("chat", {}, True, "r")
    assert (await attempts._open_within(d, call, 10.0, 0.05)).status == 200

    attempts.paused = lambda: 0.0                                     # on time: the limit holds
    with pytest.raises(AttemptError, match="no first token within 0.05 s"):
        await attempts._open_within(d, call, 10.0, 0.05)


class TimesOut:
    """Times out after `took` seconds, of which the gateway's loop was paused `gateway_paused`."""

    def __init__(self, world: World, took: float, gateway_paused: float) -> None:
        self.world, self.took, self.gateway_paused = world, took, gateway_paused

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        self.world.now += self.took
        self.world.paused += self.gateway_paused
        raise AttemptError(Failure.TIMEOUT, "no first token in time")


@pytest.mark.parametrize("gateway_paused, failure, counted", [(2.5, Failure.PAUSED, 0), (0.0, Failure.TIMEOUT, 1)])
def test_a_timeout_that_was_mostly_the_gateways_own_pause_is_retried_and_not_counted_against_the_provider(
        gateway_paused: float, failure: Failure, counted: int) -> None:
    route, board, attempts, _ = setup()
    world = World()
    world.now = attempts.clock()
    attempts.clock, attempts.paused = (lambda: world.now), (lambda: world.paused)
    attempts.client_for = lambda _: TimesOut(world, 3.0, gateway_paused)
    log = RequestLog(route, Call("chat", {"model": "chat", "messages": []}, True, "r"), Caller("k", "t", "a"),
                     world.now, world.now + 60.0)
    with pytest.raises(AttemptError) as raised:
        asyncio.run(attempts.once(log, route.deployments[0], log.call, "primary"))
    assert raised.value.failure is failure
    verdict = attempts.classify(route, raised.value)
    assert (verdict.verdict is Verdict.RETRY_SAME) == (failure is Failure.PAUSED)
    assert board.healths[route.deployments[0].key].window.totals(world.now, route.breaker.window_s) == (0, counted)


TWO_TARGETS = POLICY.replace("targets: [{provider: up, model: m}]",
                             "targets: [{provider: up, model: m}, {provider: up, model: n}]")


@pytest.mark.parametrize("gateway_paused_all_along, hedged", [(True, False), (False, True)])
async def test_a_hedge_waits_out_the_gateways_own_pauses(gateway_paused_all_along: bool, hedged: bool) -> None:
    from gateway.flow.hedging import Hedging
    from gateway.routing.retry_budget import RetryBudget

    doc = parse_policy(textwrap.dedent(TWO_TARGETS).lstrip("\n"), "p.yaml", {}).document
    route = build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]
    board = HealthBoard(route.deployments, Metrics(), lambda: 0.0, route.breaker)

    class Slow:
        async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
            await asyncio.sleep(0.15)
            return Reply(200, body=b"{}")

    loop = asyncio.get_running_loop()
    attempts = Attempts(lambda _: Slow(), board, Metrics(), loop.time)
    began = loop.time()
    if gateway_paused_all_along:
        attempts.paused = lambda: max(0.0, loop.time() - began - 0.01)
    log = RequestLog(route, Call("chat", {}, False, "r"), Caller("k", "t", "a"), loop.time(), loop.time() + 60)
    first, second = route.deployments
    one = asyncio.ensure_future(attempts.with_retries(log, first, log.call, RetryBudget(100, 100)))
    leg = await Hedging(attempts)._hedged(log, one, second, log.call, RetryBudget(100, 100), RetryBudget(100, 100),
                                          0.05, {one: first})
    assert leg.reply is not None and log.hedged is hedged
