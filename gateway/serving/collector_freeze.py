"""The collector kept off thousands of open streams: what survives a young collection while many
requests are in flight is frozen, and thawed once the load has fallen again.

With thousands of streams open, nearly every object a new stream makes survives its first
collection (the stream lives for minutes), so the middle generation fills with them and each of its
collections scans up to 200,000 live objects: pauses of 20-100 ms that stall every stream of the
process. Frozen (`gc.freeze()`), they are out of every later collection, and each collection scans
only what was made since the last one.

The trade-off: an object frozen while alive that later becomes garbage in a cycle stays until the
thaw (what reference counting frees, nearly everything a finished stream leaves, goes at once). The
thaw comes when the requests in flight fall under half the level that started the freezing:
unfreeze, one full collection over what is left (a few hundred streams' objects and start-up's), and
start-up's objects frozen again. Under a load that never falls, such garbage waits
(`recloser_gc_freezes_total` counts freezes and thaws).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

THAW_SHARE = 0.5   # thawed when the requests in flight fall under this share of the freezing level


class CollectorFreeze:
    """Decides, per collection and per tick, whether to freeze survivors or thaw; `freeze`, `thaw`
    and `in_flight` are the effects and the reading (gc's own in serving, fakes in tests)."""

    def __init__(self, from_in_flight: int, in_flight: Callable[[], int],
                 freeze: Callable[[], None] = gc.freeze, thaw: Callable[[], None] | None = None) -> None:
        self.from_in_flight = from_in_flight     # 0: never
        self.in_flight = in_flight
        self._freeze = freeze
        self._thaw = thaw or thaw_collector
        self.frozen = False       # survivors were frozen since the last thaw
        self.freezes = 0
        self.thaws = 0

    def collected(self, generation: int) -> None:
        """A collection of `generation` ended: its survivors are frozen while the load is high. (A
        full collection's are not: it came because the old generation grew, which freezing prevents.)"""
        if generation < 2 and self.from_in_flight and self.in_flight() >= self.from_in_flight:
            self._freeze()
            self.frozen = True
            self.freezes += 1

    def tick(self) -> None:
        """Now and then (a timer): thaw once the load has fallen."""
        if self.frozen and self.in_flight() < THAW_SHARE * self.from_in_flight:
            self._thaw()
            self.frozen = False
            self.thaws += 1


class Thawing:
    """The freeze's tick, once a second on the loop; `thawed` is told of each thaw."""

    EVERY_S = 1.0

    def __init__(self, loop: asyncio.AbstractEventLoop, freeze: CollectorFreeze, thawed: Callable[[], None]) -> None:
        self.loop, self.freeze, self.thawed = loop, freeze, thawed
        self._timer = loop.call_later(self.EVERY_S, self._tick)

    def _tick(self) -> None:
        before = self.freeze.thaws
        self.freeze.tick()
        if self.freeze.thaws > before:
            self.thawed()
        self._timer = self.loop.call_later(self.EVERY_S, self._tick)

    def stop(self) -> None:
        self._timer.cancel()


def thaw_collector() -> None:
    """What was frozen goes back to the collector, is collected once, and what survives is frozen
    again (start-up's objects, and the streams still open)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
