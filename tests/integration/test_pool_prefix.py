"""Longest-prefix routing through a running gateway: three simulated vLLM replicas on loopback (one
slow: 4 places × about 600 ms; two of 4 places × about 150 ms), a simulated frontier behind them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.sim import SimConfig, SimServer
from gateway.sim.gpu import GpuConfig
from gateway.sim.workload import AgentWorkload, Shape
from tests.conftest import GatewayFactory

# 10 answer tokens at 15 ms: about 150 ms a request, uncached prefill of a 2,000-word prompt 40 ms more.
REPLICA = GpuConfig(max_batch=4, server="vllm", prefill_ms_per_ktok=20.0, decode_ms_per_token=15.0, slowdown=0.0,
                    prefix_cache_entries=2000, chunk_tokens=16)
SPEEDS = (0.25, 1.0, 1.0)


class SimPool:
    """Three GPU sims served from a loop of their own, apart from the gateway's loop and the test's."""

    def __init__(self) -> None:
        self.sims = [SimServer(SimConfig(name=f"replica{i + 1}", reply_tokens=10, models=("llama",), gpu=REPLICA,
                                         speed=speed)) for i, speed in enumerate(SPEEDS)]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> SimPool:
        self.thread.start()
        for sim in self.sims:
            asyncio.run_coroutine_threadsafe(sim.start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        for sim in self.sims:
            asyncio.run_coroutine_threadsafe(sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def served(self) -> list[int]:
        return [sim.state.gpu.load().requests if sim.state.gpu is not None else 0 for sim in self.sims]


@pytest.fixture
def sim_pool() -> Iterator[SimPool]:
    pool = SimPool().start()
    yield pool
    pool.stop()


def policy(pool: SimPool) -> str:
    urls = ", ".join(f"http://127.0.0.1:{sim.port}/v1" for sim in pool.sims)
    return f"""
    version: 1
    providers:
      gpus:
        kind: openai
        endpoints: [{urls}]
        server: vllm
        load: {{scrape_s: 0.25, slots: 4, cache_tokens: 32000, spill: {{margin_s: 0.2}}}}
      frontier:
        kind: sim
        sim: {{first_token_delay_s: 0.3}}
    routes:
      chat:
        targets:
          - {{provider: gpus, model: llama}}
          - {{provider: frontier, model: gpt-4o-mini}}
    """


def test_a_shared_system_prompt_keeps_most_requests_on_one_replica_at_low_load(
        start_gateway: GatewayFactory, sim_pool: SimPool) -> None:
    gw = start_gateway(policy(sim_pool))
    # Ten sessions opening with one agent's system prompt and tools, each with its own task; two at a time.
    work = AgentWorkload(Shape(agents=1, sessions=10, turns=2, chat_share=0.0), seed=11, model="chat", stream=False)
    bodies = [work.next() for _ in range(10)]

    def send(body: dict[str, object]) -> str:
        r = httpx.post(f"{gw.base_url}/chat/completions", json=body, timeout=30)
        assert r.status_code == 200, r.text
        return r.headers["x-recloser-provider"]

    with ThreadPoolExecutor(2) as threads:
        providers = list(threads.map(send, bodies))
    assert providers == ["gpus"] * 10
    served = sim_pool.served()
    assert sum(served) == 10 and max(served) >= 8, served
    hits = sum(sim.state.gpu.load().prefix_hit_tokens for sim in sim_pool.sims if sim.state.gpu is not None)
    assert hits > 0
