"""A simulated GPU server on loopback, seen from outside: requests beyond its batch wait their turn,
/metrics shows the batch and the queue by the server's own names, and a repeated prefix is served from
its prefix cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.sim import SimConfig, SimServer
from gateway.sim.gpu import GpuConfig
from tests.conftest import GatewayFactory, sdk


@dataclass
class Timed:
    first_token: float
    done: float
    usage: dict[str, Any]


async def stream(session: aiohttp.ClientSession, server: SimServer, system: str, user: str = "hi") -> Timed:
    """One streamed chat; the loop times of its first content chunk and its end, and its usage."""
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    loop = asyncio.get_running_loop()
    first: float | None = None
    usage: dict[str, Any] = {}
    async with session.post(server.base_url + "/chat/completions", json=body) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if not line.startswith(b"data: {"):
                continue
            event = orjson.loads(line[6:])
            if event.get("usage"):
                usage = event["usage"]
            if first is None and any(c["delta"].get("content") for c in event.get("choices", [])):
                first = loop.time()
    assert first is not None
    return Timed(first, loop.time(), usage)


async def scrape(server: SimServer) -> dict[str, str]:
    root = server.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as s, s.get(root + "/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))


@pytest.fixture
async def gpu() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(name="vllm-a", wire="openai", reply_tokens=30, models=("llama",),
                                 gpu=GpuConfig(max_batch=2, server="vllm", decode_ms_per_token=10,
                                               prefill_ms_per_ktok=400, chunk_tokens=16)))
    await server.start()
    yield server
    await server.stop()


async def test_requests_beyond_the_batch_wait_until_a_running_one_finishes(gpu: SimServer) -> None:
    assert gpu.state.gpu is not None
    async with aiohttp.ClientSession() as session:
        calls = [asyncio.create_task(stream(session, gpu, f"prompt number {i}")) for i in range(5)]
        await asyncio.wait_for(gpu.state.gpu.until(lambda load: load.running == 2 and load.waiting == 3), 10)
        samples = await scrape(gpu)
        timed = await asyncio.gather(*calls)
    assert samples['vllm:num_requests_running{model_name="llama"}'] == "2.0"
    assert samples['vllm:num_requests_waiting{model_name="llama"}'] == "3.0"
    assert float(samples['vllm:kv_cache_usage_perc{model_name="llama"}']) > 0
    by_start = sorted(timed, key=lambda t: t.first_token)
    first_done = min(t.done for t in by_start[:2])
    # The three that waited got their first token only after one of the batch had finished.
    assert all(t.first_token >= first_done for t in by_start[2:])


async def test_a_repeated_prefix_is_served_first_and_counted_as_a_hit(gpu: SimServer) -> None:
    warm, cold = " ".join(f"rule{i}" for i in range(500)), " ".join(f"other{i}" for i in range(500))
    async with aiohttp.ClientSession() as session:
        await stream(session, gpu, warm, "first question")
        before = await scrape(gpu)
        # Both prompts are as long; only the warm one's prefix is cached, so its prefill is near nothing.
        again, fresh = await asyncio.gather(stream(session, gpu, warm, "second question"),
                                            stream(session, gpu, cold, "second question"))
    after = await scrape(gpu)
    assert again.first_token < fresh.first_token
    assert again.usage["prompt_tokens_details"]["cached_tokens"] == 496     # 31 full chunks of 16
    assert fresh.usage["prompt_tokens_details"]["cached_tokens"] == 0
    hits = 'vllm:prefix_cache_hits_total{model_name="llama"}'
    assert float(after[hits]) - float(before[hits]) == 496


async def test_ollama_serves_no_metrics() -> None:
    server = SimServer(SimConfig(name="ollama", gpu=GpuConfig(server="ollama")))
    await server.start()
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{server.port}/metrics") as resp:
            assert resp.status == 404
    finally:
        await server.stop()


async def test_a_full_queue_is_refused_at_once_with_503() -> None:
    server = SimServer(SimConfig(name="full", reply_tokens=50, gpu=GpuConfig(max_batch=1, max_waiting=0,
                                                                             decode_ms_per_token=20)))
    await server.start()
    assert server.state.gpu is not None
    try:
        async with aiohttp.ClientSession() as session:
            busy = asyncio.create_task(stream(session, server, "busy"))
            await asyncio.wait_for(server.state.gpu.until(lambda load: load.running == 1), 10)
            async with session.post(server.base_url + "/chat/completions",
                                    json={"model": "m", "messages": [{"role": "user", "content": "x"}]}) as resp:
                assert resp.status == 503 and (await resp.json())["error"]["code"] == "overloaded"
            await busy
    finally:
        await server.stop()


def test_a_policys_gpu_sim_answers_through_the_gateway_and_shows_its_load(start_gateway: GatewayFactory) -> None:
    gw = start_gateway("""
        version: 1
        providers:
          local: {kind: sim, sim: {wire: openai, speed: 0.5, gpu: {server: llamacpp, max_batch: 4}}}
        routes:
          chat: {targets: [{provider: local, model: llama}]}
        """)
    answer = sdk(gw).chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    sim = gw.sim("local")
    assert sim.config.speed == 0.5 and sim.state.gpu.model.cfg.speed == 0.5
    samples = gw.run(scrape(sim))
    assert samples["llamacpp:requests_processing"] == "0.0" and float(samples["llamacpp:tokens_predicted_total"]) > 0
