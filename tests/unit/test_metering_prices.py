"""The price book and the exact cost of a call."""

from __future__ import annotations

import textwrap
from decimal import Decimal

from gateway.metering.cost import cost_usd, to_nanos
from gateway.metering.prices import PriceBook, bundled_cost_map
from gateway.metering.record import Usage
from gateway.policy.load import parse_policy

MAP = {
    "gpt-x": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06, "cache_read_input_token_cost": 5e-07},
    "anthropic/claude-y": {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06},
}


def book(models: str = "", target: str = "{provider: p, model: gpt-x}", kind: str = "openai") -> PriceBook:
    text = f"""
    version: 1
    providers:
      p:
        kind: {kind}
        base_url: http://h/v1
        api_key: k
        {models}
    routes:
      r: {{targets: [{target}]}}
    """
    return PriceBook(parse_policy(textwrap.dedent(text), "p.yaml").document, MAP, "test map")


def test_a_price_comes_from_the_map_by_model_name() -> None:
    p = book().price("p", "gpt-x")
    assert (p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok, p.source) == \
        (Decimal("2.000000"), Decimal("8.000000"), Decimal("0.5000000"), "test map")


def test_a_provider_prefixed_entry_is_found() -> None:
    p = book(target="{provider: p, model: claude-y}", kind="anthropic").price("p", "claude-y")
    assert p.output_per_mtok == Decimal("5") and p.cached_input_per_mtok == p.input_per_mtok


def test_the_policy_overrides_the_map() -> None:
    p = book("models: {gpt-x: {input_usd_per_mtok: 1.5}}").price("p", "gpt-x")
    assert (p.input_per_mtok, p.output_per_mtok, p.source) == (Decimal("1.5"), Decimal("8.000000"), "policy")


def test_gpu_hour_pricing_becomes_a_price_per_token() -> None:
    p = book("models: {llama: {gpu_hour_usd: 3.6, tokens_per_second: 1000}}",
             target="{provider: p, model: llama}").price("p", "llama")
    assert p.input_per_mtok == p.output_per_mtok == Decimal(1) and p.source == "policy:gpu_hour"


def test_an_unknown_model_costs_nothing_and_is_listed() -> None:
    b = book(target="{provider: p, model: mystery}")
    assert b.price("p", "mystery").source == "unknown"
    assert b.unknown() == [("p", "mystery")]
    assert cost_usd(b.price("p", "mystery"), Usage(100, 100)) == 0


def test_cost_counts_cached_input_at_its_own_price_and_is_exact() -> None:
    p = book().price("p", "gpt-x")
    cost = cost_usd(p, Usage(input_tokens=1000, output_tokens=10, cached_input_tokens=400))
    assert cost == Decimal("0.001480000")  # 600 × 2 + 400 × 0.5 + 10 × 8, per million
    assert to_nanos(cost) == 1_480_000


def test_cost_is_quantized_to_a_nano_dollar() -> None:
    p = book("models: {gpt-x: {input_usd_per_mtok: 0.0001, output_usd_per_mtok: 0}}").price("p", "gpt-x")
    assert cost_usd(p, Usage(input_tokens=7)) == Decimal("0.000000001")


def test_the_bundled_map_is_litellms() -> None:
    cost_map, version = bundled_cost_map()
    assert version.startswith("litellm ") and "gpt-4o-mini" in cost_map
