"""Pools: reading a server's load, picking a replica, spilling a full pool. Pure, no sockets."""

from __future__ import annotations

import pytest

from gateway.policy.pools import Spill
from gateway.routing.picker import EndpointLoad, ahead, past_threshold, pick, pool_full
from gateway.routing.pool_metrics import metrics_url, parse

VLLM = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="llama"} 7.0
vllm:num_requests_running{engine="1",model_name="llama"} 3.0
vllm:num_requests_waiting{engine="0",model_name="llama"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="llama"} 0.42
vllm:num_preemptions_total{model_name="llama"} 9.0
"""


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
    load.sent, load.in_flight = 1, 1    # two of the three have finished: the server has no more of them
    assert ahead(load, 11.0, stale_s=3.0) == 7


def test_a_stale_reading_leaves_only_the_gateways_own_in_flight_count() -> None:
    load = EndpointLoad(running=40, waiting=20, kv=0.99, read_at=10.0, sent=3, in_flight=2)
    assert ahead(load, 14.0, stale_s=3.0) == 2
    assert not past_threshold(load, Spill(kv_percent=90), 14.0, 3.0)


def test_the_least_loaded_endpoint_goes_first_without_prefix_matches() -> None:
    assert pick([5.0, 1.0, 3.0], [None, None, None], [0.0] * 3, [0.0] * 3, None, 1.25) == [1, 2, 0]
    assert pick([5.0, 1.0, 3.0], [None, None, None], [0.0] * 3, [0.0] * 3, [0, 0, 0], 1.25) == [1, 2, 0]


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
