"""Admission: requests in flight, and a cap on the ones starting that follows the event loop's lag.

`limits.max_in_flight` bounds requests in the gateway's hands, but LLM calls are long, so it has to
be high, and it cannot see requests queued in front of a saturated loop (in socket buffers), because
no handler has run for them yet. When the gateway's own CPU is the bottleneck, that queue is where
the time goes. So a timer that should fire every few milliseconds measures how late it runs, and an
admission cap follows it, additive increase, multiplicative decrease (as TCP's congestion window,
or Envoy's adaptive concurrency): past `limits.max_loop_lag_ms` the cap drops below the requests in
flight, so new ones are shed at once; while the loop is on time it climbs back to `max_in_flight`.
The cap counts requests *starting* (admitted, their answer not begun): a stream that is relaying
waits on its upstream almost all the time, and thousands of them open for minutes are not the work
a late loop is behind on. Cutting the cap below all requests in flight would shed every newcomer
until minutes-long streams ended; cut below the ones starting, it recovers in milliseconds.
The same timer sums the loop's lateness (loop_pauses.py): the attempts take it out of the times
they judge providers by.

A burst of new streams makes the loop late by itself, and that lag clears as soon as the burst's
requests are under way: refusing the burst's tail at once would shed requests a few milliseconds
from room. So a newcomer the cap refuses waits, in line, up to `limits.loop_lag_wait_ms`, and takes
the first room the cap leaves (a request starting got its answer under way, or the cap rose); only
a lag that outlasts the wait sheds it. A stream may wait longer (`limits.stream_loop_lag_wait_ms`,
5 s by default): an agent's stream is a turn of minutes that a refusal costs whole, where a second
more before its first token costs little, and thousands of agents starting at once are exactly such
a burst. A whole answer waits `loop_lag_wait_ms` (0 by default), so a sustained overload of short
requests is still refused at once. A full `max_in_flight` is never waited for: that is the
descriptors' hard bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from gateway.flow.loop_pauses import LoopPauses

TICK_S = 0.005
DECREASE = 0.9          # the cap after a late tick, as a share of the requests then starting
INCREASE = 1            # added to the cap per on-time tick (200 a second)
MIN_CAP = 1
# Late ticks in a row before the cap drops: one pause (a collection, a huge body) is not saturation.
LATE_TICKS = 2


class Admission:
    """Requests in flight, the cap they are admitted under, and the timer that moves the cap.

    The handler reads a few integers per request (`admits`); the timer, which
    re-arms itself every TICK_S and records how late it ran, does the arithmetic.
    """

    def __init__(self, max_in_flight: int, max_loop_lag_ms: int,
                 on_cap: Callable[[int], None] | None = None, wait_ms: int = 0, stream_wait_ms: int = 0) -> None:
        self.max_in_flight = max_in_flight
        self.on_cap = on_cap            # told each time the cap moves (the admission cap gauge)
        self.limit_s = max_loop_lag_ms / 1000
        self.wait_s = wait_ms / 1000    # how long a newcomer the cap refuses may wait for room
        self.stream_wait_s = stream_wait_ms / 1000   # … when it asks for a stream
        # Newcomers waiting for room, first come first served; a waiter's future is set True when it
        # is admitted (the admission counted at that moment), False when its wait ran out.
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self.in_flight = 0
        self.starting = 0               # admitted, their answer not begun yet
        self.cap = max_in_flight
        self.lag_s = 0.0
        self._late = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None
        self.pauses = LoopPauses()

    def admits(self) -> bool:
        """Is there room for one more request: under `max_in_flight`, and under the cap on starting ones?"""
        return self.in_flight < self.max_in_flight and self.starting < self.cap and not self._waiters

    @property
    def waiting(self) -> int:
        """Newcomers waiting in line for room."""
        return len(self._waiters)

    def may_wait(self, wait_s: float | None = None) -> bool:
        """May a newcomer `admits` refused wait for room (up to `wait_s`, else `wait_s` of the
        admission)? Only for the loop-lag cap, and only while it and those already waiting fit under
        `max_in_flight`."""
        wait_s = self.wait_s if wait_s is None else wait_s
        return self.limit_s > 0 and wait_s > 0 and self.in_flight + len(self._waiters) < self.max_in_flight

    @property
    def streams_wait_longer(self) -> bool:
        """Would a newcomer asking for a stream wait longer than one asking for a whole answer?"""
        return self.stream_wait_s > self.wait_s

    async def wait_for_room(self, wait_s: float | None = None) -> bool:
        """Waits in line, at most `wait_s` (else the admission's), for the loop-lag cap to leave room;
        True when admitted meanwhile (counted as `admit` does), False to shed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        expiry = loop.call_later(self.wait_s if wait_s is None else wait_s, self._expire, waiter)
        self._wake()
        try:
            return await waiter
        except asyncio.CancelledError:  # the client went away meanwhile
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.leave(starting=True)
            raise
        finally:
            expiry.cancel()
            if not waiter.done():
                waiter.cancel()
            if waiter.cancelled() and waiter in self._waiters:
                self._waiters.remove(waiter)

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            self._waiters.remove(waiter)
            waiter.set_result(False)

    def _wake(self) -> None:
        """Admits waiters, oldest first, into whatever room there is now."""
        while self._waiters and self.in_flight < self.max_in_flight and self.starting < self.cap:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.admit()
                waiter.set_result(True)

    def admit(self) -> None:
        self.in_flight += 1
        self.starting += 1

    def answering(self) -> None:
        """A request's answer has begun (its headers are going out): it no longer counts as starting."""
        self.starting -= 1
        if self._waiters:
            self._wake()

    def leave(self, starting: bool = False) -> None:
        """A request is done (`starting`: before its answer began); while draining, the last one out says so."""
        if starting:
            self.starting -= 1
        self.in_flight -= 1
        if self._waiters:
            self._wake()
        if self._idle is not None and self.in_flight <= 0:
            self._idle.set()

    async def drained(self) -> None:
        """Returns once no request is in flight (on shutdown, to stop before the grace runs out)."""
        self._idle = asyncio.Event()
        if self.in_flight <= 0:
            self._idle.set()
        await self._idle.wait()

    def start(self) -> None:
        """Starts the timer: it sums the loop's pauses, and moves the cap unless the limit is 0 (off:
        the cap stays at max_in_flight)."""
        self._loop = asyncio.get_running_loop()
        self._arm(self._loop.time())

    def _arm(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + TICK_S
        self._timer = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        late = now - self._due
        self.pauses.tick(late)
        if self.limit_s > 0:
            self.observe(late)
        self._arm(now)

    def paused_s(self) -> float:
        """The loop's lateness so far, the pause it may be in right now included (0 while stopped)."""
        if self._loop is None or self._timer is None:
            return self.pauses.total_s
        return self.pauses.so_far(self._loop.time() - self._due)

    def observe(self, lag_s: float) -> None:
        """One measurement of the loop's lag moves the cap (pure arithmetic, so tests drive it)."""
        self.lag_s = max(0.0, lag_s)
        if self.lag_s > self.limit_s:
            self._late += 1
            if self._late >= LATE_TICKS:
                self.set_cap(max(MIN_CAP, min(self.cap, int(self.starting * DECREASE))))
            return
        self._late = 0
        if self.cap < self.max_in_flight:
            self.set_cap(min(self.max_in_flight, self.cap + INCREASE))

    def set_cap(self, cap: int) -> None:
        if cap != self.cap:
            self.cap = cap
            if self.on_cap is not None:
                self.on_cap(cap)
            if self._waiters:
                self._wake()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.set_cap(self.max_in_flight)
