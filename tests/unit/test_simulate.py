"""`recloser simulate`: the planner's answer, offline, to "what if this provider goes down or slow?"."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.policy.load import load_policy
from gateway.simulate import RouteOutcome, report, simulate

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
