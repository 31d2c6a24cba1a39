"""The cost of one call, exact: Decimal arithmetic, quantized to a nano-dollar."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from gateway.metering.prices import Price
from gateway.metering.record import Usage

NANO_USD = Decimal("0.000000001")
MILLION = Decimal(1_000_000)


def cost_usd(price: Price, usage: Usage) -> Decimal:
    """Fresh input, cache reads, cache writes and output, each at its own price per million tokens."""
    # Cache reads and writes are parts of the input; a report claiming more than the input is capped.
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_input_tokens, usage.input_tokens - cached)
    raw = ((usage.input_tokens - cached - written) * price.input_per_mtok + cached * price.cached_input_per_mtok
           + written * price.write_per_mtok + usage.output_tokens * price.output_per_mtok) / MILLION
    return raw.quantize(NANO_USD, rounding=ROUND_HALF_EVEN)


def to_nanos(usd: Decimal) -> int:
    """Whole nano-dollars, for a Prometheus counter: integers add up exactly where floats drift."""
    return int((usd / NANO_USD).to_integral_value(rounding=ROUND_HALF_EVEN))
