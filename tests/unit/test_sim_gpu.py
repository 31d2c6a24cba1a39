"""The simulated GPU server's model: batch, queue, decode speed, prefix cache, KV usage, /metrics names."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.sim.gpu import (Admission, GpuConfig, GpuModel, PrefixCache, capacity_per_s, prefill_seconds,
                             prefix_chunks, prompt_words, refusal_status, token_seconds)
from gateway.sim.gpu_metrics import DIALECTS, exposition


def chat(system: str, user: str = "hello there") -> list[dict[str, Any]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def test_decode_slows_as_the_batch_fills() -> None:
    cfg = GpuConfig(max_batch=8, decode_ms_per_token=10, slowdown=1.0)
    assert token_seconds(cfg, 1) == pytest.approx(0.010)
    assert token_seconds(cfg, 5) == pytest.approx(0.010 * (1 + 4 / 8))
    assert token_seconds(cfg, 8) == pytest.approx(0.010 * (1 + 7 / 8))


def test_a_half_speed_replica_takes_twice_as_long() -> None:
    full, half = GpuConfig(), GpuConfig(speed=0.5)
    assert token_seconds(half, 3) == pytest.approx(2 * token_seconds(full, 3))
    assert prefill_seconds(half, 1000) == pytest.approx(2 * prefill_seconds(full, 1000))


def test_prefill_is_proportional_to_the_prompt_tokens_not_cached() -> None:
    cfg = GpuConfig(prefill_ms_per_ktok=20)
    assert prefill_seconds(cfg, 2000) == pytest.approx(0.040)
    assert prefill_seconds(cfg, 0) == 0.0


def test_capacity_is_a_full_batch_over_one_request_time() -> None:
    cfg = GpuConfig(max_batch=8, prefill_ms_per_ktok=20, decode_ms_per_token=10, slowdown=1.0)
    one = 0.020 + 19 * 0.010 * (1 + 7 / 8)
    assert capacity_per_s(cfg, 1000, 0, 20) == pytest.approx(8 / one)


def test_requests_beyond_the_batch_wait_and_start_first_come_first_served() -> None:
    model = GpuModel(GpuConfig(max_batch=2))
    jobs = [model.job(chat(f"prompt {i}"), 10, now=0.0) for i in range(4)]
    assert [model.arrive(j, 0.0) for j in jobs] == [Admission.RUNNING, Admission.RUNNING,
                                                    Admission.WAITING, Admission.WAITING]
    assert [j.id for j in model.leave(jobs[1], now=1.5)] == [jobs[2].id]
    assert [j.id for j in model.leave(jobs[0], now=2.0)] == [jobs[3].id]
    load = model.load()
    assert (load.running, load.waiting, load.finished) == (2, 0, 2)
    assert load.queue_seconds == pytest.approx(1.5 + 2.0)   # the injected times, not a clock's


def test_a_full_queue_refuses_with_the_servers_own_status() -> None:
    model = GpuModel(GpuConfig(max_batch=1, max_waiting=1))
    outcomes = [model.arrive(model.job(chat("p"), 5, 0.0), 0.0) for _ in range(3)]
    assert outcomes == [Admission.RUNNING, Admission.WAITING, Admission.REFUSED]
    assert model.load().refused == 1 and model.load().requests == 3
    assert refusal_status(GpuConfig(server="tgi")) == 429
    assert {refusal_status(GpuConfig(server=s)) for s in ("vllm", "sglang", "llamacpp")} == {503}


def test_a_caller_gone_while_waiting_gives_up_its_place_without_running() -> None:
    model = GpuModel(GpuConfig(max_batch=1))
    first, gone, third = (model.job(chat("p"), 5, 0.0) for _ in range(3))
    for j in (first, gone, third):
        model.arrive(j, 0.0)
    assert model.leave(gone, now=1.0) == [] and model.load().waiting == 1
    assert model.leave(first, now=2.0) == [third]
    assert model.load().finished == 1   # the one that left while waiting never ran


def test_a_request_waits_for_room_in_the_kv_cache_even_with_batch_room() -> None:
    model = GpuModel(GpuConfig(max_batch=8, kv_tokens=100))
    big, small = model.job(chat(words(60)), 10, 0.0), model.job(chat(words(30)), 10, 0.0)
    assert model.arrive(big, 0.0) is Admission.RUNNING
    assert model.arrive(small, 0.0) is Admission.WAITING   # 64 + 10 reserved, 34 + 10 more would pass 100
    assert model.leave(big, 1.0) == [small]


def test_kv_usage_counts_running_and_waiting_tokens_and_stops_at_one() -> None:
    model = GpuModel(GpuConfig(max_batch=1, kv_tokens=1000))
    running, waiting = model.job(chat(words(98), ""), 10, 0.0), model.job(chat(words(298), ""), 10, 0.0)
    model.arrive(running, 0.0)
    model.arrive(waiting, 0.0)
    model.token(running)
    assert model.load().kv_usage == pytest.approx((100 + 1 + 300) / 1000)   # two role words per prompt
    crowded = GpuModel(GpuConfig(max_batch=1, kv_tokens=100))
    for _ in range(3):
        crowded.arrive(crowded.job(chat(words(98)), 10, 0.0), 0.0)
    assert crowded.load().kv_usage == 1.0


def test_prompt_words_are_a_role_word_then_the_content_per_message() -> None:
    assert prompt_words(chat("be brief", "hi")) == ["<system>", "be", "brief", "<user>", "hi"]


def test_a_chunk_is_named_by_everything_before_it() -> None:
    a = prefix_chunks(prompt_words(chat(words(130, "a"))), 64)
    b = prefix_chunks(prompt_words(chat(words(130, "b"))), 64)
    assert len(a) == 2                       # 133 words: two full chunks, the rest never cached
    assert a[1] != b[1] and a[0] != b[0]     # chunk 2 differs because chunk 1 does, though its words may not


def test_a_repeated_system_prompt_skips_its_cached_chunks_and_counts_a_hit() -> None:
    model = GpuModel(GpuConfig(max_batch=4, chunk_tokens=64))
    system = words(200)
    first = model.job(chat(system, "question one"), 10, 0.0)
    model.arrive(first, 0.0)
    assert first.cached_tokens == 0 and model.uncached_tokens(first) == first.prompt_tokens
    model.prefilled(first)
    again = model.job(chat(system, "question two"), 10, 0.0)
    model.arrive(again, 0.0)
    assert again.cached_tokens == 192        # three full chunks of the 201 system words
    load = model.load()
    assert load.prefix_hit_tokens == 192 and load.prefix_query_tokens == first.prompt_tokens + again.prompt_tokens


def test_another_system_prompt_misses() -> None:
    model = GpuModel(GpuConfig(chunk_tokens=64))
    first = model.job(chat(words(200, "a")), 10, 0.0)
    model.arrive(first, 0.0)
    model.prefilled(first)
    other = model.job(chat(words(200, "b")), 10, 0.0)
    model.arrive(other, 0.0)
    assert other.cached_tokens == 0


def test_the_cache_forgets_the_least_recently_used_prompt_first() -> None:
    cache = PrefixCache(entries=4)
    a, b, c = (prefix_chunks(prompt_words(chat(words(130, t))), 64) for t in "abc")
    cache.store(a)
    cache.store(b)
    assert cache.leading_hits(a) == 2        # a used again: b is now the oldest
    cache.store(c)
    assert (cache.leading_hits(a), cache.leading_hits(b), cache.leading_hits(c)) == (2, 0, 2)


def test_eviction_takes_a_prompts_tail_before_its_head() -> None:
    cache = PrefixCache(entries=3)
    a, b = (prefix_chunks(prompt_words(chat(words(130, t))), 64) for t in "ab")
    cache.store(a)
    cache.store(b)                            # one of a's chunks must go: its last, not its first
    assert a[0] in cache and a[1] not in cache and cache.leading_hits(a) == 1


def test_vllm_metrics_carry_the_real_names_and_the_model_label() -> None:
    model = GpuModel(GpuConfig(max_batch=1, server="vllm", kv_tokens=1000))
    for _ in range(2):
        model.arrive(model.job(chat(words(98), ""), 10, 0.0), 0.0)   # 100 tokens each
    text = exposition("vllm", model.load(), "llama-3")
    assert text is not None
    assert 'vllm:num_requests_running{model_name="llama-3"} 1.0' in text
    assert 'vllm:num_requests_waiting{model_name="llama-3"} 1.0' in text
    assert 'vllm:kv_cache_usage_perc{model_name="llama-3"} 0.2\n' in text
    assert 'vllm:gpu_cache_usage_perc{model_name="llama-3"} 0.2\n' in text
    assert "# TYPE vllm:prefix_cache_hits counter" in text and "vllm:prefix_cache_hits_total{" in text


@pytest.mark.parametrize("server", ["sglang", "tgi", "llamacpp"])
def test_each_server_names_its_running_and_waiting_gauges_its_own_way(server: str) -> None:
    model = GpuModel(GpuConfig(max_batch=1))
    for _ in range(3):
        model.arrive(model.job(chat("p"), 10, 0.0), 0.0)
    text = exposition(server, model.load(), "m")
    assert text is not None
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    labels = '{model_name="m"}' if server == "sglang" else ""
    assert samples[DIALECTS[server]["running"] + labels] == "1.0"
    assert samples[DIALECTS[server]["waiting"] + labels] == "2.0"


def test_sglang_reports_its_hit_rate_gauge_as_hits_over_queries() -> None:
    model = GpuModel(GpuConfig(chunk_tokens=64))
    for _ in range(2):
        job = model.job(chat(words(126), ""), 10, 0.0)   # 128 tokens: two full chunks
        model.arrive(job, 0.0)
        model.prefilled(job)
    text = exposition("sglang", model.load(), "m")
    assert text is not None and 'sglang:cache_hit_rate{model_name="m"} 0.5\n' in text   # 128 of 2 × 128


@pytest.mark.parametrize("server", ["ollama", "openai"])
def test_servers_without_metrics_have_no_exposition(server: str) -> None:
    assert exposition(server, GpuModel(GpuConfig()).load(), "m") is None
