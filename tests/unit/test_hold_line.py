"""Requests held through an outage: who is let go, when, at what pace, and what a held request costs
the requests in flight. The line's clock is injected; its timer is driven by calling `tick(now)`."""

from __future__ import annotations

import asyncio

from gateway.core.auth import Caller
from gateway.core.deployment import Deployment
from gateway.core.metrics import Metrics
from gateway.flow.admission import Admission
from gateway.flow.hold_pace import refused, release_quota, scouts_now
from gateway.flow.holding import KEEPALIVE_S, HoldLine, Wake
from gateway.policy.schema import Breaker, Route, Target, Timeouts
from gateway.providers.base import Call
from gateway.routing.breaker import Outcome, State
from gateway.routing.health import HealthBoard
from gateway.routing.pools import PRIORITIES
from gateway.routing.request_log import RequestLog
from gateway.routing.table import RouteTable

CFG = Breaker(consecutive_failures=1, probe_requests=1, slow_start_s=10.0, probe_interval_s=5.0)


def test_a_route_back_lets_a_tenth_go_at_once_and_the_rest_over_its_slow_start() -> None:
    assert release_quota(waiting=100, released=0, since_back_s=0.0, slow_start_s=10.0) == 10
    assert release_quota(waiting=90, released=10, since_back_s=0.5, slow_start_s=10.0) == 0
    assert release_quota(waiting=90, released=10, since_back_s=5.0, slow_start_s=10.0) == 40
    assert release_quota(waiting=50, released=50, since_back_s=10.0, slow_start_s=10.0) == 50


def test_without_slow_start_every_held_request_goes_at_once() -> None:
    assert release_quota(waiting=7, released=0, since_back_s=0.0, slow_start_s=0.0) == 7


def test_one_scout_at_a_time_tries_a_route_with_a_target_not_ejected() -> None:
    assert scouts_now(waiting=5, out=0, any_target_standing=True, scout_due=True) == 1
    assert scouts_now(waiting=5, out=1, any_target_standing=True, scout_due=True) == 0
    assert scouts_now(waiting=5, out=0, any_target_standing=False, scout_due=True) == 0
    assert scouts_now(waiting=5, out=0, any_target_standing=True, scout_due=False) == 0


def test_sheddable_requests_are_never_held_and_the_line_is_bounded() -> None:
    assert refused("sheddable", 0, 10) is not None
    assert refused("standard", 10, 10) is not None
    assert refused("critical", 9, 10) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def setup(n_targets: int = 1) -> tuple[Clock, HealthBoard, HoldLine, RouteTable, Metrics]:
    ds = tuple(Deployment(provider=f"p{i}", model="m", kind="openai", base_url="http://127.0.0.1:1/v1",
                          timeouts=Timeouts()) for i in range(n_targets))
    clock, metrics = Clock(), Metrics()
    board = HealthBoard(ds, metrics, clock, CFG)
    route = RouteTable(name="chat", deployments=ds, weights=(1,) * n_targets, priorities=tuple(range(n_targets)),
                       config=Route(targets=[Target(provider=d.provider, model="m") for d in ds]), breaker=CFG)
    board.track(ds, [route])
    return clock, board, HoldLine(board, metrics, clock, max_held=100), route, metrics


def probe_sees_back(board: HealthBoard, route: RouteTable, at: float) -> None:
    board.record(route.deployments[0], Outcome(ok=True, at=at, ttft_s=0.1), CFG, probe=True)


def eject_all(board: HealthBoard, route: RouteTable, at: float) -> None:
    for d in route.deployments:
        board.record(d, Outcome(ok=False, at=at, reason="connect"), CFG)
        assert board.healths[d.key].state is State.EJECTED


async def woken(line: HoldLine, *held: object) -> list[Wake | None]:
    """What each held request was told, without waiting for anything not yet said."""
    tasks = [asyncio.ensure_future(line.wait(h)) for h in held]   # type: ignore[arg-type]
    await asyncio.sleep(0)
    out: list[Wake | None] = []
    for t in tasks:
        if t.done():
            out.append(t.result())
        else:
            t.cancel()
            out.append(None)
    await asyncio.gather(*tasks, return_exceptions=True)
    return out


