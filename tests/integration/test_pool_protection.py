"""Protection by priority during a frontier outage, end to end: a pool of two simulated GPU servers
(batch of 2 each) saturated, the route's frontier refusing connections, and three keys of different
priority. Sheddable requests are refused with Retry-After, critical ones are all answered and go
first, and the gateway keeps the pool's own queues near the spill threshold instead of sinking it."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim.faults import Fault
from gateway.sim.gpu import Load
from tests.conftest import GatewayFactory

T = TypeVar("T")
MAX_BATCH = 2
SPILL_QUEUE = 1
KEYS = {"critical": "sk-critical", "standard": "sk-standard", "sheddable": "sk-sheddable"}


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


POLICY = f"""
version: 1
auth:
  keys:
    - {{id: crit, sha256: "{_sha(KEYS['critical'])}", team: t, app: crit, priority: critical}}
    - {{id: std, sha256: "{_sha(KEYS['standard'])}", team: t, app: std}}
    - {{id: shed, sha256: "{_sha(KEYS['sheddable'])}", team: t, app: shed, priority: sheddable}}
providers:
  gpus:
    kind: sim
    endpoints: 2
    server: vllm
    sim: {{reply_tokens: 12, gpu: {{server: vllm, max_batch: {MAX_BATCH}, decode_ms_per_token: 25}}}}
    load: {{scrape_s: 0.05, affinity: none, spill: {{queue: {SPILL_QUEUE}}}}}
  frontier:
    kind: sim
    models:
      gpt-4o-mini: {{input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}
routes:
  chat:
    targets:
      - {{provider: gpus, model: llama}}
      - {{provider: frontier, model: gpt-4o-mini}}
"""


def on_gateway(gw: EmbeddedGateway, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """`coro` run on the gateway's loop, awaitable from the test's."""
    return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, gw.loop))


class Peaks:
    """The most requests each simulated replica held waiting and running, seen at every arrival and exit."""

    def __init__(self, gw: EmbeddedGateway, names: tuple[str, ...]) -> None:
        self.waiting = dict.fromkeys(names, 0)
        self.running = dict.fromkeys(names, 0)
        self.watches = [on_gateway(gw, gw.sim(name).state.gpu.until(self._seen(name))) for name in names]

    def _seen(self, name: str) -> Any:
        def seen(load: Load) -> bool:
            self.waiting[name] = max(self.waiting[name], load.waiting)
            self.running[name] = max(self.running[name], load.running)
            return False      # never satisfied: it watches until cancelled
        return seen

    def stop(self) -> None:
        for watch in self.watches:
            watch.cancel()


async def chat(client: httpx.AsyncClient, gw: EmbeddedGateway, priority: str, n: int) -> tuple[httpx.Response, float]:
    r = await client.post(f"{gw.base_url}/chat/completions", headers={"Authorization": f"Bearer {KEYS[priority]}"},
                          json={"model": "chat", "messages": [{"role": "user", "content": f"{priority} {n}"}]})
    return r, time.monotonic()


def queued_everywhere(load: Load) -> bool:
    return load.waiting >= SPILL_QUEUE


async def test_a_saturated_pool_alone_sheds_sheddable_requests_answers_critical_ones_first_and_stays_near_its_threshold(
        start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("frontier", Fault(refuse=True))
    replicas = ("gpus", "gpus@2")
    peaks = Peaks(gw, replicas)
    scraper, span = gw.context.scraper, gw.context.routing.routes["chat"].pools[0]
    assert scraper is not None
    async with httpx.AsyncClient(timeout=60) as client:
        # Fill the pool to its threshold: both batches running, one request queued at each replica.
        fill = [asyncio.create_task(chat(client, gw, "standard", i)) for i in range(2 * (MAX_BATCH + SPILL_QUEUE))]
        for name in replicas:
            await asyncio.wait_for(on_gateway(gw, gw.sim(name).state.gpu.until(queued_everywhere)), 30)
        await on_gateway(gw, scraper.scrape_once(span))
        calls = {p: [asyncio.create_task(chat(client, gw, p, i)) for i in range(8)]
                 for p in ("sheddable", "critical", "standard")}
        done = {p: await asyncio.gather(*tasks) for p, tasks in calls.items()}
        await asyncio.gather(*fill)
    peaks.stop()

    for r, _ in done["sheddable"]:
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "pool_full"
    assert [r.status_code for r, _ in done["critical"]] == [200] * 8
    assert [r.status_code for r, _ in done["standard"]] == [200] * 8
    assert all(r.headers["x-recloser-provider"] == "gpus" for r, _ in done["critical"] + done["standard"])
    # Critical requests waited ahead of standard ones that came at the same moment.
    finished = {p: sorted(t for _, t in done[p]) for p in ("critical", "standard")}
    assert sum(finished["critical"]) < sum(finished["standard"])
    assert finished["critical"][-1] < finished["standard"][-1]
    # The gateway held the surplus back: no replica's queue grew much past the spill threshold.
    for name in replicas:
        assert peaks.running[name] <= MAX_BATCH
        assert peaks.waiting[name] <= SPILL_QUEUE + 2, (name, peaks.waiting)
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert 'recloser_pool_shed_requests_total{priority="sheddable",provider="gpus",route="chat"} 8.0' in text
