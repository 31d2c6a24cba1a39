"""What each model server's /metrics says about its load, in its own dialect. Pure.

Names from each server's documentation:
  vLLM       vllm:num_requests_running, vllm:num_requests_waiting, vllm:kv_cache_usage_perc (a 0–1
             ratio; vllm:gpu_cache_usage_perc before v0.10)
  SGLang     sglang:num_running_reqs, sglang:num_queue_reqs, sglang:token_usage (share of the KV pool)
  TGI        tgi_batch_current_size, tgi_queue_size (no KV-cache figure)
  llama.cpp  llamacpp:requests_processing, llamacpp:requests_deferred, llamacpp:kv_cache_usage_ratio
Ollama and plain OpenAI-wire servers publish none: the gateway counts its own requests in flight.
A series with several label sets (one per model, or per data-parallel rank) is summed; KV use takes
the fullest.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Dialect:
    running: tuple[str, ...]
    waiting: tuple[str, ...]
    kv: tuple[str, ...]


DIALECTS: dict[str, Dialect] = {
    "vllm": Dialect(("vllm:num_requests_running",), ("vllm:num_requests_waiting",),
                    ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
    "sglang": Dialect(("sglang:num_running_reqs",), ("sglang:num_queue_reqs",), ("sglang:token_usage",)),
    "tgi": Dialect(("tgi_batch_current_size",), ("tgi_queue_size",), ()),
    "llamacpp": Dialect(("llamacpp:requests_processing",), ("llamacpp:requests_deferred",),
                        ("llamacpp:kv_cache_usage_ratio",)),
}


@dataclass(frozen=True, slots=True)
class Reading:
    running: float
    waiting: float
    kv: float | None


def scraped(server: str) -> bool:
    """Does this dialect publish load worth reading?"""
    return server in DIALECTS


def _value(line: str) -> float | None:
    # `name{labels} value [timestamp]`; label values may hold spaces, so look after the closing brace.
    brace = line.rfind("}")
    rest = line[brace + 1:] if brace >= 0 else line.split(None, 1)[1] if " " in line else ""
    parts = rest.split()
    if not parts:
        return None
    try:
        return float(parts[0])
    except ValueError:
        return None


def parse(text: str, server: str) -> Reading | None:
    """The load `text` (Prometheus exposition) reports in `server`'s dialect; None when it reports none."""
    dialect = DIALECTS.get(server)
    if dialect is None:
        return None
    running = waiting = 0.0
    kv: float | None = None
    found = False
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        end = len(line)
        for stop in ("{", " "):
            at = line.find(stop)
            if 0 <= at < end:
                end = at
        name = line[:end]
        if name in dialect.running or name in dialect.waiting or name in dialect.kv:
            value = _value(line)
            if value is None or value != value:  # NaN says nothing
                continue
            found = True
            if name in dialect.running:
                running += value
            elif name in dialect.waiting:
                waiting += value
            else:
                kv = value if kv is None else max(kv, value)
    return Reading(running, waiting, kv) if found else None


def metrics_url(base_url: str) -> str:
    """Where an OpenAI-wire server's /metrics is: beside its /v1 root, not under it."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[:-3]
    return root + "/metrics"
