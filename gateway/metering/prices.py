"""The price book: what a deployment's tokens cost.

Sources, in order: the policy's own prices for the model; a local GPU's hourly price; litellm's
bundled price map (read from the JSON file inside the installed package: importing litellm would
take seconds, and nothing may reach for the network); else unknown, metered at cost 0.

GPU-hour pricing: a local deployment declaring `gpu_hour_usd` and `tokens_per_second` (the
aggregate throughput the GPU sustains) costs `gpu_hour_usd / (3600 × tokens_per_second)` per token,
input and output alike, i.e. `gpu_hour_usd × 1e6 / (3600 × tokens_per_second)` per million tokens.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from gateway.policy.schema import ModelFacts, PolicyDocument

MAP_FILE = "model_prices_and_context_window_backup.json"
MILLION = Decimal(1_000_000)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Price:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal
    source: str             # "policy", "policy:gpu_hour", "litellm <version>", or "unknown"


UNKNOWN = Price(ZERO, ZERO, ZERO, "unknown")


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))


@functools.lru_cache(maxsize=1)
def bundled_cost_map() -> tuple[Mapping[str, Mapping[str, Any]], str]:
    """litellm's price map and its version, without importing litellm; empty when it is absent."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}, "unknown"
    path = Path(next(iter(spec.submodule_search_locations))) / MAP_FILE
    if not path.is_file():
        return {}, "unknown"
    data = orjson.loads(path.read_bytes())
    data.pop("sample_spec", None)
    return data, f"litellm {importlib.metadata.version('litellm')}"


def _from_map(entry: Mapping[str, Any], source: str) -> Price | None:
    per_token_in = _decimal(entry.get("input_cost_per_token"))
    per_token_out = _decimal(entry.get("output_cost_per_token"))
    if per_token_in is None and per_token_out is None:
        return None
    per_token_in = per_token_in or ZERO
    cached = _decimal(entry.get("cache_read_input_token_cost"))
    return Price(per_token_in * MILLION, (per_token_out or ZERO) * MILLION,
                 (cached if cached is not None else per_token_in) * MILLION, source)


def _from_policy(facts: ModelFacts, fallback: Price | None) -> Price | None:
    given = (facts.input_usd_per_mtok, facts.output_usd_per_mtok, facts.cached_input_usd_per_mtok)
    if any(v is not None for v in given):
        base = fallback or UNKNOWN
        inp = _decimal(facts.input_usd_per_mtok)
        inp = inp if inp is not None else base.input_per_mtok
        out = _decimal(facts.output_usd_per_mtok)
        cached = _decimal(facts.cached_input_usd_per_mtok)
        if cached is None:
            cached = base.cached_input_per_mtok if fallback is not None else inp
        return Price(inp, out if out is not None else base.output_per_mtok, cached, "policy")
    if facts.gpu_hour_usd is not None and facts.tokens_per_second:
        per_mtok = _decimal(facts.gpu_hour_usd) * MILLION / (Decimal(3600) * _decimal(facts.tokens_per_second))  # type: ignore[operator]
        return Price(per_mtok, per_mtok, per_mtok, "policy:gpu_hour")
    return None


class PriceBook:
    def __init__(self, doc: PolicyDocument, cost_map: Mapping[str, Mapping[str, Any]] | None = None,
                 map_source: str | None = None) -> None:
        if cost_map is None:
            cost_map, source = bundled_cost_map()
        else:
            source = map_source or "custom map"
        self._prices: dict[tuple[str, str], Price] = {}
        for route in doc.routes.values():
            for t in route.targets:
                provider = doc.providers[t.provider]
                entry = cost_map.get(t.model) or cost_map.get(f"{provider.kind}/{t.model}")
                from_map = _from_map(entry, source) if entry else None
                facts = provider.models.get(t.model)
                price = _from_policy(facts, from_map) if facts is not None else None
                self._prices[(t.provider, t.model)] = price or from_map or UNKNOWN

    def price(self, provider: str, model: str) -> Price:
        """A dict lookup: every target of the policy was priced when the book was made."""
        return self._prices.get((provider, model), UNKNOWN)

    def unknown(self) -> list[tuple[str, str]]:
        return [pair for pair, price in self._prices.items() if price.source == "unknown"]
