"""`recloser simulate`: the planner's answer, offline, to "what if this provider goes down or slow?"."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.policy.load import load_policy
from gateway.commands.simulate import RouteOutcome, report, simulate

DEFAULT = load_policy(Path(__file__).resolve().parents[2] / "policies" / "default.yaml").document


def by_route(down: set[str], slow: frozenset[str] = frozenset()) -> dict[str, RouteOutcome]:
    return {o.route: o for o in simulate(DEFAULT, frozenset(down), frozenset(slow))}


def test_with_the_primary_down_the_next_target_takes_all_the_traffic_at_its_price() -> None:
    chat = by_route({"frontier"})["chat"]
    assert [(s.target, s.percent) for s in chat.before] == [("frontier/gpt-4o-mini", 100.0)]
    assert [(s.target, s.percent) for s in chat.after] == [("anthropic/claude-3-5-haiku-latest", 100.0)]
    assert chat.failover == ("anthropic/claude-3-5-haiku-latest", "local-gpu/llama-3.1-8b-instruct")
    assert chat.skipped == ("frontier/gpt-4o-mini",)
    assert chat.usd_per_mtok_before == (Decimal("0.15"), Decimal("0.60"))
    assert chat.usd_per_mtok_after == (Decimal("0.80"), Decimal("4.00"))


def test_a_route_whose_only_provider_is_down_has_nothing_left() -> None:
    outcomes = by_route({"local-gpu"})
    assert outcomes["local"].nothing_left
    assert not outcomes["chat"].nothing_left
    text = report(list(outcomes.values()), frozenset({"local-gpu"}), frozenset())
    assert "Routes with nothing left: local" in text


def test_a_slow_primary_keeps_only_its_degraded_share() -> None:
    chat = by_route(set(), frozenset({"frontier"}))["chat"]
    shares = {s.target: s.percent for s in chat.after}
    assert 5 <= shares["frontier/gpt-4o-mini"] <= 15, shares   # breaker.degraded_share is 10 %
    assert shares["anthropic/claude-3-5-haiku-latest"] >= 85


def test_the_same_scenario_gives_the_same_answer_every_run() -> None:
    assert simulate(DEFAULT, frozenset(), frozenset({"frontier"})) == simulate(DEFAULT, frozenset(), frozenset({"frontier"}))


POOL = """
version: 1
providers:
  gpus:
    kind: openai
    endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]
    server: vllm
    models: {llama: {input_usd_per_mtok: 0.01, output_usd_per_mtok: 0.02}}
  sims: {kind: sim, endpoints: 3}
  frontier:
    kind: sim
    models: {small: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}
routes:
  chat:
    targets: [{provider: gpus, model: llama}, {provider: frontier, model: small}]
"""


def pool_outcome(down: set[str]) -> RouteOutcome:
    from gateway.policy.load import parse_policy

    doc = parse_policy(POOL, "p.yaml", {}).document
    return {o.route: o for o in simulate(doc, frozenset(down), frozenset())}["chat"]


def test_a_pool_down_sends_its_traffic_to_the_next_target() -> None:
    chat = pool_outcome({"gpus"})
    assert [(s.target, s.percent) for s in chat.before] == [("gpus/llama", 100.0)]
    assert [(s.target, s.percent) for s in chat.after] == [("frontier/small", 100.0)]
    assert chat.usd_per_mtok_after == (Decimal("0.15"), Decimal("0.60"))
    # The planner counts targets: the pool down is one target of two, not two deployments of three,
    # so the dead replicas are skipped rather than tried first in a panic.
    assert not chat.panic and chat.failover == ("frontier/small",)


def test_a_pool_down_behind_enough_standing_targets_is_skipped() -> None:
    from gateway.policy.load import parse_policy

    doc = parse_policy(POOL.replace("targets: [{provider: gpus, model: llama}, {provider: frontier, model: small}]",
                                    "targets: [{provider: gpus, model: llama}, {provider: frontier, model: small}, "
                                    "{provider: sims, model: small}]"), "p.yaml", {}).document
    chat = {o.route: o for o in simulate(doc, frozenset({"gpus"}), frozenset())}["chat"]
    assert not chat.panic and chat.skipped == ("gpus/llama",)
    assert chat.failover[0] == "frontier/small"


def test_one_endpoint_of_a_pool_down_leaves_the_pool_answering_on_the_others() -> None:
    chat = pool_outcome({"gpus@10.0.0.1:8000"})
    assert [(s.target, s.percent) for s in chat.after] == [("gpus/llama", 100.0)]
    assert chat.skipped == ("gpus/llama@10.0.0.1:8000",)
    assert chat.failover == ("gpus/llama (1 of 2 endpoints down)", "frontier/small")
    text = report([chat], frozenset({"gpus@10.0.0.1:8000"}), frozenset())
    assert "Scenario: gpus@10.0.0.1:8000 down" in text and "skips: gpus/llama@10.0.0.1:8000" in text


def test_names_of_pool_endpoints_are_known_by_host_and_port_or_a_sim_replicas_number() -> None:
    from gateway.policy.load import parse_policy
    from gateway.commands.simulate import unknown_names

    doc = parse_policy(POOL, "p.yaml", {}).document
    assert unknown_names(doc, frozenset({"gpus", "gpus@10.0.0.2:8000", "sims@3", "frontier"})) == []
    assert unknown_names(doc, frozenset({"gpus@10.0.0.9:8000", "sims@4", "frontier@1", "nope"})) == \
        ["frontier@1", "gpus@10.0.0.9:8000", "nope", "sims@4"]
