"""Quality tiers in the policy: inherited down the target list, and which answers count as degraded."""

from __future__ import annotations

import textwrap

import pytest

from gateway.policy.load import PolicyError, parse_policy
from gateway.routing.table import Upstream, build_routing, resolve_upstreams


def routing(targets: str):  # type: ignore[no-untyped-def]
    doc = parse_policy(textwrap.dedent(f"""
    version: 1
    providers: {{a: {{kind: sim}}, b: {{kind: sim}}, c: {{kind: sim}}}}
    routes:
      chat:
        targets: {targets}
    """), "t.yaml").document
    sims = {name: Upstream("openai", f"http://127.0.0.1:{9000 + i}/v1") for i, name in enumerate(doc.providers)}
    return build_routing(doc, resolve_upstreams(doc, sims)).routes["chat"]


def test_without_tiers_every_target_is_tier_one_and_nothing_is_degraded() -> None:
    route = routing("[{provider: a, model: m}, {provider: b, model: m}, {provider: c, model: m}]")
    assert route.tiers == (1, 1, 1)
    assert all(route.degraded_tier(d) is None for d in route.deployments)


def test_a_tier_carries_on_to_the_targets_after_it() -> None:
    route = routing("[{provider: a, model: m}, {provider: b, model: m, tier: 2}, {provider: c, model: m}]")
    assert route.tiers == (1, 2, 2)
    assert [route.degraded_tier(d) for d in route.deployments] == [None, 2, 2]


def test_the_best_tier_of_the_route_is_the_intended_quality() -> None:
    route = routing("[{provider: a, model: m, tier: 2}, {provider: b, model: m, tier: 3}]")
    assert [route.degraded_tier(d) for d in route.deployments] == [None, 3]


def test_a_tier_must_be_a_small_positive_number() -> None:
    with pytest.raises(PolicyError) as e:
        routing("[{provider: a, model: m, tier: 0}]")
    assert "t.yaml:6: routes.chat.targets[0].tier:" in str(e.value)
