"""The price book: policy prices, litellm's bundled map, GPU-hour prices, and what is unknown."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.metering.cost import cost_usd
from gateway.metering.prices import MAP_FILE, PriceBook, bundled_cost_map
from gateway.metering.record import Usage
from gateway.policy.schema import PolicyDocument

MAP: dict[str, dict[str, Any]] = {
    "gpt-x": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06, "cache_read_input_token_cost": 5e-07,
              "litellm_provider": "openai", "max_input_tokens": 128000},
    "plain-y": {"input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06, "litellm_provider": "openai"},
    "anthropic/claude-y": {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06},
}


def policy(models: Mapping[str, Any] | None = None, kind: str = "openai", *targets: str) -> PolicyDocument:
    """One provider `p` of `kind` and one route over `targets` (default: gpt-x)."""
    return PolicyDocument.model_validate({
        "version": 1,
        "providers": {"p": {"kind": kind, "models": dict(models or {})}},
        "routes": {"r": {"targets": [{"provider": "p", "model": m} for m in (targets or ("gpt-x",))]}},
    })


def book(models: Mapping[str, Any] | None = None, kind: str = "openai", *targets: str) -> PriceBook:
    return PriceBook(policy(models, kind, *targets), MAP, "test map")


def litellm_json() -> dict[str, Any]:
    """The bundled map as the test reads it itself, with the standard library."""
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / MAP_FILE
    return dict(json.loads(path.read_text(encoding="utf-8")))


def per_mtok(per_token: float) -> Decimal:
    return Decimal(str(per_token)) * 1_000_000


# Policy prices


def test_the_policy_price_overrides_the_map() -> None:
    p = book({"gpt-x": {"input_usd_per_mtok": 1.5, "output_usd_per_mtok": 6, "cached_input_usd_per_mtok": 0.25}}) \
        .price("p", "gpt-x")
    assert (p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok, p.source) == \
        (Decimal("1.5"), Decimal(6), Decimal("0.25"), "policy")


def test_a_partial_policy_price_takes_the_missing_ones_from_the_map() -> None:
    p = book({"gpt-x": {"input_usd_per_mtok": 1.5}}).price("p", "gpt-x")
    assert (p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok, p.source) == \
        (Decimal("1.5"), Decimal(8), Decimal("0.5"), "policy")


def test_a_policy_price_for_a_model_the_map_lacks_leaves_the_rest_at_zero() -> None:
    p = book({"own": {"output_usd_per_mtok": 3}}, "openai", "own").price("p", "own")
    assert (p.input_per_mtok, p.output_per_mtok, p.source) == (Decimal(0), Decimal(3), "policy")


def test_cached_input_costs_the_input_price_when_neither_policy_nor_map_gives_one() -> None:
    p = book({"plain-y": {"input_usd_per_mtok": 0.7}}, "openai", "plain-y").price("p", "plain-y")
    assert p.cached_input_per_mtok == Decimal("0.7")   # the policy's input price, not the map's 1.0


def test_facts_without_prices_leave_the_map_price() -> None:
    p = book({"gpt-x": {"context_window": 1000}}).price("p", "gpt-x")
    assert p.source == "test map" and p.input_per_mtok == Decimal(2)


# litellm's map


def test_a_price_comes_from_litellms_bundled_map() -> None:
    expected = litellm_json()["gpt-4o-mini"]
    p = PriceBook(policy(None, "openai", "gpt-4o-mini")).price("p", "gpt-4o-mini")
    assert (p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok) == (
        per_mtok(expected["input_cost_per_token"]), per_mtok(expected["output_cost_per_token"]),
        per_mtok(expected["cache_read_input_token_cost"]))


def test_the_map_source_names_the_installed_litellm_version() -> None:
    _, source = bundled_cost_map()
    assert source == f"litellm {importlib.metadata.version('litellm')}"
    assert PriceBook(policy(None, "openai", "gpt-4o-mini")).price("p", "gpt-4o-mini").source == source


def test_an_anthropic_model_listed_under_its_bare_name_is_found_with_its_cached_price() -> None:
    raw = litellm_json()
    assert "claude-sonnet-4-5" in raw and "anthropic/claude-sonnet-4-5" not in raw  # what the map holds
    p = PriceBook(policy(None, "anthropic", "claude-sonnet-4-5")).price("p", "claude-sonnet-4-5")
    assert p.cached_input_per_mtok == per_mtok(raw["claude-sonnet-4-5"]["cache_read_input_token_cost"])
    assert p.cached_input_per_mtok < p.input_per_mtok


def test_a_model_listed_only_with_its_provider_prefix_is_found() -> None:
    model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    raw = litellm_json()
    assert model not in raw and f"together_ai/{model}" in raw  # what the map holds
    p = PriceBook(policy(None, "together_ai", model)).price("p", model)
    assert p.output_per_mtok == per_mtok(raw[f"together_ai/{model}"]["output_cost_per_token"])


def test_the_providers_own_entry_beats_another_providers_entry_of_the_same_name() -> None:
    cost_map = {"m": {"input_cost_per_token": 9e-06, "litellm_provider": "vertex_ai-language-models"},
                "gemini/m": {"input_cost_per_token": 1e-06, "litellm_provider": "gemini"}}
    assert PriceBook(policy(None, "gemini", "m"), cost_map).price("p", "m").input_per_mtok == Decimal(1)
    assert PriceBook(policy(None, "vertex_ai", "m"), cost_map).price("p", "m").input_per_mtok == Decimal(9)


def test_a_prefixed_entry_without_a_cached_price_charges_cached_input_as_input() -> None:
    p = book(None, "anthropic", "claude-y").price("p", "claude-y")
    assert (p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok) == (Decimal(1), Decimal(5), Decimal(1))


def test_without_litellm_installed_the_map_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    cost_map, source = bundled_cost_map.__wrapped__()
    assert (len(cost_map), source) == (0, "unknown")


def test_the_bundled_map_is_read_without_importing_litellm() -> None:
    code = ("import sys; from gateway.metering.prices import bundled_cost_map; "
            "m, _ = bundled_cost_map(); assert 'gpt-4o-mini' in m; assert 'litellm' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2], timeout=60)


# GPU-hour prices


def test_an_hour_of_gpu_throughput_costs_the_hourly_price() -> None:
    p = book({"llama": {"gpu_hour_usd": 2.5, "tokens_per_second": 500}}, "openai", "llama").price("p", "llama")
    assert p.source == "policy:gpu_hour"
    assert p.input_per_mtok == p.output_per_mtok == p.cached_input_per_mtok
    hour_of_tokens = 3600 * 500
    assert cost_usd(p, Usage(input_tokens=hour_of_tokens // 2, output_tokens=hour_of_tokens // 2)) == Decimal("2.5")


def test_gpu_hour_price_per_million_tokens_is_hourly_price_over_hourly_throughput() -> None:
    p = book({"llama": {"gpu_hour_usd": 3.6, "tokens_per_second": 1000}}, "openai", "llama").price("p", "llama")
    assert p.input_per_mtok == Decimal(1)   # 3.6 × 1e6 / (3600 × 1000)


def test_gpu_hour_without_throughput_is_unknown_even_if_the_map_knows_the_name() -> None:
    b = book({"gpt-x": {"gpu_hour_usd": 2.0}})
    assert b.price("p", "gpt-x").source == "unknown"
    assert b.unknown() == [("p", "gpt-x")]
    assert "tokens_per_second" in b.unknown_reasons()[("p", "gpt-x")]


# Unknown models


def test_an_unknown_model_costs_nothing_and_is_listed() -> None:
    b = book(None, "openai", "gpt-x", "mystery")
    assert b.price("p", "mystery").source == "unknown"
    assert b.unknown() == [("p", "mystery")]
    assert cost_usd(b.price("p", "mystery"), Usage(100, 100)) == 0


def test_a_pair_outside_the_routes_is_priced_on_the_spot() -> None:
    b = book(None, "openai", "plain-y")
    assert b.price("p", "gpt-x").input_per_mtok == Decimal(2)
    assert b.price("nobody", "gpt-x").source == "unknown"


class CountingMap(Mapping[str, Mapping[str, Any]]):
    def __init__(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        self.data, self.lookups = data, 0

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        self.lookups += 1
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_route_targets_are_priced_once_when_the_book_is_made() -> None:
    cost_map = CountingMap(MAP)
    b = PriceBook(policy(None, "openai", "gpt-x", "plain-y"), cost_map)
    before = cost_map.lookups
    for _ in range(3):
        b.price("p", "gpt-x"), b.price("p", "plain-y")
    assert before > 0 and cost_map.lookups == before


# Context windows


def test_context_window_comes_from_the_policy_then_the_map() -> None:
    assert book({"gpt-x": {"context_window": 1000}}).context_window("p", "gpt-x") == 1000
    assert book().context_window("p", "gpt-x") == 128000
    assert book().context_window("p", "mystery") is None


# Prompt-cache writes


def test_a_cache_write_price_comes_from_litellms_map() -> None:
    raw = litellm_json()["claude-sonnet-4-5"]
    p = PriceBook(policy(None, "anthropic", "claude-sonnet-4-5")).price("p", "claude-sonnet-4-5")
    assert p.write_per_mtok == per_mtok(raw["cache_creation_input_token_cost"])
    assert p.write_per_mtok > p.input_per_mtok > p.cached_input_per_mtok   # writes cost more, reads less


def test_the_policy_cache_write_price_overrides_the_maps() -> None:
    p = PriceBook(policy({"claude-sonnet-4-5": {"cache_write_usd_per_mtok": 4}}, "anthropic", "claude-sonnet-4-5")) \
        .price("p", "claude-sonnet-4-5")
    assert (p.write_per_mtok, p.source) == (Decimal(4), "policy")


def test_cache_writes_cost_the_input_price_when_neither_policy_nor_map_gives_one() -> None:
    assert book(None, "openai", "plain-y").price("p", "plain-y").write_per_mtok == Decimal(1)
