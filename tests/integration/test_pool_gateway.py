"""Local GPU pools through a running gateway: replicas are tiny aiohttp servers on loopback that answer
chat completions and serve vLLM-style /metrics whose figures each test sets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from gateway.serving.embedded import EmbeddedGateway
from tests.conftest import GatewayFactory

HELLO = [{"role": "user", "content": "hello"}]


class Replica:
    """One simulated vLLM replica: counts the chats it answered; its /metrics says what `load` holds."""

    def __init__(self) -> None:
        self.load = {"running": 0.0, "waiting": 0.0, "kv": 0.1}
        self.served = 0
        self.port = 0

    def app(self) -> web.Application:
        async def chat(request: web.Request) -> web.Response:
            body = await request.json()
            self.served += 1
            return web.json_response({
                "id": f"c{self.served}", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"replica {self.port}"}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(text=(
                f'vllm:num_requests_running{{model_name="llama"}} {self.load["running"]}\n'
                f'vllm:num_requests_waiting{{model_name="llama"}} {self.load["waiting"]}\n'
                f'vllm:kv_cache_usage_perc{{model_name="llama"}} {self.load["kv"]}\n'))

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/metrics", metrics)
        return app


class Replicas:
    """Replicas served from a loop of their own, so the gateway's loop and the test's thread stay apart."""

    def __init__(self, n: int) -> None:
        self.all = [Replica() for _ in range(n)]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runners: list[web.AppRunner] = []

    def start(self) -> Replicas:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        for r in self.all:
            runner = web.AppRunner(r.app())
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            r.port = runner.addresses[0][1]
            self.runners.append(runner)

    def stop(self) -> None:
        async def cleanup() -> None:
            for runner in self.runners:
                await runner.cleanup()
        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def urls(self) -> str:
        return ", ".join(f"http://127.0.0.1:{r.port}/v1" for r in self.all)


@pytest.fixture
def replicas() -> Iterator[Replicas]:
    pool = Replicas(2).start()
    yield pool
    pool.stop()


def policy(pool: Replicas, spill: str = "", affinity: str = "prefix", frontier_fault: str = "") -> str:
    return f"""
    version: 1
    auth:
      keys:
        - {{id: batch, sha256: "{'0' * 64}", team: t, app: batch}}
    providers:
      gpus:
        kind: openai
        endpoints: [{pool.urls()}]
        server: vllm
        load: {{scrape_s: 60, affinity: {affinity}{spill}}}
        models:
          llama: {{gpu_hour_usd: 2.0, tokens_per_second: 1000}}
      frontier:
        kind: sim
        models:
          gpt-4o-mini: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 4.0}}
    routes:
      chat:
        targets:
          - {{provider: gpus, model: llama}}
          - {{provider: frontier, model: gpt-4o-mini}}
    """.replace("auth:\n      keys:\n        - {id: batch, sha256: \"" + "0" * 64 + "\", team: t, app: batch}\n    ", "")


def scrape(gw: EmbeddedGateway) -> None:
    """One scrape of every pool, awaited (the background one runs every scrape_s)."""
    ctx = gw.context
    assert ctx.scraper is not None
    for table in ctx.routing.routes.values():
        for span in table.pools:
            gw.run(ctx.scraper.scrape_once(span))


def chat(gw: EmbeddedGateway, **extra: Any) -> httpx.Response:
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "chat", "messages": HELLO, **extra}, timeout=10)
    assert r.status_code == 200, r.text
    return r


def metric(gw: EmbeddedGateway, name: str) -> float:
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_each_replica_of_a_pool_is_a_deployment_of_its_own(start_gateway: GatewayFactory, replicas: Replicas) -> None:
    gw = start_gateway(policy(replicas))
    assert {f"gpus/llama@127.0.0.1:{r.port}" for r in replicas.all} <= set(gw.context.board.healths)
    rows = gw.context.board.report(tuple(gw.context.routing.routes.values()))
    assert sorted(r.get("endpoint", "") for r in rows if r["provider"] == "gpus") == \
        sorted(f"127.0.0.1:{r.port}" for r in replicas.all)


def test_traffic_shifts_away_from_a_replica_whose_requests_pile_up(start_gateway: GatewayFactory,
                                                                   replicas: Replicas) -> None:
    slow, fast = replicas.all
    slow.load.update(running=8, waiting=6, kv=0.7)      # a slowed replica: its requests queue
    gw = start_gateway(policy(replicas, affinity="none"))
    scrape(gw)
    for _ in range(10):
        assert chat(gw).headers["x-recloser-provider"] == "gpus"
    assert (slow.served, fast.served) == (0, 10)


def test_a_conversation_and_the_sessions_sharing_its_system_prompt_stay_on_one_replica_and_others_spread(
        start_gateway: GatewayFactory, replicas: Replicas) -> None:
    gw = start_gateway(policy(replicas))
    scrape(gw)
    system = {"role": "system", "content": "You review pull requests. " + "Check every changed line. " * 40}
    for turn in range(6):
        chat(gw, messages=[system, {"role": "user", "content": "PR 1"}] + [{"role": "user", "content": "more"}] * turn)
    assert sorted(r.served for r in replicas.all) == [0, 6]
    for n in range(6):      # other sessions with the same system prompt find it warm
        chat(gw, messages=[system, {"role": "user", "content": f"PR {n + 100}"}])
    assert sorted(r.served for r in replicas.all) == [0, 12]
    for n in range(12):     # sessions with system prompts of their own go to the least loaded
        chat(gw, messages=[{"role": "system", "content": f"Persona {n}. " * 60}, {"role": "user", "content": "hi"}])
    assert all(r.served > 0 for r in replicas.all)


def test_a_full_pool_spills_to_the_frontier_at_once_and_a_pool_below_it_does_not(
        start_gateway: GatewayFactory, replicas: Replicas) -> None:
    gw = start_gateway(policy(replicas, spill=", spill: {queue: 4, kv_percent: 90}"))
    scrape(gw)
    assert chat(gw).headers["x-recloser-provider"] == "gpus"
    assert metric(gw, "recloser_spilled_requests_total") == 0
    for r in replicas.all:
        r.load.update(running=8, waiting=1, kv=0.95)
    scrape(gw)
    r = chat(gw)
    assert r.headers["x-recloser-provider"] == "frontier" and r.headers["x-recloser-attempts"] == "1"
    assert metric(gw, 'recloser_spilled_requests_total{provider="gpus",reason="full",route="chat"}') == 1
    assert sum(x.served for x in replicas.all) == 1
    replicas.all[0].load.update(waiting=0, kv=0.5)      # one replica has room again
    scrape(gw)
    assert chat(gw).headers["x-recloser-provider"] == "gpus"
    assert metric(gw, 'recloser_pool_endpoint_load{endpoint="127.0.0.1:' + str(replicas.all[1].port) +
                  '",measure="waiting",provider="gpus"}') == 1


def test_a_sim_provider_with_endpoints_n_starts_n_replicas_and_the_route_uses_them(
        start_gateway: GatewayFactory) -> None:
    gw = start_gateway("""
    version: 1
    providers:
      gpus: {kind: sim, endpoints: 2, load: {affinity: none}}
    routes:
      chat:
        targets: [{provider: gpus, model: llama}]
    """)
    assert {"gpus", "gpus@2"} <= set(gw.context.sims)
    for n in range(8):
        chat(gw, messages=[{"role": "user", "content": f"q{n}"}])
    assert sum(gw.sim(name).request_count() for name in ("gpus", "gpus@2")) == 8
    ports = [gw.sim(name).base_url.split(":")[2].split("/")[0] for name in ("gpus", "gpus@2")]
    assert {f"gpus/llama@127.0.0.1:{p}" for p in ports} <= set(gw.context.board.healths)
