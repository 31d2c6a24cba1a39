"""`recloser check` warns about policies that are legal but unwise, each with its line."""

from __future__ import annotations

import textwrap

from gateway.commands.advice import unwise
from gateway.policy.load import parse_policy


def warnings(text: str) -> list[str]:
    return list(parse_policy(textwrap.dedent(text), "p.yaml", {}, (unwise,)).warnings)


PROVIDERS = """
version: 1
providers:
  cheap:
    kind: sim
    models:
      small: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60, context_window: 128000}
  dear:
    kind: sim
    models:
      big: {input_usd_per_mtok: 5, output_usd_per_mtok: 15, context_window: 200000}
      short: {input_usd_per_mtok: 0.1, output_usd_per_mtok: 0.4, context_window: 8000}
"""


def test_a_wise_policy_has_no_warnings() -> None:
    assert warnings(PROVIDERS + """
routes:
  chat:
    targets:
      - {provider: dear, model: short}
      - {provider: cheap, model: small}
""") == []


def test_a_route_with_a_single_target_is_warned_about_with_its_line() -> None:
    found = warnings(PROVIDERS + """
routes:
  chat:
    targets:
      - {provider: cheap, model: small}
""")
    assert found == ["p.yaml:16: routes.chat: a single target (cheap/small): when it fails there is nowhere to fail "
                     "over; add a fallback"]


def test_a_fallback_with_a_smaller_context_window_is_warned_about() -> None:
    found = warnings(PROVIDERS + """
routes:
  chat:
    targets:
      - {provider: cheap, model: small}
      - {provider: dear, model: short}
""")
    assert len(found) == 1 and found[0].startswith("p.yaml:18: routes.chat.targets[1]: dear/short takes 8,000 tokens")


def test_a_fallback_many_times_dearer_than_the_primary_is_warned_about() -> None:
    found = warnings(PROVIDERS + """
routes:
  chat:
    targets:
      - {provider: cheap, model: small}
      - {provider: dear, model: big}
""")
    assert len(found) == 1 and "dear/big costs 28.6x the primary cheap/small" in found[0]


def test_probes_that_would_cost_real_money_are_warned_about() -> None:
    found = warnings(PROVIDERS + """
breaker: {synthetic_probe_s: 0.5}
routes:
  chat:
    targets:
      - {provider: dear, model: big}
      - {provider: cheap, model: small}
""")
    assert [w for w in found if "synthetic_probe_s" in w] == [
        "p.yaml:14: breaker.synthetic_probe_s: a probe every 0.5 s to each ejected target costs up to $11.59 a day "
        "while targets are out; probe less often"]


POOL = """
version: 1
providers:
  gpus:
    kind: openai
    endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]
    server: vllm
    load: {spill: {queue: 4}}
    models:
      llama: {gpu_hour_usd: 2, tokens_per_second: 1000}
  frontier:
    kind: sim
    models:
      small: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
routes:
  chat:
    targets:
      - {provider: gpus, model: llama}
      - {provider: frontier, model: small}
"""


def test_a_pool_that_reads_its_servers_and_spills_to_a_frontier_has_no_warnings() -> None:
    assert warnings(POOL) == []


def test_a_pool_without_server_is_warned_that_its_metrics_are_not_read() -> None:
    found = warnings(POOL.replace("    server: vllm\n", ""))
    assert len(found) == 1
    assert found[0].startswith("p.yaml:6: providers.gpus: a pool without `server`: its endpoints' /metrics are not read")


def test_a_sim_pool_of_gpu_servers_needs_no_server_its_sims_say_which_dialect_they_speak() -> None:
    found = warnings(POOL.replace("""    kind: openai
    endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]
    server: vllm
""", """    kind: sim
    endpoints: 2
    sim: {gpu: {server: sglang}}
"""))
    assert found == []
    found = warnings(POOL.replace("""    kind: openai
    endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]
    server: vllm
""", """    kind: sim
    endpoints: 2
    sim: {gpu: {server: tgi}}
""").replace("{queue: 4}", "{queue: 4, kv_percent: 90}"))
    assert len(found) == 1 and "tgi reports no KV-cache use" in found[0]   # the dialect its sims speak


def test_a_kv_threshold_on_a_server_that_reports_no_kv_use_is_warned_about() -> None:
    found = warnings(POOL.replace("server: vllm", "server: tgi").replace("{queue: 4}", "{queue: 4, kv_percent: 90}"))
    assert len(found) == 1
    assert "p.yaml:8: providers.gpus.load.spill.kv_percent: tgi reports no KV-cache use" in found[0]


def test_a_spill_threshold_with_no_target_behind_the_pool_is_warned_about() -> None:
    found = warnings(POOL.replace("      - {provider: frontier, model: small}\n", ""))
    assert any(w.startswith("p.yaml:18: routes.chat.targets[0]: the pool gpus spills when full, but the route has "
                            "no other target to spill to") for w in found), found


def test_an_endpoint_listed_by_two_providers_is_warned_about() -> None:
    found = warnings(POOL.replace("""  frontier:
    kind: sim
""", """  gpus-again:
    kind: openai
    endpoints: [http://10.0.0.3:8000/v1, http://10.0.0.2:8000/v1]
    server: vllm
  frontier:
    kind: sim
"""))
    assert len(found) == 1
    assert "providers.gpus-again.endpoints[1]: 10.0.0.2:8000 is gpus's too" in found[0]


def test_a_route_only_on_callers_own_credentials_is_warned_about() -> None:
    own = """
version: 1
providers:
  subscription: {kind: anthropic, credentials: client}
  personal: {kind: openai, credentials: client, base_url: "https://api.openai.com/v1"}
  org: {kind: anthropic, api_key: sk-org}
routes:
  own-only:
    targets: [{provider: subscription, model: m}, {provider: personal, model: m}]
  with-org:
    targets: [{provider: subscription, model: m}, {provider: org, model: m}]
"""
    [warning] = warnings(own)
    assert warning.startswith("p.yaml:9: routes.own-only: every target takes the caller's own credentials")
