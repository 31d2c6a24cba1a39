"""Metering on every client API: what the client was told it used is what the ledger charged, at the
policy's prices, and what Prometheus counts per endpoint — whichever wire answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from tests.conftest import GatewayFactory

PRICES = {"gpt-4.1": (Decimal("2"), Decimal("8")), "claude-sonnet-4-5": (Decimal("3"), Decimal("15"))}


def policy(ledger: Path) -> str:
    return f"""
    version: 1
    providers:
      openai:
        kind: sim
        sim: {{wire: openai, reply_tokens: 7}}
        models: {{gpt-4.1: {{input_usd_per_mtok: 2, output_usd_per_mtok: 8}}}}
      claude:
        kind: sim
        sim: {{wire: anthropic, reply_tokens: 5}}
        models: {{claude-sonnet-4-5: {{input_usd_per_mtok: 3, output_usd_per_mtok: 15}}}}
    routes:
      gpt: {{targets: [{{provider: openai, model: gpt-4.1}}]}}
      claude: {{targets: [{{provider: claude, model: claude-sonnet-4-5}}]}}
    metering:
      ledger: {{path: "{ledger}"}}
    """


Told = tuple[int, int]   # input and output tokens, as the client's API reported them


def chat(gw: EmbeddedGateway, route: str, rid: str, stream: bool) -> Told:
    c = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    messages = [{"role": "user", "content": "hello there"}]
    if not stream:
        usage = c.chat.completions.create(model=route, messages=messages,  # type: ignore[arg-type]
                                          extra_headers={"X-Request-Id": rid}).usage
    else:
        chunks = list(c.chat.completions.create(model=route, messages=messages, stream=True,  # type: ignore[arg-type]
                                                stream_options={"include_usage": True},
                                                extra_headers={"X-Request-Id": rid}))
        usage = chunks[-1].usage
    assert usage is not None
    return usage.prompt_tokens, usage.completion_tokens


def responses(gw: EmbeddedGateway, route: str, rid: str, stream: bool) -> Told:
    c = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    if not stream:
        usage = c.responses.create(model=route, input="hello there", extra_headers={"X-Request-Id": rid}).usage
    else:
        events = list(c.responses.create(model=route, input="hello there", stream=True,
                                         extra_headers={"X-Request-Id": rid}))
        usage = events[-1].response.usage  # type: ignore[union-attr]
    assert usage is not None
    return usage.input_tokens, usage.output_tokens


def messages(gw: EmbeddedGateway, route: str, rid: str, stream: bool) -> Told:
    c = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    hello = [{"role": "user", "content": "hello there"}]
    if not stream:
        usage = c.messages.create(model=route, max_tokens=100, messages=hello,  # type: ignore[arg-type]
                                  extra_headers={"X-Request-Id": rid}).usage
    else:
        with c.messages.stream(model=route, max_tokens=100, messages=hello,  # type: ignore[arg-type]
                               extra_headers={"X-Request-Id": rid}) as events:
            usage = events.get_final_message().usage
    cached = (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    return usage.input_tokens + cached, usage.output_tokens


CLIENTS: dict[str, Callable[[EmbeddedGateway, str, str, bool], Told]] = {
    "chat": chat, "responses": responses, "messages": messages}


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("endpoint", list(CLIENTS))
def test_tokens_and_cost_of_every_endpoint_reconcile_with_the_ledger(start_gateway: GatewayFactory, tmp_path: Path,
                                                                     endpoint: str) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = start_gateway(policy(ledger))
    told: dict[str, tuple[str, Told]] = {}
    for route, model in (("gpt", "gpt-4.1"), ("claude", "claude-sonnet-4-5")):
        for stream in (False, True):
            rid = f"{endpoint}-{route}-{'stream' if stream else 'whole'}"
            told[rid] = (model, CLIENTS[endpoint](gw, route, rid, stream))
    gw.run(gw.context.meter.drain())
    records = {r["request_id"]: r for r in map(json.loads, ledger.read_text().splitlines())}
    assert set(records) == set(told)
    total = Decimal(0)
    for rid, (model, (tokens_in, tokens_out)) in told.items():
        record = records[rid]
        assert (record["input_tokens"], record["output_tokens"]) == (tokens_in, tokens_out), rid
        assert record["usage_source"] == "reported" and record["model"] == model
        price_in, price_out = PRICES[model]
        expected = (price_in * tokens_in + price_out * tokens_out) / Decimal(1_000_000)
        assert Decimal(record["cost_usd"]) == expected, rid
        total += expected
    scrape = httpx.get(gw.url + "/metrics").text
    assert metric(scrape, "recloser_requests_total", endpoint=endpoint, status="200") == 4
    for kind, key in (("input", "input_tokens"), ("output", "output_tokens")):
        counted = metric(scrape, "recloser_tokens_total", endpoint=endpoint, type=kind)
        assert counted == sum(r[key] for r in records.values())
    assert Decimal(str(metric(scrape, "recloser_cost_usd_total"))) == total
