"""What a reload cannot apply to a running process is said, not silently ignored; what it can is not."""

from __future__ import annotations

from gateway.policy.load import parse_policy
from gateway.serving.reload import refusal, restart_notes

BASE = """
version: 1
providers:
  a: {kind: sim, sim: {first_token_delay_s: 0.0}, models: {m: {input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}
limits: {max_body_bytes: 1048576}
routes: {chat: {targets: [{provider: a, model: m}]}}
"""


def notes(after: str) -> list[str]:
    return restart_notes(parse_policy(after, "p.yaml"), parse_policy(BASE, "p.yaml"))


def test_new_prices_for_a_simulated_provider_apply_at_once() -> None:
    assert notes(BASE.replace("input_usd_per_mtok: 1", "input_usd_per_mtok: 3")) == []


def test_a_running_simulated_provider_keeps_its_behaviour_until_restart() -> None:
    assert notes(BASE.replace("first_token_delay_s: 0.0", "first_token_delay_s: 2.0")) == [
        "p.yaml: providers.a: a running simulated provider keeps its settings until the next restart"]


def test_a_larger_body_limit_waits_for_a_restart_and_a_smaller_one_does_not() -> None:
    assert [n.split(": ")[1] for n in notes(BASE.replace("1048576", "2097152"))] == ["limits.max_body_bytes"]
    assert notes(BASE.replace("1048576", "524288")) == []


def test_a_new_collector_freeze_level_waits_for_a_restart() -> None:
    changed = BASE.replace("1048576}", "1048576, collector_freeze_in_flight: 0}")
    assert [n.split(": ")[1].split(" ")[0] for n in notes(changed)] == ["limits.collector_freeze_in_flight"]


def test_a_policy_without_keys_is_refused_only_where_keys_are_required() -> None:
    loaded = parse_policy(BASE, "p.yaml")
    assert refusal(loaded, open_ok=True) is None
    refused = refusal(loaded, open_ok=False)
    assert refused is not None and str(refused).startswith("p.yaml:1: no auth section")