async def test_a_held_request_waits_while_every_target_is_ejected_and_goes_when_a_probe_sees_one_back() -> None:
    clock, board, line, route, _ = setup()
    eject_all(board, route, clock.now)
    held = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=False)
    clock.now += 10
    line.tick(clock.now)
    assert await woken(line, held) == [None]
    probe_sees_back(board, route, clock.now)
    assert await woken(line, held) == [Wake.RELEASE]
    assert line.held == 0


async def test_critical_requests_are_let_go_before_standard_ones_that_came_earlier() -> None:
    clock, board, line, route, _ = setup()
    eject_all(board, route, clock.now)
    first = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=False)
    crit = line.enter(route, PRIORITIES["critical"], clock.now + 60, stream=False)
    probe_sees_back(board, route, clock.now)
    # Healthy again (probe_requests 1) with slow start: a tenth of two is one, the critical one.
    assert await woken(line, crit, first) == [Wake.RELEASE, None]
    line.answered(crit)
    clock.now += CFG.slow_start_s
    line.tick(clock.now)
    assert await woken(line, first) == [Wake.RELEASE]


async def test_a_hold_expires_after_hold_s_and_leaves_the_line() -> None:
    clock, board, line, route, metrics = setup()
    eject_all(board, route, clock.now)
    held = line.enter(route, PRIORITIES["standard"], clock.now + 30, stream=False)
    clock.now += 29.5
    line.tick(clock.now)
    assert await woken(line, held) == [None]
    clock.now += 1
    line.tick(clock.now)
    assert await woken(line, held) == [Wake.EXPIRE]
    assert line.held == 0
    assert metrics.registry.get_sample_value("recloser_held_requests_waiting", {"route": "chat"}) == 0


async def test_held_streams_get_a_keepalive_every_interval_and_whole_requests_none() -> None:
    clock, board, line, route, _ = setup()
    eject_all(board, route, clock.now)
    stream = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=True)
    whole = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=False)
    clock.now += KEEPALIVE_S - 0.5
    line.tick(clock.now)
    assert await woken(line, stream, whole) == [None, None]
    clock.now += 0.5
    line.tick(clock.now)
    assert await woken(line, stream, whole) == [Wake.PING, None]
    assert line.held == 2, "a keepalive keeps the request in the line"


async def test_a_released_request_that_finds_no_target_again_goes_back_to_its_place() -> None:
    clock, board, line, route, _ = setup()
    eject_all(board, route, clock.now)
    a = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=False)
    b = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=False)
    probe_sees_back(board, route, clock.now)
    assert await woken(line, a, b) == [Wake.RELEASE, None]
    line.again(a)
    eject_all(board, route, clock.now)
    clock.now += CFG.slow_start_s
    line.tick(clock.now)
    assert await woken(line, a, b) == [None, None], "not back after all: nobody goes until a probe says so"
    probe_sees_back(board, route, clock.now)
    assert await woken(line, a, b) == [Wake.RELEASE, None], "the first in line is still first"


async def test_with_no_target_ejected_one_scout_tries_the_route_every_probe_interval() -> None:
    clock, board, line, route, _ = setup()
    a = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=False)
    b = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=False)
    line.tick(clock.now + 1)
    assert await woken(line, a, b) == [None, None]
    clock.now += CFG.probe_interval_s
    line.tick(clock.now)
    assert await woken(line, a, b) == [Wake.RELEASE, None]
    line.answered(a)       # the scout was answered: the route is back, and slow start paces the rest
    clock.now += CFG.slow_start_s
    line.tick(clock.now)
    assert await woken(line, b) == [Wake.RELEASE]


async def test_held_requests_do_not_count_as_in_flight_while_they_wait() -> None:
    clock, board, line, route, _ = setup()
    admission = Admission(max_in_flight=10, max_loop_lag_ms=0)
    line.admission = admission
    admission.admit()                # the request, admitted by its handler, its answer not begun
    eject_all(board, route, clock.now)
    held = line.enter(route, PRIORITIES["standard"], clock.now + 60, stream=False)
    log = RequestLog(route, Call("chat", {}, False, "r"), Caller(key_id="k", team="t", app="a"), clock.now,
                     clock.now + 60)
    waiting = asyncio.ensure_future(line._waited(held, log, starting=True))
    await asyncio.sleep(0)
    assert (admission.in_flight, admission.starting) == (0, 0)
    clock.now += 7
    probe_sees_back(board, route, clock.now)
    assert await waiting is Wake.RELEASE
    assert (admission.in_flight, admission.starting) == (1, 1)
    assert log.held_s == 7
