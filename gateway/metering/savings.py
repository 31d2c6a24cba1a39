"""What a local pool saved: the tokens it served, priced at the route's first frontier target. Pure.

The frontier is the first of the route's targets that is no pool's and has a known price: what the
request would have cost had the pool not been there (the route's fallback of first resort). A route
with no such target saves nothing that can be named. Savings are gross: the pool's own cost (a GPU
hour, converted) is charged as cost beside them, so `cost` and `savings` read together.
"""

from __future__ import annotations

from decimal import Decimal

from gateway.metering.cost import cost_usd
from gateway.metering.prices import Price, PriceBook
from gateway.metering.record import Usage
from gateway.routing.table import RouteTable


def frontier_price(route: RouteTable, prices: PriceBook) -> Price | None:
    """The price of the route's first target that is not a pool endpoint and is priced; None: no such target."""
    for d in route.deployments:
        if d.endpoint:
            continue
        price = prices.price(d.provider, d.model)
        if price.source != "unknown":
            return price
    return None


def savings_usd(frontier: Price | None, usage: Usage) -> Decimal:
    """What `usage` would have cost at the frontier's price, to the nano-dollar (0 without a frontier)."""
    if frontier is None or usage.source == "none":
        return Decimal(0)
    return cost_usd(frontier, usage)
