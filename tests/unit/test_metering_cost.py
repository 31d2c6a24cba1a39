"""The cost of one call: exact Decimal arithmetic, quantized to a nano-dollar."""

from __future__ import annotations

from decimal import Decimal

from gateway.metering.cost import cost_usd, to_nanos
from gateway.metering.prices import Price
from gateway.metering.record import Usage


def price(inp: str = "2", out: str = "8", cached: str = "0.5") -> Price:
    return Price(Decimal(inp), Decimal(out), Decimal(cached), "test")


def test_cached_input_is_charged_at_its_own_price() -> None:
    cost = cost_usd(price(), Usage(input_tokens=1000, output_tokens=10, cached_input_tokens=400))
    assert cost == Decimal("0.001480")   # (600 × 2 + 400 × 0.5 + 10 × 8) / 1e6


def test_cost_has_nine_decimal_places() -> None:
    assert cost_usd(price(), Usage(input_tokens=1)).as_tuple().exponent == -9


def test_cost_is_rounded_half_to_even_at_a_nano_dollar() -> None:
    tiny = price(inp="0.0005", out="0", cached="0")   # 0.5 nano-dollar per token
    assert cost_usd(tiny, Usage(input_tokens=1)) == Decimal("0.000000000")   # 0.5 → 0
    assert cost_usd(tiny, Usage(input_tokens=3)) == Decimal("0.000000002")   # 1.5 → 2
    assert cost_usd(tiny, Usage(input_tokens=5)) == Decimal("0.000000002")   # 2.5 → 2


def test_costs_add_up_exactly_where_floats_drift() -> None:
    one = cost_usd(price(inp="0.1", out="0", cached="0"), Usage(input_tokens=1_000_000))
    assert sum([one] * 3, Decimal(0)) == Decimal("0.3")
    assert 0.1 + 0.1 + 0.1 != 0.3   # what the ledger would suffer with floats


def test_cached_tokens_reported_beyond_the_input_are_capped_at_the_input() -> None:
    assert cost_usd(price(), Usage(input_tokens=10, cached_input_tokens=50)) == \
        cost_usd(price(), Usage(input_tokens=10, cached_input_tokens=10))


def test_no_usage_costs_nothing() -> None:
    assert cost_usd(price(), Usage(source="none")) == 0


def test_nanos_are_the_whole_nano_dollars_of_a_cost() -> None:
    assert to_nanos(Decimal("0.001480000")) == 1_480_000
    assert to_nanos(Decimal("2.5")) == 2_500_000_000


def test_cache_writes_are_charged_at_their_own_price() -> None:
    p = Price(Decimal(3), Decimal(15), Decimal("0.3"), "test", Decimal("3.75"))
    usage = Usage(input_tokens=1100, output_tokens=10, cached_input_tokens=600, cache_write_input_tokens=400)
    assert cost_usd(p, usage) == Decimal("0.002130")   # (100 × 3 + 600 × 0.3 + 400 × 3.75 + 10 × 15) / 1e6


def test_cache_writes_without_a_price_of_their_own_cost_what_input_does() -> None:
    with_writes = Usage(input_tokens=1000, output_tokens=10, cache_write_input_tokens=400)
    assert cost_usd(price(), with_writes) == cost_usd(price(), Usage(input_tokens=1000, output_tokens=10))
