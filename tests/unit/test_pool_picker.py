"""Pools: reading a server's load, picking a replica, spilling a full pool. Pure, no sockets."""

from __future__ import annotations

import zlib
from collections import Counter

import pytest

from gateway.policy.schema import Spill
from gateway.routing.affinity import affinity_key
from gateway.routing.picker import EndpointLoad, ahead, affinity_choice, past_threshold, pick, pool_full
from gateway.routing.pool_metrics import metrics_url, parse

VLLM = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="llama"} 7.0
vllm:num_requests_running{engine="1",model_name="llama"} 3.0
vllm:num_requests_waiting{engine="0",model_name="llama"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="llama"} 0.42
vllm:num_preemptions_total{model_name="llama"} 9.0
"""
SEEDS = [zlib.crc32(f"http://10.0.0.{i}:8000/v1".encode()) for i in range(4)]


def test_vllm_metrics_sum_running_and_waiting_across_engines_and_read_kv_use() -> None:
    r = parse(VLLM, "vllm")
    assert r is not None and (r.running, r.waiting, r.kv) == (10.0, 2.0, 0.42)


@pytest.mark.parametrize("server, text, expected", [
    ("sglang", 'sglang:num_running_reqs{model_name="m"} 4\nsglang:num_queue_reqs{model_name="m"} 1\n'
               'sglang:token_usage{model_name="m"} 0.9\n', (4.0, 1.0, 0.9)),
    ("tgi", "tgi_batch_current_size 5\ntgi_queue_size 6\n", (5.0, 6.0, None)),
    ("llamacpp", "llamacpp:requests_processing 2\nllamacpp:requests_deferred 3\n"
                 "llamacpp:kv_cache_usage_ratio 0.5\n", (2.0, 3.0, 0.5)),
    ("vllm", 'vllm:gpu_cache_usage_perc{model_name="a b"} 0.25 1712000000\nvllm:num_requests_running 1\n',
     (1.0, 0.0, 0.25)),
])
def test_each_dialect_reads_its_own_names(server: str, text: str, expected: tuple[float, float, float | None]) -> None:
    r = parse(text, server)
    assert r is not None and (r.running, r.waiting, r.kv) == expected


def test_a_page_without_the_dialects_names_and_servers_without_metrics_read_nothing() -> None:
    assert parse("process_cpu_seconds_total 3\n", "vllm") is None
    assert parse(VLLM, "ollama") is None
    assert parse(VLLM, "openai") is None


def test_metrics_sit_beside_the_v1_root() -> None:
    assert metrics_url("http://gpu1:8000/v1") == "http://gpu1:8000/metrics"
    assert metrics_url("http://gpu1:8000/") == "http://gpu1:8000/metrics"


def test_requests_ahead_count_the_reading_and_what_was_sent_since() -> None:
    load = EndpointLoad(running=4, waiting=2, read_at=10.0, sent=3, in_flight=3)
    assert ahead(load, 11.0, stale_s=3.0) == 9
    load.in_flight = 1      # two of the three have finished: the server has no more of them
    assert ahead(load, 11.0, stale_s=3.0) == 7


def test_a_stale_reading_leaves_only_the_gateways_own_in_flight_count() -> None:
    load = EndpointLoad(running=40, waiting=20, kv=0.99, read_at=10.0, sent=3, in_flight=2)
    assert ahead(load, 14.0, stale_s=3.0) == 2
    assert not past_threshold(load, Spill(kv_percent=90), 14.0, 3.0)


def test_the_least_loaded_endpoint_goes_first_without_affinity() -> None:
    assert pick([5.0, 1.0, 3.0], [None, None, None], SEEDS[:3], None, 1.25) == [1, 2, 0]


def test_a_key_keeps_its_endpoint_while_the_load_is_even() -> None:
    chosen = {pick([2.0, 2.0, 2.0, 2.0], [None] * 4, SEEDS, key, 1.25)[0] for key in [123] * 10}
    assert len(chosen) == 1


def test_keys_spread_over_the_pool() -> None:
    counts = Counter(affinity_choice(key, SEEDS, [0.0] * 4, 1.25) for key in range(2000))
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 350


def test_a_key_leaves_its_endpoint_once_past_the_bound_of_the_mean() -> None:
    key = 77
    home = affinity_choice(key, SEEDS, [0.0] * 4, 1.25)
    loads = [1.0] * 4
    loads[home] = 6.0   # mean with this request (10 + 1) / 4 × 1.25 → 4: home is past it
    moved = affinity_choice(key, SEEDS, loads, 1.25)
    assert moved != home
    assert affinity_choice(key, SEEDS, loads, 10.0) == home   # a loose bound keeps it


def test_spill_needs_every_endpoint_past_a_threshold() -> None:
    full = EndpointLoad(running=8, waiting=5, kv=0.5, read_at=0.0)
    hot = EndpointLoad(running=8, waiting=0, kv=0.97, read_at=0.0)
    easy = EndpointLoad(running=2, waiting=0, kv=0.3, read_at=0.0)
    spill = Spill(queue=4, kv_percent=95)
    assert pool_full([full, hot], spill, 0.5, 3.0)
    assert not pool_full([full, hot, easy], spill, 0.5, 3.0)
    assert not pool_full([full, hot], None, 0.5, 3.0)


def test_requests_sent_since_a_reading_count_as_queued_only_when_the_server_was_queueing() -> None:
    spill = Spill(queue=4)
    assert not past_threshold(EndpointLoad(running=8, waiting=0, sent=10, read_at=0.0), spill, 0.5, 3.0)
    assert past_threshold(EndpointLoad(running=8, waiting=1, sent=3, in_flight=3, read_at=0.0), spill, 0.5, 3.0)


def test_without_metrics_the_queue_is_the_gateways_own_in_flight_count() -> None:
    assert past_threshold(EndpointLoad(in_flight=4), Spill(queue=4), 0.0, 3.0)
    assert not past_threshold(EndpointLoad(in_flight=3), Spill(queue=4), 0.0, 3.0)


def test_turns_of_one_conversation_share_an_affinity_key() -> None:
    system = {"role": "system", "content": "You are a careful assistant."}
    first = {"role": "user", "content": "Plan a trip to Lisbon."}
    turn1 = {"messages": [system, first]}
    turn2 = {"messages": [system, first, {"role": "assistant", "content": "Sure."},
                          {"role": "user", "content": "Make it three days."}]}
    other = {"messages": [system, {"role": "user", "content": "Write a haiku."}]}
    assert affinity_key(turn1, {}) == affinity_key(turn2, {})
    assert affinity_key(turn1, {}) != affinity_key(other, {})


def test_a_prompt_cache_key_a_session_header_or_a_user_names_the_affinity() -> None:
    a = {"messages": [{"role": "user", "content": "a"}], "prompt_cache_key": "s1"}
    b = {"messages": [{"role": "user", "content": "b"}], "prompt_cache_key": "s1"}
    assert affinity_key(a, {}) == affinity_key(b, {})
    c = {"messages": [{"role": "user", "content": "c"}]}
    assert affinity_key(c, {"X-Session-Id": "42"}) == affinity_key(a | {"prompt_cache_key": None},
                                                                    {"x-session-id": "42"})
    assert affinity_key({"input": "x", "user": "u1"}, {}) == affinity_key({"input": "y", "user": "u1"}, {})


def test_requests_sent_since_a_reading_count_as_queued_once_they_overflow_the_batch_size_learnt() -> None:
    spill = Spill(queue=1)
    # An earlier reading showed a queue behind 8 running: the batch holds 8, so a ninth request waits.
    assert not past_threshold(EndpointLoad(running=7, waiting=0, sent=1, in_flight=1, batch=8, read_at=0.0),
                              spill, 0.5, 3.0)
    assert past_threshold(EndpointLoad(running=8, waiting=0, sent=1, in_flight=1, batch=8, read_at=0.0),
                          spill, 0.5, 3.0)


def test_an_endpoints_utilisation_is_its_fullest_measure() -> None:
    from gateway.routing.picker import utilisation

    assert utilisation(EndpointLoad(running=2, kv=0.1, batch=8, read_at=0.0), 0.5, 3.0) == 0.25
    assert utilisation(EndpointLoad(running=2, kv=0.6, batch=8, read_at=0.0), 0.5, 3.0) == 0.6
    assert utilisation(EndpointLoad(running=8, waiting=3, kv=0.2, read_at=0.0), 0.5, 3.0) == 1.0
    assert utilisation(EndpointLoad(running=8, kv=0.2, batch=8, read_at=0.0), 9.0, 3.0) == 0.0   # stale, idle
    assert utilisation(EndpointLoad(in_flight=1), 0.0, 3.0) == 1.0                             # no metrics, busy
