"""The price book: what a deployment's tokens cost.

Sources, in order: the policy's own per-token prices for the model (any of the four given; the
others come from litellm's map, then 0); a local GPU's hourly price; litellm's bundled price map,
looked up by the model name (preferring the provider kind's own entry) and by `<kind>/<model>`;
else unknown, metered at cost 0. Cache reads and cache writes (Anthropic's cache_creation, which
costs more than input) have prices of their own; where neither the policy nor the map gives one,
they cost what input does.
litellm's map is read from the JSON file inside the installed package without importing litellm:
the import takes seconds, and nothing here may reach for the network.

GPU-hour pricing: a local deployment declaring `gpu_hour_usd` and `tokens_per_second` (the
aggregate throughput the GPU sustains, all concurrent requests together) costs
`gpu_hour_usd / (3600 × tokens_per_second)` per token, input and output alike, that is
`gpu_hour_usd × 1e6 / (3600 × tokens_per_second)` per million tokens. An hourly price without a
throughput cannot be turned into a per-token one: the model is unknown (cost 0) and `unknown()`
lists it, with the reason in `unknown_reasons()`.

Every target of the policy is priced once, when the book is made: on the request path `price()` is
a dict lookup.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from gateway.policy.schema import ModelFacts, PolicyDocument
from gateway.policy.yaml_marks import MarkedDocument

MAP_FILE = "model_prices_and_context_window_backup.json"
MILLION = Decimal(1_000_000)
SECONDS_PER_HOUR = Decimal(3600)
ZERO = Decimal(0)

CostMap = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Price:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal
    source: str             # "policy", "policy:gpu_hour", "litellm <version>", or "unknown"
    cache_write_per_mtok: Decimal | None = None   # prompt-cache writes; None: what input costs

    @property
    def write_per_mtok(self) -> Decimal:
        return self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok


UNKNOWN = Price(ZERO, ZERO, ZERO, "unknown")


@functools.lru_cache(maxsize=1)
def bundled_cost_map() -> tuple[CostMap, str]:
    """litellm's price map and `litellm <version>`, without importing litellm; empty when it is absent.

    Read once per process (the file is a few MB): a read-only view, so no caller can change it.
    """
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return MappingProxyType({}), "unknown"
    path = Path(next(iter(spec.submodule_search_locations))) / MAP_FILE
    try:
        data = orjson.loads(path.read_bytes())
        version = importlib.metadata.version("litellm")
    except (OSError, orjson.JSONDecodeError, importlib.metadata.PackageNotFoundError):
        return MappingProxyType({}), "unknown"
    if not isinstance(data, dict):
        return MappingProxyType({}), "unknown"
    data.pop("sample_spec", None)   # the map's documentation of its own fields, not a model
    return MappingProxyType(data), f"litellm {version}"


def _decimal(value: Any) -> Decimal | None:
    """USD amounts arrive as floats; their shortest repr is the number the author wrote."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        return None
    return result if result.is_finite() and result >= 0 else None


@dataclass(frozen=True)
class _MapPrice:
    """A map entry's prices per million tokens; cached (written) is None when the map gives no cache
    read (write) price."""

    input: Decimal
    output: Decimal
    cached: Decimal | None
    written: Decimal | None = None


def _priced(entry: Any) -> bool:
    return isinstance(entry, Mapping) and (entry.get("input_cost_per_token") is not None
                                           or entry.get("output_cost_per_token") is not None)


def _serves(entry: Mapping[str, Any], kind: str) -> bool:
    """Whether a map entry is the provider kind's own (`vertex_ai-language-models` is vertex_ai's)."""
    provider = str(entry.get("litellm_provider") or "")
    return provider == kind or provider.startswith(kind + "-")


def _map_entry(cost_map: CostMap, kind: str, model: str,
               want: Callable[[Mapping[str, Any]], bool] = _priced) -> Mapping[str, Any] | None:
    """The map's entry for a deployment: `model` as the provider's own entry, then `<kind>/<model>`,
    then `model` from any provider. The same model name can cost differently at another provider
    (gemini-2.5-flash is listed under Vertex AI; Gemini's own is `gemini/gemini-2.5-flash`)."""
    bare, prefixed = cost_map.get(model), cost_map.get(f"{kind}/{model}")
    for entry in ((bare if isinstance(bare, Mapping) and _serves(bare, kind) else None), prefixed, bare):
        if entry is not None and want(entry):
            return entry
    return None


def _from_map(entry: Mapping[str, Any] | None) -> _MapPrice | None:
    if entry is None:
        return None
    per_in = _decimal(entry.get("input_cost_per_token"))
    per_out = _decimal(entry.get("output_cost_per_token"))
    if per_in is None and per_out is None:
        return None
    cached = _decimal(entry.get("cache_read_input_token_cost"))
    written = _decimal(entry.get("cache_creation_input_token_cost"))
    return _MapPrice((per_in or ZERO) * MILLION, (per_out or ZERO) * MILLION,
                     None if cached is None else cached * MILLION, None if written is None else written * MILLION)


