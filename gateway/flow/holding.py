"""Requests held through an outage: a route (or a key) with `hold_s` keeps a request that no target
could answer waiting, up to `hold_s`, for one to come back, instead of failing it.

The line is the process's, bounded by `limits.max_held` and apart from the requests in flight (a
held request does not count against `max_in_flight`, so thousands of held streams leave room for
live traffic). Critical requests go before standard ones, first come first served within each;
sheddable requests are never held. A stream's headers go out when it is held, then a keepalive
every KEEPALIVE_S (Anthropic's `event: ping`, an SSE comment line on the OpenAI wires), so the
client's idle timeout does not fire. One shared timer, armed only while something is held, expires
holds, sends keepalives and lets requests go at the pace gateway/flow/hold_pace.py decides; a
held request costs one future, no task of its own.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

import orjson
from aiohttp import web

from gateway.core.answer import open_stream, stream_error_event
from gateway.core.errors import ApiError
from gateway.core.metrics import Metrics
from gateway.flow.admission import Admission
from gateway.flow.hold_pace import refused, release_quota, scouts_now
from gateway.routing.breaker import State, current
from gateway.routing.health import HealthBoard
from gateway.routing.pools import PRIORITIES
from gateway.routing.request_log import RequestLog
from gateway.routing.table import RouteTable

TICK_S = 1.0            # how often held requests are looked at (expiry, keepalives, pace)
KEEPALIVE_S = 5.0       # a held stream's keepalive interval: far under any client's idle timeout
PING = b'event: ping\ndata: {"type": "ping"}\n\n'   # Anthropic's own keepalive event
COMMENT = b": held by recloser\n\n"                  # an SSE comment: every SSE client skips it
HELD = "upstream_unavailable"                        # the error code of a request no target answered


class Wake(Enum):
    RELEASE = "release"
    PING = "ping"
    EXPIRE = "expire"


@dataclass(eq=False, slots=True)
class Held:
    route: str
    rank: int
    ticket: int
    until: float
    stream: bool
    pinged_at: float
    waiter: asyncio.Future[Wake] | None = None
    pending: Wake | None = None     # a wake that came while the request was not waiting (writing a keepalive)
    waiting: bool = True            # in the line (not released, not gone)


@dataclass(eq=False)
class RouteHold:
    """One route's held requests and how far its recovery has come."""

    route: RouteTable
    line: list[tuple[int, int, Held]] = field(default_factory=list)
    waiting: int = 0
    out: int = 0                     # released and not yet answered or back in the line
    back_at: float | None = None     # when the route showed it can answer again
    released: int = 0                # let go since back_at
    next_scout: float = 0.0


def keepalive(endpoint: str) -> bytes:
    return PING if endpoint == "messages" else COMMENT


