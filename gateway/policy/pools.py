"""Policy keys for a pool of replicas (a provider's `server:` dialect and `load:`): how its endpoints are read
and balanced, when it sends work on to the route's next target, and the priorities its waiting line keeps."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from gateway.policy.closed import Closed

Priority = Literal["critical", "standard", "sheddable"]
ServerDialect = Literal["vllm", "sglang", "tgi", "llamacpp", "ollama", "openai"]


class Spill(Closed):
    """When a pool sends a request on to the route's next target: its least expected wait is longer than
    that target's expected time to first token plus `margin_s`, than `max_wait_s`, or than what keeps
    its first token within `ttft_factor` × the pool's own unqueued one (these with `wait`), or every
    endpoint is past a hard threshold (`queue`, `kv_percent`)."""

    queue: Annotated[int, Field(ge=0, le=100_000)] | None = None       # requests waiting at an endpoint
    kv_percent: Annotated[float, Field(gt=0, le=100)] | None = None    # KV-cache use at an endpoint
    wait: bool = True                                                   # spill by expected wait
    margin_s: Annotated[float, Field(ge=0, le=600)] = 0.2              # the pool's edge over the next target
    max_wait_s: Annotated[float, Field(ge=0, le=600)] | None = None    # … and the longest wait in any case
    # The pool's first-token objective: a request waits there at most (ttft_factor − 1) × the pool's time
    # to first token when nothing queues (measured), so its own stays within ttft_factor × that. None: off.
    ttft_factor: Annotated[float, Field(ge=1, le=100)] | None = 2.0

    @model_validator(mode="after")
    def one_threshold(self) -> Spill:
        if self.queue is None and self.kv_percent is None and not self.wait:
            raise ValueError("give queue, kv_percent or wait: true")
        return self


class PoolLoad(Closed):
    """How a pool of replicas is read and balanced (gateway/routing/picker.py)."""

    scrape_s: Annotated[float, Field(ge=0.05, le=3600)] = 1.0   # each endpoint's /metrics this often
    affinity: Literal["prefix", "none"] = "prefix"                # requests sharing a prefix share a replica …
    bound: Annotated[float, Field(ge=1, le=10)] = 1.25          # … while its load stays within this × the mean
    # Requests each endpoint runs at once (vLLM's max_num_seqs); unset: a sim's batch, else learnt from
    # readings that show a queue.
    slots: Annotated[int, Field(ge=1, le=100_000)] | None = None
    # Prompt tokens each endpoint's prefix cache holds: bounds the gateway's picture of what it holds.
    # Unset: a sim's prefix cache, else 200,000.
    cache_tokens: Annotated[int, Field(ge=64, le=100_000_000)] | None = None
    spill: Spill | None = None                                  # absent: the pool never sends work on
    # The most requests that wait in the gateway for a full pool that is the last target standing.
    queue_max: Annotated[int, Field(ge=0, le=100_000)] = 256
