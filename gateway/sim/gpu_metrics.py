"""The load metrics each GPU model server exposes on `GET /metrics`, by their real names. Pure.

`DIALECTS` maps a server to the sample name it uses for each measure; a scraper reads the same
table. Names as the servers document them (vLLM's production metrics page, SGLang's production
metrics reference, TGI's metrics reference, llama.cpp's server README):

| measure            | kind    | vLLM                              | SGLang                          | TGI                            | llama.cpp                        |
| ------------------ | ------- | --------------------------------- | ------------------------------- | ------------------------------ | -------------------------------- |
| running            | gauge   | vllm:num_requests_running         | sglang:num_running_reqs         | tgi_batch_current_size         | llamacpp:requests_processing     |
| waiting            | gauge   | vllm:num_requests_waiting         | sglang:num_queue_reqs           | tgi_queue_size                 | llamacpp:requests_deferred       |
| kv_usage (0…1)     | gauge   | vllm:kv_cache_usage_perc          | sglang:token_usage              | –                              | llamacpp:kv_cache_usage_ratio    |
| kv_used_tokens     | gauge   | –                                 | sglang:num_used_tokens          | tgi_batch_current_max_tokens   | llamacpp:kv_cache_tokens         |
| prefix_queries     | counter | vllm:prefix_cache_queries_total   | sglang:prompt_tokens_total      | –                              | –                                |
| prefix_hits        | counter | vllm:prefix_cache_hits_total      | sglang:cached_tokens_total      | –                              | –                                |
| prompt_tokens      | counter | vllm:prompt_tokens_total          | sglang:prompt_tokens_total      | –                              | llamacpp:prompt_tokens_total     |
| generation_tokens  | counter | vllm:generation_tokens_total      | sglang:generation_tokens_total  | –                              | llamacpp:tokens_predicted_total  |
| requests           | counter | –                                 | sglang:num_requests_total       | tgi_request_count              | –                                |

Both prefix counters count prompt tokens (queried, found cached), as vLLM v1 and SGLang do; SGLang
also exports `sglang:cache_hit_rate`, a gauge, which the sim serves as hits over queries. vLLM
before v0.10 called the usage gauge `vllm:gpu_cache_usage_perc` (the sim serves it as well, so a
scraper can be tested on either spelling). TGI's `tgi_batch_current_max_tokens` is the tokens the
running batch reserved. Ollama and OpenAI serve no /metrics at all: 404.
"""

from __future__ import annotations

from typing import Final

from gateway.sim.gpu import Load

DIALECTS: Final[dict[str, dict[str, str]]] = {
    "vllm": {
        "running": "vllm:num_requests_running",
        "waiting": "vllm:num_requests_waiting",
        "kv_usage": "vllm:kv_cache_usage_perc",
        "prefix_queries": "vllm:prefix_cache_queries_total",
        "prefix_hits": "vllm:prefix_cache_hits_total",
        "prompt_tokens": "vllm:prompt_tokens_total",
        "generation_tokens": "vllm:generation_tokens_total",
    },
    "sglang": {
        "running": "sglang:num_running_reqs",
        "waiting": "sglang:num_queue_reqs",
        "kv_usage": "sglang:token_usage",
        "kv_used_tokens": "sglang:num_used_tokens",
        "prefix_queries": "sglang:prompt_tokens_total",
        "prefix_hits": "sglang:cached_tokens_total",
        "prompt_tokens": "sglang:prompt_tokens_total",
        "generation_tokens": "sglang:generation_tokens_total",
        "requests": "sglang:num_requests_total",
    },
    "tgi": {
        "running": "tgi_batch_current_size",
        "waiting": "tgi_queue_size",
        "kv_used_tokens": "tgi_batch_current_max_tokens",
        "requests": "tgi_request_count",
    },
    "llamacpp": {
        "running": "llamacpp:requests_processing",
        "waiting": "llamacpp:requests_deferred",
        "kv_usage": "llamacpp:kv_cache_usage_ratio",
        "kv_used_tokens": "llamacpp:kv_cache_tokens",
        "prompt_tokens": "llamacpp:prompt_tokens_total",
        "generation_tokens": "llamacpp:tokens_predicted_total",
    },
}

COUNTERS: Final = frozenset({"prefix_queries", "prefix_hits", "prompt_tokens", "generation_tokens", "requests"})

# Samples beside the table's that the real servers serve too.
_LEGACY_VLLM_USAGE = "vllm:gpu_cache_usage_perc"
_SGLANG_HIT_RATE = "sglang:cache_hit_rate"

_HELP: Final = {
    "running": "Requests in the running batch.",
    "waiting": "Requests waiting for a place in the batch.",
    "kv_usage": "KV-cache usage; 1 means 100 percent.",
    "kv_used_tokens": "KV-cache tokens in use.",
    "prefix_queries": "Prompt tokens looked up in the prefix cache.",
    "prefix_hits": "Prompt tokens found in the prefix cache.",
    "prompt_tokens": "Prompt tokens processed.",
    "generation_tokens": "Tokens generated.",
    "requests": "Requests received.",
}


def values(load: Load) -> dict[str, float]:
    """Each measure of the table from the server's load."""
    return {"running": load.running, "waiting": load.waiting, "kv_usage": load.kv_usage,
            "kv_used_tokens": load.kv_used_tokens,
            "prefix_queries": load.prefix_query_tokens, "prefix_hits": load.prefix_hit_tokens,
            "prompt_tokens": load.prompt_tokens, "generation_tokens": load.generation_tokens,
            "requests": load.requests}


def exposition(server: str, load: Load, model: str) -> str | None:
    """The text `GET /metrics` answers with, in Prometheus' exposition format; None: the server has none."""
    names = DIALECTS.get(server)
    if names is None:
        return None
    labels = f'{{model_name="{model}"}}' if server in ("vllm", "sglang") else ""
    measured = values(load)
    if server == "tgi":
        measured["kv_used_tokens"] = load.batch_reserved_tokens
    lines: list[str] = []
    seen: set[str] = set()
    for measure, name in names.items():
        if name in seen:
            continue  # SGLang's prompt counter stands for both the queries and the prompt tokens
        seen.add(name)
        counter = measure in COUNTERS
        family = name.removesuffix("_total") if counter else name
        lines += [f"# HELP {family} {_HELP[measure]}", f"# TYPE {family} {'counter' if counter else 'gauge'}",
                  f"{name}{labels} {_number(measured[measure])}"]
    if server == "vllm":
        lines += [f"# HELP {_LEGACY_VLLM_USAGE} {_HELP['kv_usage']}", f"# TYPE {_LEGACY_VLLM_USAGE} gauge",
                  f"{_LEGACY_VLLM_USAGE}{labels} {_number(load.kv_usage)}"]
    if server == "sglang":
        rate = load.prefix_hit_tokens / load.prefix_query_tokens if load.prefix_query_tokens else 0.0
        lines += [f"# HELP {_SGLANG_HIT_RATE} Prefix cache hit rate.", f"# TYPE {_SGLANG_HIT_RATE} gauge",
                  f"{_SGLANG_HIT_RATE}{labels} {_number(rate)}"]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return repr(float(value))
