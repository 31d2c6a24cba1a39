"""Pools in the policy and the route table: one target, one deployment per endpoint, spill behind the
route's next target. No sockets."""

from __future__ import annotations

import textwrap

import pytest

from gateway.core.metrics import Metrics
from gateway.policy.load import PolicyError, parse_policy
from gateway.routing.pools import PoolBoard
from gateway.routing.pool_metrics import Reading
from gateway.routing.table import Routing, build_routing, resolve_upstreams

POOL = """
version: 1
providers:
  gpus:
    kind: openai
    endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]
    server: vllm
    load: {spill: {queue: 4, kv_percent: 95}}
  frontier:
    kind: openai
    base_url: https://api.openai.com/v1
routes:
  chat:
    targets:
      - {provider: gpus, model: llama}
      - {provider: frontier, model: gpt-4o-mini}
"""


def routing(text: str = POOL) -> Routing:
    doc = parse_policy(textwrap.dedent(text).lstrip("\n"), "p.yaml", {}).document
    return build_routing(doc, resolve_upstreams(doc, {}))


def refuse(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(text).lstrip("\n"), "p.yaml", {})
    return info.value


def test_a_pool_target_is_one_deployment_per_endpoint_with_a_key_of_its_own() -> None:
    table = routing().routes["chat"]
    assert [d.key for d in table.deployments] == ["gpus/llama@10.0.0.1:8000", "gpus/llama@10.0.0.2:8000",
                                                  "frontier/gpt-4o-mini"]
    assert [d.base_url for d in table.deployments[:2]] == ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]
    assert table.priorities == (0, 0, 1) and table.weights == (1, 1, 1) and table.tiers == (1, 1, 1)
    assert table.pools[0].indices == (0, 1) and table.pools[0].server == "vllm" and table.frontier == 2


def test_an_endpoint_s_url_credentials_stay_out_of_its_key_and_label() -> None:
    text = POOL.replace("http://10.0.0.2:8000/v1", "http://ops:s3cret-pw@10.0.0.2:8000/v1")
    table = routing(text).routes["chat"]
    assert [d.key for d in table.deployments[:2]] == ["gpus/llama@10.0.0.1:8000", "gpus/llama@10.0.0.2:8000"]
    assert table.deployments[1].endpoint == "10.0.0.2:8000"
    assert table.deployments[1].base_url == "http://ops:s3cret-pw@10.0.0.2:8000/v1"   # still used to call it


def test_a_route_without_pools_builds_as_before() -> None:
    text = POOL.replace("endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]",
                        "base_url: http://10.0.0.1:8000/v1").replace("    server: vllm\n", "").replace(
        "    load: {spill: {queue: 4, kv_percent: 95}}\n", "")
    table = routing(text).routes["chat"]
    assert [d.key for d in table.deployments] == ["gpus/llama", "frontier/gpt-4o-mini"]
    assert table.pools == () and table.frontier is None


def test_a_pool_is_not_taken_to_speak_the_responses_api() -> None:
    assert not routing().routes["chat"].deployments[0].responses


@pytest.mark.parametrize("change, reason", [
    (("endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]",
      "endpoints: [http://10.0.0.1:8000/v1]\n    base_url: http://x/v1"), "not both"),
    (("endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]",
      "endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.1:8000/v1]"), "listed twice"),
    (("endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]", "endpoints: [gpu1:8000]"), "http://"),
    (("endpoints: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1]", "endpoints: 3"), "kind sim"),
    (("server: vllm", "server: triton"), "server"),
    (("spill: {queue: 4, kv_percent: 95}", "spill: {wait: false}"), "queue, kv_percent or wait: true"),
    (("spill: {queue: 4, kv_percent: 95}", "spill: {margin_s: -1}"), "margin_s"),
    (("spill: {queue: 4, kv_percent: 95}", "slots: 0"), "slots"),
    (("spill: {queue: 4, kv_percent: 95}", "spill: {ttft_factor: 0.5}"), "ttft_factor"),
])
def test_a_malformed_pool_is_refused_with_its_line(change: tuple[str, str], reason: str) -> None:
    err = refuse(POOL.replace(*change))
    assert reason in err.reason and err.line >= 3


def test_requests_go_to_the_least_loaded_replica_and_spill_to_the_frontier_only_when_every_one_is_full() -> None:
    table = routing().routes["chat"]
    span = table.pools[0]
    board = PoolBoard(Metrics(), lambda: 0.0)
    body = {"messages": [{"role": "user", "content": "hi"}]}
    board.read(span, span.urls[0], Reading(running=9, waiting=0, kv=0.5), 0.0)
    board.read(span, span.urls[1], Reading(running=2, waiting=0, kv=0.2), 0.0)
    got = board.arrange(table, (0, 1, 2), body, 0.5)
    assert got.order[2] == 2 and got.spilled == ()
    board.read(span, span.urls[0], Reading(running=9, waiting=5, kv=0.5), 0.0)
    got = board.arrange(table, (0, 1, 2), body, 0.5)
    assert got.order == (1, 0, 2) and got.spilled == ()      # one replica is full: the other takes it
    board.read(span, span.urls[1], Reading(running=9, waiting=0, kv=0.96), 0.0)
    got = board.arrange(table, (0, 1, 2), body, 0.5)
    assert got.order[0] == 2 and got.spilled == (span,) and got.alone is None


def test_a_full_pool_with_no_other_target_standing_is_alone() -> None:
    table = routing().routes["chat"]
    span = table.pools[0]
    board = PoolBoard(Metrics(), lambda: 0.0)
    for url in span.urls:
        board.read(span, url, Reading(running=9, waiting=5, kv=0.5), 0.0)
    got = board.arrange(table, (0, 1), {"messages": []}, 0.5)   # the frontier was left out (ejected)
    assert got.alone is span and got.spilled == ()
