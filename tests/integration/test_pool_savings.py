"""A local pool's economics through a running gateway: what its answers saved against the route's first
frontier target, in Prometheus, in the ledger and in `recloser spend`; and how full it is."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import httpx

from gateway.serving.embedded import EmbeddedGateway
from tests.conftest import GatewayFactory
from tests.integration.test_cli import recloser
from tests.integration.test_pool_protection import on_gateway

FRONTIER_IN, FRONTIER_OUT = Decimal("2.5"), Decimal("10")


def policy(ledger: Path) -> str:
    return f"""
    version: 1
    providers:
      gpus:
        kind: sim
        endpoints: 2
        server: vllm
        sim: {{reply_tokens: 7, gpu: {{server: vllm, max_batch: 4, decode_ms_per_token: 1}}}}
        load: {{scrape_s: 0.05, affinity: none}}
        models: {{llama: {{gpu_hour_usd: 3.6, tokens_per_second: 1000}}}}
      frontier:
        kind: sim
        models: {{gpt-x: {{input_usd_per_mtok: {FRONTIER_IN}, output_usd_per_mtok: {FRONTIER_OUT}}}}}
    metering:
      ledger: {{path: {ledger}}}
    routes:
      chat:
        targets: [{{provider: gpus, model: llama}}, {{provider: frontier, model: gpt-x}}]
      direct:
        targets: [{{provider: frontier, model: gpt-x}}]
    """


def chat(gw: EmbeddedGateway, route: str, n: int) -> None:
    r = httpx.post(f"{gw.base_url}/chat/completions", timeout=30,
                   json={"model": route, "messages": [{"role": "user", "content": f"question number {n}"}]})
    assert r.status_code == 200, r.text


def metric(gw: EmbeddedGateway, prefix: str) -> float:
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_pool_answers_record_what_the_frontier_would_have_charged(start_gateway: GatewayFactory,
                                                                   tmp_path: Path) -> None:
    ledger = tmp_path / "spend" / "ledger.jsonl"
    gw = start_gateway(policy(ledger))
    for n in range(6):
        chat(gw, "chat", n)
    chat(gw, "direct", 99)
    gw.run(gw.context.meter.drain())
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    pool = [line for line in lines if line["provider"] == "gpus"]
    assert len(pool) == 6
    for line in pool:
        expected = (line["input_tokens"] * FRONTIER_IN + line["output_tokens"] * FRONTIER_OUT) / 1_000_000
        assert Decimal(line["savings_usd"]) == expected > 0
    assert all("savings_usd" not in line for line in lines if line["provider"] == "frontier")
    saved = sum(Decimal(line["savings_usd"]) for line in pool)
    assert Decimal(str(metric(gw, 'recloser_local_savings_usd_total{route="chat"}'))) == saved
    assert metric(gw, 'recloser_local_savings_usd_total{route="direct"}') == 0

    result = recloser("spend", "--ledger", str(ledger), "--by", "route", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["route"]: r for r in json.loads(result.stdout)}
    assert Decimal(rows["chat"]["savings_usd"]) == saved and Decimal(rows["direct"]["savings_usd"]) == 0
    assert Decimal(rows["TOTAL"]["savings_usd"]) == saved
    assert Decimal(rows["chat"]["cost_usd"]) == sum(Decimal(line["cost_usd"]) for line in pool)
    table = recloser("spend", "--ledger", str(ledger), "--by", "route").stdout.splitlines()
    assert table[0].split()[-4:] == ["savings", "USD", "client-paid", "USD"]   # savings, then what callers paid
    assert table[-1].split()[-2] == f"{saved:.6f}"


async def test_the_pool_utilisation_gauge_is_1_for_a_queueing_pool_and_falls_when_it_empties(
        start_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = start_gateway(policy(tmp_path / "ledger.jsonl").replace("decode_ms_per_token: 1", "decode_ms_per_token: 40"))
    scraper = gw.context.scraper
    assert scraper is not None
    span = gw.context.routing.routes["chat"].pools[0]
    async with httpx.AsyncClient(timeout=30) as client:
        calls = [asyncio.create_task(client.post(f"{gw.base_url}/chat/completions", json={
            "model": "chat", "messages": [{"role": "user", "content": f"q {n}"}]})) for n in range(12)]
        for name in ("gpus", "gpus@2"):
            await asyncio.wait_for(on_gateway(gw, gw.sim(name).state.gpu.until(lambda load: load.waiting > 0)), 30)
        await on_gateway(gw, scraper.scrape_once(span))
        assert metric(gw, 'recloser_pool_utilisation_ratio{provider="gpus"}') == 1.0
        assert all(r.status_code == 200 for r in await asyncio.gather(*calls))
    await on_gateway(gw, scraper.scrape_once(span))
    # Idle again: nothing running, the batch size learnt, the KV cache holding little.
    assert metric(gw, 'recloser_pool_utilisation_ratio{provider="gpus"}') < 0.1
