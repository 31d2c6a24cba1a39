"""Synthetic probes: a tiny request to each deployment whose ejection has run out, so recovery is
noticed even when no real traffic would go there (`breaker.synthetic_probe_s` > 0)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from gateway.attempts import Attempts
from gateway.request_log import RequestLog
from gateway.auth import OPEN_CALLER
from gateway.policy.schema import Breaker
from gateway.providers.base import AttemptError, Call
from gateway.routing.breaker import State, current
from gateway.routing.health import HealthBoard
from gateway.routing.table import Routing

log = logging.getLogger("recloser.prober")

PROBE_BODY = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


class Prober:
    def __init__(self, routing: Routing, board: HealthBoard, attempts: Attempts, cfg: Breaker,
                 clock: Callable[[], float]) -> None:
        self.routing = routing
        self.board = board
        self.attempts = attempts
        self.cfg = cfg
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def probe_once(self) -> int:
        """Probe every deployment now in `probing` with no probe in flight; returns how many were probed."""
        sent = 0
        seen: set[str] = set()
        for route in self.routing.routes.values():
            for d in route.deployments:
                h = current(self.board.healths[d.key], self.clock(), route.breaker)
                if d.key in seen or h.state is not State.PROBING or self.board.probes[d.key] \
                        or not self.board.may_probe(d.key):
                    continue
                seen.add(d.key)
                now = self.clock()
                call = Call("chat", {"model": route.name, **PROBE_BODY}, False, f"probe-{os.urandom(6).hex()}")
                probe_log = RequestLog(route, call, OPEN_CALLER, now, now + d.timeouts.first_token_s)
                with contextlib.suppress(AttemptError):
                    await self.attempts.once(probe_log, d, call, "probe")
                sent += 1
        return sent

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.synthetic_probe_s)
            try:
                await self.probe_once()
            except Exception:  # a probe must never take the prober down
                log.exception("synthetic probe failed")