class HoldLine:
    def __init__(self, board: HealthBoard, metrics: Metrics, clock: Callable[[], float], max_held: int,
                 admission: Admission | None = None) -> None:
        self.board = board
        self.metrics = metrics
        self.clock = clock
        self.max_held = max_held
        self.admission = admission
        self.routes: dict[str, RouteHold] = {}
        self.held = 0
        self._tickets = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        board.on_back = self.back

    # The line --------------------------------------------------------------------------------------

    def enter(self, route: RouteTable, rank: int, until: float, stream: bool) -> Held:
        rh = self.routes.get(route.name)
        if rh is None:
            rh = self.routes[route.name] = RouteHold(route)
        rh.route = route                 # the newest policy's table: its breaker settings pace the release
        if rh.waiting == 0 and rh.out == 0:
            rh.back_at, rh.released = None, 0
            rh.next_scout = self.clock() + route.breaker.probe_interval_s
        held = Held(route.name, rank, next(self._tickets), until, stream, self.clock())
        self._queue(rh, held)
        self._arm()
        return held

    def _queue(self, rh: RouteHold, held: Held) -> None:
        heapq.heappush(rh.line, (held.rank, held.ticket, held))
        held.waiting = True
        rh.waiting += 1
        self.held += 1
        self.metrics.held(held.route).inc()

    def _unqueue(self, rh: RouteHold, held: Held) -> None:
        """Out of the waiting count; the heap entry goes when it reaches the top (or the heap is tidied)."""
        held.waiting = False
        rh.waiting -= 1
        self.held -= 1
        self.metrics.held(held.route).dec()
        if len(rh.line) > 2 * rh.waiting + 16:
            rh.line = [e for e in rh.line if e[2].waiting]
            heapq.heapify(rh.line)

    def _wake(self, held: Held, why: Wake) -> None:
        if held.waiter is not None and not held.waiter.done():
            held.waiter.set_result(why)
        elif held.pending is not Wake.EXPIRE:
            held.pending = why if why is not Wake.PING or held.pending is None else held.pending

    async def wait(self, held: Held) -> Wake:
        """The next thing that happens to a held request: a keepalive is due, it is let go, or it expired."""
        if held.pending is not None:
            why, held.pending = held.pending, None
            return why
        held.waiter = asyncio.get_running_loop().create_future()
        try:
            return await held.waiter
        finally:
            held.waiter = None

    def again(self, held: Held) -> None:
        """A released request found no target answering after all: back to its place in the line, and
        the route is not back until a probe or a scout says so."""
        rh = self.routes[held.route]
        rh.out -= 1
        rh.back_at, rh.released = None, 0
        rh.next_scout = self.clock() + rh.route.breaker.probe_interval_s
        self._queue(rh, held)
        self._arm()

    def answered(self, held: Held) -> None:
        """A released request was answered: its route is back, the rest may follow."""
        rh = self.routes[held.route]
        rh.out -= 1
        self.metrics.held_requests(held.route, "released").inc()
        if rh.back_at is None:
            rh.back_at, rh.released = self.clock(), 0
        self._pump(rh, self.clock())

    def leave(self, held: Held, outcome: str | None = None) -> None:
        """The request is done with the line (expired, or its client went away while it waited)."""
        if held.waiting:
            self._unqueue(self.routes[held.route], held)
        if outcome is not None:
            self.metrics.held_requests(held.route, outcome).inc()

    def failed_out(self, held: Held) -> None:
        """A released request ended otherwise than answered or held again (its client left, an error)."""
        self.routes[held.route].out -= 1

    def back(self, key: str) -> None:
        """The health board's news: deployment `key` is out of its ejection (or done probing)."""
        now = self.clock()
        for rh in self.routes.values():
            if rh.waiting and any(d.key == key for d in rh.route.deployments):
                if rh.back_at is None:
                    rh.back_at, rh.released = now, 0
                self._pump(rh, now)

    def expire_all(self) -> None:
        """On shutdown: every held request gets its error now rather than a cut connection later."""
        for rh in self.routes.values():
            for _, _, held in list(rh.line):
                if held.waiting:
                    self._unqueue(rh, held)
                    self._wake(held, Wake.EXPIRE)

    # The shared timer ------------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.tick(self.clock())
        if self.held:
            self._arm()

    def tick(self, now: float) -> None:
        """Expire what is due, send keepalives that are due, let go what the pace allows."""
        for rh in self.routes.values():
            if not rh.waiting:
                continue
            for _, _, held in list(rh.line):
                if not held.waiting:
                    continue
                if now >= held.until:
                    self._unqueue(rh, held)      # out of the line at once: never released after this
                    self._wake(held, Wake.EXPIRE)
                elif held.stream and now - held.pinged_at >= KEEPALIVE_S:
                    held.pinged_at = now
                    self._wake(held, Wake.PING)
            self._pump(rh, now)

    def _pump(self, rh: RouteHold, now: float) -> None:
        cfg = rh.route.breaker
        healths = [current(self.board.healths[d.key], now, cfg) for d in rh.route.deployments]
        if rh.back_at is not None:
            if any(h.state in (State.HEALTHY, State.DEGRADED) for h in healths) or not cfg.enabled:
                n = release_quota(rh.waiting, rh.released, now - rh.back_at, cfg.slow_start_s)
            else:   # probing only: as many as it has probe slots free
                free = sum(max(0, cfg.probe_requests - self.board.probes[d.key])
                           for d, h in zip(rh.route.deployments, healths) if h.state is State.PROBING)
                n = max(0, free - rh.out)
        else:
            standing = not cfg.enabled or any(h.state is not State.EJECTED for h in healths)
            n = scouts_now(rh.waiting, rh.out, standing, now >= rh.next_scout)
            if n:
                rh.next_scout = now + cfg.probe_interval_s
        while n > 0 and rh.line:
            _, _, held = heapq.heappop(rh.line)
            if not held.waiting:
                continue
            self._unqueue(rh, held)
            rh.out += 1
            rh.released += 1
            n -= 1
            self._wake(held, Wake.RELEASE)

    # One request's hold ----------------------------------------------------------------------------

    async def through(self, request: web.Request, log: RequestLog, err: ApiError, hold_s: float, priority: str,
                      retry: Callable[[web.StreamResponse | None], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        """Holds `log`'s request after `err` (no target answered) until a target is back, then `retry`
        dispatches it again (into the stream already open, for a stream). Expired: `err`, the error
        it would have had at once, as an error event on a stream whose headers went out."""
        route, call = log.route, log.call
        why = refused(priority, self.held, self.max_held)
        if why is not None:
            self.metrics.held_requests(route.name, "refused").inc()
            err.headers.setdefault("Retry-After", str(max(1, round(route.breaker.probe_interval_s))))
            err.message += f" The request was not held: {why}."
            raise err
        timeout_s = log.deadline - log.started
        held = self.enter(route, PRIORITIES[priority], self.clock() + hold_s, call.stream)
        log.events.append("held")
        opened: web.StreamResponse | None = None
        try:
            if call.stream:
                opened = await open_stream(request, {"x-request-id": call.request_id, **log.extra_headers})
                await opened.write(keepalive(call.endpoint))
            while True:
                why_woken = await self._waited(held, log, starting=opened is None)
                if why_woken is Wake.PING:
                    assert opened is not None
                    await opened.write(keepalive(call.endpoint))
                    continue
                if why_woken is Wake.EXPIRE:
                    self.leave(held, "expired")
                    log.outcome = "error"
                    if opened is None:
                        raise err
                    await opened.write(stream_error_event(err, call.endpoint))
                    await opened.write_eof()
                    return opened
                log.deadline = self.clock() + timeout_s   # released: the request's own timeout starts again
                try:
                    resp = await retry(opened)
                except ApiError as again:
                    if again.code != HELD:
                        self.failed_out(held)
                        return await self._error(opened, again, call.endpoint)
                    err = again
                    self.again(held)
                    continue
                except BaseException:
                    self.failed_out(held)
                    raise
                self.answered(held)
                if opened is not None and resp is not opened:   # a whole answer: an upstream refused it
                    return await self._refusal(opened, resp, call.endpoint)
                return resp
        except (ConnectionResetError, ConnectionError):
            log.outcome = "client_gone"
            self.leave(held, "cancelled")
            return opened if opened is not None else web.Response(status=499)
        except asyncio.CancelledError:
            self.leave(held, "cancelled")
            raise

    async def _waited(self, held: Held, log: RequestLog, starting: bool) -> Wake:
        """Waits outside the requests in flight: a held request takes no room from live traffic (nor,
        `starting`, before its answer began, from the requests starting)."""
        admission = self.admission
        if admission is not None:
            admission.in_flight -= 1
            admission.starting -= starting
            self.metrics.in_flight.dec()
        start = self.clock()
        try:
            return await self.wait(held)
        finally:
            log.held_s += self.clock() - start
            if admission is not None:
                admission.in_flight += 1
                admission.starting += starting
                self.metrics.in_flight.inc()

    @staticmethod
    async def _error(opened: web.StreamResponse | None, err: ApiError, endpoint: str) -> web.StreamResponse:
        if opened is None:
            raise err
        await opened.write(stream_error_event(err, endpoint))
        await opened.write_eof()
        return opened

    @staticmethod
    async def _refusal(opened: web.StreamResponse, resp: web.StreamResponse, endpoint: str) -> web.StreamResponse:
        """An upstream's whole error answer, for a stream whose headers are out: its words in an error event."""
        body = resp.body if isinstance(resp, web.Response) and isinstance(resp.body, bytes) else b""
        try:
            message = str(orjson.loads(body)["error"]["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            message = body.decode(errors="replace") or f"HTTP {resp.status}"
        err = ApiError(resp.status, message, "invalid_request_error", code="upstream_refused")
        return await HoldLine._error(opened, err, endpoint)
