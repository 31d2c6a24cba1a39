"""The GPU model played out in time: a request waits for its place in the batch, prefills, then decodes
token by token at the batch's current speed. The decisions are gateway.sim.gpu's; this holds the waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from gateway.sim.gpu import Admission, GpuConfig, GpuModel, Job, Load, prefill_seconds, token_seconds


class Run:
    """One admitted request's time on the GPU."""

    def __init__(self, engine: GpuEngine, job: Job) -> None:
        self.engine = engine
        self.job = job

    @property
    def cached_tokens(self) -> int:
        return self.job.cached_tokens

    async def prefill(self) -> None:
        """Until the first token: the prompt's uncached part computed."""
        model = self.engine.model
        await asyncio.sleep(prefill_seconds(model.cfg, model.uncached_tokens(self.job)))
        model.prefilled(self.job)
        model.token(self.job)   # prefill yields the first token

    async def next_token(self) -> None:
        """One decode step, as long as the batch running now makes it."""
        model = self.engine.model
        await asyncio.sleep(token_seconds(model.cfg, len(model.running)))
        model.token(self.job)


class GpuEngine:
    def __init__(self, cfg: GpuConfig, clock: Callable[[], float] | None = None) -> None:
        self.model = GpuModel(cfg)
        self._clock = clock
        self._places: dict[int, asyncio.Future[None]] = {}
        self._watchers: list[tuple[Callable[[Load], bool], asyncio.Future[Load]]] = []

    async def until(self, predicate: Callable[[Load], bool]) -> Load:
        """The load once `predicate` holds for it (checked whenever a request arrives or leaves)."""
        if predicate(load := self.model.load()):
            return load
        watcher: asyncio.Future[Load] = asyncio.get_running_loop().create_future()
        self._watchers.append((predicate, watcher))
        try:
            return await watcher
        finally:
            self._watchers = [w for w in self._watchers if w[1] is not watcher]

    def _changed(self) -> None:
        load = self.model.load()
        for predicate, watcher in self._watchers:
            if not watcher.done() and predicate(load):
                watcher.set_result(load)

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def load(self) -> Load:
        return self.model.load()

    @asynccontextmanager
    async def admitted(self, messages: Sequence[Any], max_answer_tokens: int,
                       tools: Sequence[Any] | None = None) -> AsyncIterator[Run | None]:
        """A place in the batch for the request (after its wait in the queue), or None when it is refused.

        Leaving the block, however it is left (the answer done, the caller gone), frees the place
        for the head of the queue.
        """
        job = self.model.job(messages, max_answer_tokens, self.now(), tools)
        admission = self.model.arrive(job, self.now())
        self._changed()
        if admission is Admission.REFUSED:
            yield None
            return
        try:
            if admission is Admission.WAITING:
                place = asyncio.get_running_loop().create_future()
                self._places[job.id] = place
                await place
            yield Run(self, job)
        finally:
            self._places.pop(job.id, None)
            for started in self.model.leave(job, self.now()):
                waiter = self._places.pop(started.id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            self._changed()
