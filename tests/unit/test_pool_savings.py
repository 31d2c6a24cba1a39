"""What a local pool saved: its answers' tokens at the route's first frontier target's price. Pure."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import yaml

from gateway.metering.prices import PriceBook
from gateway.metering.record import CallRecord, Usage
from gateway.metering.savings import frontier_price, savings_usd
from gateway.policy.schema import PolicyDocument
from gateway.routing.table import RouteTable, build_routing, resolve_upstreams


def routing(targets: str, frontier_price_line: str = "{input_usd_per_mtok: 2.5, output_usd_per_mtok: 10}"
            ) -> tuple[PolicyDocument, PriceBook]:
    doc = PolicyDocument.model_validate(yaml.safe_load(f"""
    version: 1
    providers:
      gpus:
        kind: openai
        endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]
        server: vllm
        models: {{llama: {{gpu_hour_usd: 2.0, tokens_per_second: 1000}}}}
      unpriced: {{kind: openai, base_url: http://10.0.0.9/v1}}
      frontier:
        kind: openai
        base_url: http://10.0.0.10/v1
        models: {{gpt-x: {frontier_price_line}}}
    routes:
      chat:
        targets: {targets}
    """))
    return doc, PriceBook(doc)


def table(doc: PolicyDocument) -> RouteTable:
    return build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]


def test_savings_price_the_pools_tokens_at_the_first_priced_target_that_is_no_pool() -> None:
    doc, prices = routing("[{provider: gpus, model: llama}, {provider: unpriced, model: who-knows}, "
                          "{provider: frontier, model: gpt-x}]")
    price = frontier_price(table(doc), prices)
    assert price is not None and (price.input_per_mtok, price.output_per_mtok) == (Decimal("2.5"), Decimal(10))
    # 1,000 in at $2.50/M and 500 out at $10/M: $0.0025 + $0.005.
    assert savings_usd(price, Usage(input_tokens=1000, output_tokens=500)) == Decimal("0.0075")


def test_savings_are_exact_to_the_nano_dollar() -> None:
    doc, prices = routing("[{provider: gpus, model: llama}, {provider: frontier, model: gpt-x}]",
                          "{input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.6}")
    price = frontier_price(table(doc), prices)
    total = sum((savings_usd(price, Usage(input_tokens=7, output_tokens=3)) for _ in range(1000)), Decimal(0))
    assert savings_usd(price, Usage(input_tokens=7, output_tokens=3)) == Decimal("0.000002850")
    assert total == Decimal("0.002850000")


def test_a_route_with_no_priced_target_outside_its_pool_saves_nothing() -> None:
    doc, prices = routing("[{provider: gpus, model: llama}, {provider: unpriced, model: who-knows}]")
    assert frontier_price(table(doc), prices) is None
    assert savings_usd(None, Usage(input_tokens=1000, output_tokens=500)) == 0


def test_usage_nobody_reported_or_counted_saves_nothing() -> None:
    doc, prices = routing("[{provider: gpus, model: llama}, {provider: frontier, model: gpt-x}]")
    assert savings_usd(frontier_price(table(doc), prices), Usage(source="none")) == 0


def test_a_ledger_line_carries_savings_only_for_a_pool_answer_and_reads_back_exact() -> None:
    base: dict[str, Any] = dict(ts=0.0, request_id="r", team="t", app="a", key_id="k", route="chat", provider="gpus", model="llama",
                input_tokens=1, output_tokens=1, cached_input_tokens=0, cost_usd=Decimal("0.000001"),
                price_source="policy", usage_source="reported", outcome="ok", attempts=1, fallback=False,
                hedged=False, stream=False, latency_s=0.1, ttft_s=None)
    pool = CallRecord(**base, savings_usd=Decimal("0.000012500"))
    line = json.loads(pool.to_json())
    assert line["savings_usd"] == "0.000012500"
    assert CallRecord.from_json(line).savings_usd == Decimal("0.000012500")
    assert "savings_usd" not in json.loads(CallRecord(**base).to_json())