def _from_policy(facts: ModelFacts, mapped: _MapPrice | None) -> Price | None:
    """The policy's per-token prices, completed from the map; None when it sets none."""
    given = (facts.input_usd_per_mtok, facts.output_usd_per_mtok, facts.cached_input_usd_per_mtok,
             facts.cache_write_usd_per_mtok)
    if all(v is None for v in given):
        return None
    inp = _decimal(facts.input_usd_per_mtok)
    out = _decimal(facts.output_usd_per_mtok)
    cached = _decimal(facts.cached_input_usd_per_mtok)
    if inp is None:
        inp = mapped.input if mapped is not None else ZERO
    if out is None:
        out = mapped.output if mapped is not None else ZERO
    if cached is None:
        # A cached price the map gives still holds; otherwise cached tokens cost what input does.
        cached = mapped.cached if mapped is not None and mapped.cached is not None else inp
    written = _decimal(facts.cache_write_usd_per_mtok)
    if written is None and mapped is not None:
        written = mapped.written   # a cache-write price the map gives still holds; else input's
    return Price(inp, out, cached, "policy", written)


def _from_gpu_hour(facts: ModelFacts) -> Price | None:
    hourly = _decimal(facts.gpu_hour_usd)
    throughput = _decimal(facts.tokens_per_second)
    if hourly is None or not throughput:
        return None
    per_mtok = hourly * MILLION / (SECONDS_PER_HOUR * throughput)
    return Price(per_mtok, per_mtok, per_mtok, "policy:gpu_hour")


def resolve_price(facts: ModelFacts | None, kind: str, model: str, cost_map: CostMap,
                  map_source: str) -> tuple[Price, str | None]:
    """One deployment's price and, when it is unknown, why (pure)."""
    mapped = _from_map(_map_entry(cost_map, kind, model))
    if facts is not None:
        from_policy = _from_policy(facts, mapped)
        if from_policy is not None:
            return from_policy, None
        if facts.gpu_hour_usd is not None:
            from_gpu = _from_gpu_hour(facts)
            if from_gpu is not None:
                return from_gpu, None
            # The map's price for a model of the same name is a cloud's, not this GPU's: don't use it.
            return UNKNOWN, "gpu_hour_usd is set without tokens_per_second"
    if mapped is not None:
        cached = mapped.cached if mapped.cached is not None else mapped.input
        return Price(mapped.input, mapped.output, cached, map_source, mapped.written), None
    return UNKNOWN, "not in the policy nor in litellm's price map"


class PriceBook:
    def __init__(self, doc: PolicyDocument, cost_map: CostMap | None = None, map_source: str | None = None) -> None:
        if cost_map is None:
            cost_map, source = bundled_cost_map()
        else:
            source = map_source or "custom map"
        self._doc = doc
        self._map = cost_map
        self._source = source
        self._prices: dict[tuple[str, str], Price] = {}
        self._why_unknown: dict[tuple[str, str], str] = {}
        self._max_output: dict[tuple[str, str], int | None] = {}   # filled on first use
        for route in doc.routes.values():
            for t in route.targets:
                if (t.provider, t.model) not in self._prices:
                    price, why = self._resolve(t.provider, t.model)
                    self._prices[(t.provider, t.model)] = price
                    if why is not None:
                        self._why_unknown[(t.provider, t.model)] = why

    def _resolve(self, provider: str, model: str) -> tuple[Price, str | None]:
        p = self._doc.providers.get(provider)
        if p is None:
            return UNKNOWN, f"no provider named {provider!r}"
        return resolve_price(p.models.get(model), p.kind, model, self._map, self._source)

    def price(self, provider: str, model: str) -> Price:
        """A dict lookup for every target of the policy; anything else is resolved on the spot."""
        found = self._prices.get((provider, model))
        return found if found is not None else self._resolve(provider, model)[0]

    def unknown(self) -> list[tuple[str, str]]:
        """Route targets with no known price: served, but metered at cost 0 (for `recloser check`)."""
        return list(self._why_unknown)

    def unknown_reasons(self) -> dict[tuple[str, str], str]:
        """Why each of `unknown()` has no price, e.g. an hourly GPU price without a throughput."""
        return dict(self._why_unknown)

    def max_output_tokens(self, provider: str, model: str) -> int | None:
        """Output tokens the model may produce at most: the policy's `max_output_tokens`, else the map's."""
        key = (provider, model)
        if key not in self._max_output:
            p = self._doc.providers.get(provider)
            facts = p.models.get(model) if p is not None else None
            found = facts.max_output_tokens if facts is not None else None
            if found is None and p is not None:
                entry = _map_entry(self._map, p.kind, model, lambda e: isinstance(e.get("max_output_tokens"), int))
                found = int(entry["max_output_tokens"]) if entry is not None else None
            self._max_output[key] = found
        return self._max_output[key]

    def context_window(self, provider: str, model: str) -> int | None:
        """Input tokens the model accepts: the policy's `context_window`, else the map's `max_input_tokens`."""
        p = self._doc.providers.get(provider)
        if p is None:
            return None
        facts = p.models.get(model)
        if facts is not None and facts.context_window is not None:
            return facts.context_window
        entry = _map_entry(self._map, p.kind, model, lambda e: isinstance(e.get("max_input_tokens"), int))
        return int(entry["max_input_tokens"]) if entry is not None else None


def unpriced_targets(source: str, doc: PolicyDocument, marked: MarkedDocument) -> list[str]:
    """Targets no price is known for: served, but metered at cost 0 until the policy prices them."""
    out = []
    for provider, model in PriceBook(doc).unknown():
        where = next(((r, i) for r, route in doc.routes.items() for i, t in enumerate(route.targets)
                      if (t.provider, t.model) == (provider, model)), None)
        line = marked.line_of(("routes", where[0], "targets", where[1])) if where else 1
        out.append(f"{source}:{line}: no price known for {provider}/{model}: it is served and metered at cost 0 "
                   f"(set providers.{provider}.models.{model}.input_usd_per_mtok / output_usd_per_mtok)")
    return out
