"""`canaries:` in the policy: defaults, and bad input refused with FILE:LINE: reason."""

from __future__ import annotations

import textwrap

import pytest

from gateway.policy.load import PolicyError, parse_policy

HEAD = """
version: 1
providers: {a: {kind: sim}}
routes: {chat: {targets: [{provider: a, model: m}]}}
"""


def refuse(canaries: str) -> str:
    with pytest.raises(PolicyError) as e:
        parse_policy(textwrap.dedent(HEAD) + textwrap.dedent(canaries), "p.yaml")
    return str(e.value)


def test_a_policy_without_canaries_runs_none() -> None:
    assert parse_policy(textwrap.dedent(HEAD), "p.yaml").document.canaries is None


def test_items_absent_means_the_built_in_suite() -> None:
    doc = parse_policy(textwrap.dedent(HEAD) + "canaries: {interval_s: 60, budget_usd: 0.5}\n", "p.yaml").document
    assert doc.canaries is not None and doc.canaries.items is None and str(doc.canaries.budget_usd) == "0.5"


def test_an_item_with_two_checks_is_refused_at_its_line() -> None:
    message = refuse("""
    canaries:
      items:
        - name: sum
          messages: [{role: user, content: "1+1?"}]
          expect: {contains: "2", regex: "2"}
    """)
    assert message.startswith("p.yaml:10: canaries.items[0].expect: ")
    assert "exactly one of contains, regex, json_schema and tool_call" in message


def test_a_regex_that_does_not_compile_is_refused() -> None:
    assert "regex does not compile" in refuse("""
    canaries:
      items: [{name: r, messages: [{role: user, content: q}], expect: {regex: "(("}}]
    """)


def test_a_json_schema_that_is_no_schema_is_refused() -> None:
    assert "not a valid JSON Schema" in refuse("""
    canaries:
      items: [{name: j, messages: [{role: user, content: q}], expect: {json_schema: {type: 12}}}]
    """)


def test_a_tool_call_check_needs_the_tool_among_the_items_tools() -> None:
    assert "expect.tool_call 'lookup' is not one of the item's tools" in refuse("""
    canaries:
      items: [{name: t, messages: [{role: user, content: q}], expect: {tool_call: lookup}}]
    """)


def test_unknown_keys_and_flapping_thresholds_are_refused() -> None:
    assert refuse("canaries: {intervall_s: 5}\n") == "p.yaml:5: canaries: unknown key 'intervall_s'"
    assert "recover_within must be smaller than degrade_drop" in refuse(
        "canaries: {degrade_drop: 0.1, recover_within: 0.2}\n")
