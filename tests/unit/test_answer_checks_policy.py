"""`answer_checks:` in the policy: on by default, a route's own replacing the top level's, bad input
refused with FILE:LINE: reason; and a simulator's broken answers on a schedule."""

from __future__ import annotations

import textwrap

import pytest

from gateway.policy.load import PolicyError, parse_policy
from gateway.routing.table import build_routing, resolve_upstreams

HEAD = """
version: 1
providers: {a: {kind: openai, base_url: "http://127.0.0.1:1/v1"}}
routes:
  chat: {targets: [{provider: a, model: m}]}
  translate:
    answer_checks: {wrong_script: false}
    targets: [{provider: a, model: m}]
"""


def routes(extra: str = "") -> dict[str, object]:
    doc = parse_policy(textwrap.dedent(HEAD) + extra, "p.yaml").document
    return {name: r.answer_checks for name, r in build_routing(doc, resolve_upstreams(doc, {})).routes.items()}


def test_every_check_is_on_with_no_setting_at_all() -> None:
    checks = routes()["chat"]
    assert checks.enabled and checks.wrong_script and checks.empty and checks.repetition  # type: ignore[attr-defined]
    assert checks.tool_arguments and checks.structured_output and checks.rescue  # type: ignore[attr-defined]


def test_a_routes_own_settings_replace_the_top_levels_for_that_route() -> None:
    checks = routes("answer_checks: {min_answers: 5}\n")
    assert checks["chat"].min_answers == 5  # type: ignore[attr-defined]
    assert not checks["translate"].wrong_script and checks["translate"].min_answers == 10  # type: ignore[attr-defined]


def refuse(extra: str) -> str:
    with pytest.raises(PolicyError) as e:
        parse_policy(textwrap.dedent(HEAD) + extra, "p.yaml")
    return str(e.value)


def test_thresholds_out_of_order_and_unknown_keys_are_refused_at_their_line() -> None:
    assert "p.yaml:9: answer_checks" in refuse("answer_checks: {degrade_rate: 0.6, eject_rate: 0.4}\n")
    assert "eject_rate" in refuse("answer_checks: {degrade_rate: 0.6, eject_rate: 0.4}\n")
    assert "min_answers" in refuse("answer_checks: {min_answers: 30, recent_answers: 20}\n")
    assert "wrong_scirpt" in refuse("answer_checks: {wrong_scirpt: false}\n")


def test_a_simulators_broken_answers_take_a_kind_and_a_schedule() -> None:
    policy = HEAD.replace('{a: {kind: openai, base_url: "http://127.0.0.1:1/v1"}}',
                          "{a: {kind: sim, sim: {broken: {answers: loop, after_s: 30, for_s: 60}}}}")
    doc = parse_policy(textwrap.dedent(policy), "p.yaml").document
    sim = doc.providers["a"].sim
    assert sim is not None and sim.broken is not None and (sim.broken.answers, sim.broken.after_s) == ("loop", 30)
    with pytest.raises(PolicyError):
        parse_policy(textwrap.dedent(policy.replace("loop", "gibberish")), "p.yaml")
