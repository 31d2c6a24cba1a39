"""What `recloser check` warns about: policies that are legal but unwise. Pure, over a validated policy.

- a route with a single target: when it browns out there is nowhere to fail over;
- a target whose context window is smaller than one before it: a long request that fits the primary
  is refused by the fallback at the worst moment;
- a fallback much dearer than the primary: an outage quietly multiplies the bill;
- synthetic probes often enough that an outage costs real money in probes alone;
- a pool without `server`: its endpoints' /metrics are not read, so it is balanced and spilled only by
  the gateway's own requests in flight; a `kv_percent` threshold on a server that reports no KV use;
- a pool with a spill threshold and no other target behind it in a route to spill to;
- an endpoint listed by two providers: two sets of breakers and two load counts for one server;
- a route of more than one target, each on callers' own credentials (`credentials: client`): a
  caller whose credential is refused, or who brought none, has no target of the organisation's.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from gateway.metering.prices import Price, PriceBook
from gateway.policy.schema import PolicyDocument, endpoint_label
from gateway.routing.pool_metrics import DIALECTS
from gateway.policy.yaml_marks import MarkedDocument

EXPENSIVE_FACTOR = Decimal(3)          # a fallback this many times the primary's price is worth a warning
PROBE_USD_PER_DAY = Decimal(1)         # probes costing more than this a day, all targets ejected, are worth one
PROBE_TOKENS = (Decimal(10), Decimal(1))   # a probe: a one-word prompt, one output token
MTOK = Decimal(1_000_000)


def blended(price: Price) -> Decimal:
    """Dollars per million tokens for a typical chat (three input tokens to one output token)."""
    return (3 * price.input_per_mtok + price.output_per_mtok) / 4


def unwise(source: str, doc: PolicyDocument, marked: MarkedDocument) -> list[str]:
    """Warnings, each `FILE:LINE: where: what and why`, in policy order."""
    prices = PriceBook(doc)
    out: list[str] = []

    def warn(path: tuple[str | int, ...], where: str, text: str) -> None:
        out.append(f"{source}:{marked.line_of(path)}: {where}: {text}")

    for name, route in doc.routes.items():
        here: tuple[str | int, ...] = ("routes", name)
        targets = route.targets
        if len(targets) == 1:
            t = targets[0]
            warn(here + ("targets",), f"routes.{name}",
                 f"a single target ({t.provider}/{t.model}): when it fails there is nowhere to fail over; add a fallback")
        widest: tuple[int, str] | None = None
        for i, t in enumerate(targets):
            window = prices.context_window(t.provider, t.model)
            if window is not None and widest is not None and window < widest[0]:
                warn(here + ("targets", i), f"routes.{name}.targets[{i}]",
                     f"{t.provider}/{t.model} takes {window:,} tokens of context, less than {widest[1]} before it "
                     f"({widest[0]:,}): a long request it fails over cannot fit")
            if window is not None and (widest is None or window > widest[0]):
                widest = (window, f"{t.provider}/{t.model}")
        if len(targets) > 1 and all(doc.providers[t.provider].credentials == "client" for t in targets):
            warn(here + ("targets",), f"routes.{name}",
                 "every target takes the caller's own credentials (credentials: client): a caller whose credential "
                 "is refused or who brings none has nowhere to go; add a target on the organisation's key")
        primary = prices.price(targets[0].provider, targets[0].model)
        if primary.source == "unknown" or blended(primary) == 0:
            continue
        for i, t in enumerate(targets[1:], start=1):
            price = prices.price(t.provider, t.model)
            if price.source == "unknown":
                continue
            factor = blended(price) / blended(primary)
            if factor >= EXPENSIVE_FACTOR:
                warn(here + ("targets", i), f"routes.{name}.targets[{i}]",
                     f"{t.provider}/{t.model} costs {factor:.1f}x the primary {targets[0].provider}/{targets[0].model} "
                     f"(${blended(price):.2f} against ${blended(primary):.2f} per million tokens): a failover multiplies "
                     "the bill")

    _pools(doc, warn)

    interval = doc.breaker.synthetic_probe_s
    if interval > 0:
        per_day = Decimal(86_400) / Decimal(str(interval))
        seen: set[tuple[str, str]] = set()
        worst = Decimal(0)
        for route in doc.routes.values():
            for t in route.targets:
                if (t.provider, t.model) in seen:
                    continue
                seen.add((t.provider, t.model))
                p = prices.price(t.provider, t.model)
                worst += per_day * (PROBE_TOKENS[0] * p.input_per_mtok + PROBE_TOKENS[1] * p.output_per_mtok) / MTOK
        if worst > PROBE_USD_PER_DAY:
            warn(("breaker", "synthetic_probe_s"), "breaker.synthetic_probe_s",
                 f"a probe every {interval:g} s to each ejected target costs up to ${worst:.2f} a day while targets "
                 "are out; probe less often")
    return out


def _pools(doc: PolicyDocument, warn: Callable[[tuple[str | int, ...], str, str], None]) -> None:
    seen: dict[str, str] = {}       # endpoint host:port → the provider that listed it first
    for name, p in doc.providers.items():
        here: tuple[str | int, ...] = ("providers", name)
        if p.base_url is not None:
            other = seen.setdefault(endpoint_label(p.base_url), name)
            if other != name and doc.providers[other].endpoints is not None:
                warn(here + ("base_url",), f"providers.{name}.base_url",
                     f"{endpoint_label(p.base_url)} is an endpoint of the pool {other} too: one server with two sets "
                     "of breakers and two counts of its load; name the pool instead")
        if p.endpoints is None:
            continue
        gpu = p.sim.gpu if p.sim is not None else None
        server = p.server or (gpu.server if gpu is not None else None)   # simulated GPU servers say their own
        if server is None and p.kind != "sim":
            warn(here + ("endpoints",), f"providers.{name}",
                 "a pool without `server`: its endpoints' /metrics are not read, so it is balanced and spilled only "
                 "by the gateway's own requests in flight; name it (vllm, sglang, tgi, llamacpp) or say "
                 "server: ollama / openai for servers without any")
        dialect = DIALECTS.get(server or "openai")
        spill = p.load.spill
        if spill is not None and spill.kv_percent is not None and (dialect is None or not dialect.kv):
            warn(here + ("load", "spill", "kv_percent"), f"providers.{name}.load.spill.kv_percent",
                 f"{server or 'a server without metrics'} reports no KV-cache use: this threshold never fills the "
                 "pool; spill on queue instead")
        if isinstance(p.endpoints, list):
            for i, url in enumerate(p.endpoints):
                host = endpoint_label(url)
                other = seen.setdefault(host, name)
                if other != name:
                    warn(here + ("endpoints", i), f"providers.{name}.endpoints[{i}]",
                         f"{host} is {other}'s too: one server with two sets of breakers and two counts of its load; "
                         "list it once")

    for rname, route in doc.routes.items():
        for i, t in enumerate(route.targets):
            p = doc.providers[t.provider]
            if p.endpoints is None or p.load.spill is None:
                continue
            if all(other.provider == t.provider for other in route.targets):
                warn(("routes", rname, "targets", i), f"routes.{rname}.targets[{i}]",
                     f"the pool {t.provider} spills when full, but the route has no other target to spill to: "
                     "past the threshold requests wait in the gateway (sheddable ones are refused); add a fallback")
