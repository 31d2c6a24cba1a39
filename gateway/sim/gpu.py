"""A GPU model server's capacity, as a pure model: what a local vLLM, SGLang, TGI or llama.cpp server
does with more requests than it can batch.

The model, in the terms the settings use:
  - **Batch**: at most `max_batch` requests run at once; the rest wait in a FIFO queue and start, in
    arrival order, as running ones finish. A request also needs room for its prompt and its longest
    answer in the KV cache (`kv_tokens`); the head of the queue waits until it fits, and the ones
    behind it wait too (first come, first served, as vLLM schedules by default). Beyond
    `max_waiting` queued requests a new one is refused at once (503; 429 on TGI, which calls it
    "Model is overloaded").
  - **Prefill**: the first token comes `prefill_ms_per_ktok` per 1,000 prompt tokens after a request
    starts running, counting only the tokens its prefix cache did not already hold.
  - **Decode**: each later token takes `decode_ms_per_token × (1 + slowdown × (running − 1) / max_batch)`:
    one request alone runs at the base speed, a full batch at (1 + slowdown × (max_batch−1)/max_batch)
    times it: batching raises throughput while every stream gets slower, as on a real GPU.
    A prefill does not stall the batch's decode here (vLLM's chunked prefill comes close to that).
  - **Speed**: every time above is divided by `speed` (0.5: a replica on a GPU half as fast).
  - **Prefix cache**: a prompt is a sequence of words (a role word, then the content's words, per
    message, as the sim counts prompt tokens; the tools' names and descriptions after the system
    messages), cut into chunks of `chunk_tokens`; each full chunk is
    named by a hash of itself and everything before it, so a chunk is reused only behind the same
    prefix (vLLM's block hashes). A least-recently-used set of `prefix_cache_entries` chunks holds
    what finished prefills computed. Queries and hits are counted in tokens, as vLLM counts them.
  - **KV usage**: the running requests' prompts and answers so far plus the waiting requests'
    prompts, over `kv_tokens` (at most 1): a saturated server shows a high usage.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from gateway.core.content import text_of

Server = Literal["vllm", "sglang", "tgi", "llamacpp", "ollama", "openai"]
SERVERS: tuple[Server, ...] = ("vllm", "sglang", "tgi", "llamacpp", "ollama", "openai")


@dataclass(frozen=True)
class GpuConfig:
    max_batch: int = 8
    max_waiting: int | None = None        # None: the queue is unbounded
    server: Server = "vllm"               # whose /metrics names and whose overload status
    prefill_ms_per_ktok: float = 20.0
    decode_ms_per_token: float = 10.0
    slowdown: float = 1.0
    kv_tokens: int = 200_000
    prefix_cache_entries: int = 256       # chunks of `chunk_tokens`
    chunk_tokens: int = 64
    speed: float = 1.0


def token_seconds(cfg: GpuConfig, running: int) -> float:
    """The time one decode step takes while `running` requests share the batch."""
    crowd = max(0, running - 1) / cfg.max_batch
    return cfg.decode_ms_per_token / 1000.0 * (1.0 + cfg.slowdown * crowd) / cfg.speed


def prefill_seconds(cfg: GpuConfig, uncached_tokens: int) -> float:
    return uncached_tokens / 1000.0 * cfg.prefill_ms_per_ktok / 1000.0 / cfg.speed


def refusal_status(cfg: GpuConfig) -> int:
    """What the server answers when its queue is full: TGI says 429, the others 503."""
    return 429 if cfg.server == "tgi" else 503


def capacity_per_s(cfg: GpuConfig, prompt_tokens: int, cached_tokens: int, answer_tokens: int) -> float:
    """Requests per second a saturated server completes, every request alike: a full batch, each
    request taking its prefill plus (answer − 1) decode steps at full-batch speed."""
    one = prefill_seconds(cfg, prompt_tokens - cached_tokens) \
        + max(0, answer_tokens - 1) * token_seconds(cfg, cfg.max_batch)
    return cfg.max_batch / one if one > 0 else float("inf")


def prompt_words(messages: Sequence[Any], tools: Sequence[Any] | None = None) -> list[str]:
    """The prompt as the sim tokenises it: per message, its role then its content's words; the tools'
    names and descriptions after the leading system messages, where chat templates render them."""
    words: list[str] = []
    pending = list(tools or ())
    for m in messages:
        if isinstance(m, dict):
            if pending and m.get("role") not in ("system", "developer"):
                words.extend(_tool_words(pending))
                pending = []
            words.append(f"<{m.get('role')}>")
            words.extend(text_of(m.get("content")).split())
    return words + _tool_words(pending)


def _tool_words(tools: Sequence[Any]) -> list[str]:
    words: list[str] = []
    for tool in tools:
        if isinstance(tool, dict):
            inner = tool.get("function")
            fn: dict[str, Any] = inner if isinstance(inner, dict) else tool
            words += ["<tool>", str(fn.get("name", ""))] + str(fn.get("description", "")).split()
    return words


def prefix_chunks(words: Sequence[str], chunk_tokens: int) -> tuple[str, ...]:
    """The names of the prompt's full chunks, each hashing its own words and every chunk before it."""
    names: list[str] = []
    previous = b""
    for start in range(0, len(words) - chunk_tokens + 1, chunk_tokens):
        digest = hashlib.blake2b(previous + "\x1f".join(words[start:start + chunk_tokens]).encode(),
                                 digest_size=12).digest()
        names.append(digest.hex())
        previous = digest
    return tuple(names)


class PrefixCache:
    """Least-recently-used chunks of computed prompt prefixes, at most `entries` of them."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._chunks: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, chunk: str) -> bool:
        return chunk in self._chunks

    def leading_hits(self, chunks: Sequence[str]) -> int:
        """How many chunks, from the first, are held (a chunk past a miss is useless: its hash names the miss)."""
        n = 0
        for chunk in chunks:
            if chunk not in self._chunks:
                break
            n += 1
        self._touch(chunks[:n])
        return n

    def store(self, chunks: Sequence[str]) -> None:
        self._touch(chunks)
        while len(self._chunks) > self.entries:
            self._chunks.popitem(last=False)

    def _touch(self, chunks: Iterable[str]) -> None:
        # Last chunk first, so a prompt's first chunk is its most recent and is evicted last: evicting
        # the head of a prefix would strand every chunk behind it (vLLM frees blocks tail first too).
        for chunk in reversed(list(chunks)):
            self._chunks[chunk] = None
            self._chunks.move_to_end(chunk)


class Admission(Enum):
    RUNNING = "running"
    WAITING = "waiting"
    REFUSED = "refused"


@dataclass
class Job:
    """One request on the server."""

    id: int
    prompt_tokens: int
    max_answer_tokens: int
    chunks: tuple[str, ...]
    arrived: float
    started: float | None = None
    cached_tokens: int = 0
    generated: int = 0

    @property
    def reserved_tokens(self) -> int:
        return self.prompt_tokens + self.max_answer_tokens


@dataclass(frozen=True)
class Load:
    """What the server's /metrics tells: its batch, its queue, its cache and its counters."""

    running: int
    waiting: int
    kv_usage: float                      # 0 … 1
    kv_used_tokens: int
    batch_reserved_tokens: int           # the running requests' prompts plus longest answers
    requests: int                        # arrived, refused ones included
    refused: int
    finished: int
    prompt_tokens: int                   # prefilled or found in the cache
    generation_tokens: int
    prefix_query_tokens: int
    prefix_hit_tokens: int
    queue_seconds: float                 # summed over the requests that started
    started: int
    queued: int = 0                      # arrived to a full batch and waited for a place


class GpuModel:
    """The batch, the queue and the prefix cache of one simulated GPU server. No I/O, no clock of its own."""

    def __init__(self, cfg: GpuConfig) -> None:
        self.cfg = cfg
        self.cache = PrefixCache(cfg.prefix_cache_entries)
        self.running: dict[int, Job] = {}
        self.waiting: deque[Job] = deque()
        self._next_id = 0
        self._requests = self._refused = self._finished = self._started = 0
        self._prompt = self._generated = self._queried = self._hit = 0
        self._queue_s = 0.0
        self._queued = 0

    def job(self, messages: Sequence[Any], max_answer_tokens: int, now: float,
            tools: Sequence[Any] | None = None) -> Job:
        words = prompt_words(messages, tools)
        self._next_id += 1
        return Job(self._next_id, len(words), max_answer_tokens, prefix_chunks(words, self.cfg.chunk_tokens), now)

    def arrive(self, job: Job, now: float) -> Admission:
        """Runs the job at once if the batch has room and nobody is waiting, else queues it, else refuses it."""
        self._requests += 1
        if not self.waiting and self._fits(job):
            self._start(job, now)
            return Admission.RUNNING
        if self.cfg.max_waiting is not None and len(self.waiting) >= self.cfg.max_waiting:
            self._refused += 1
            return Admission.REFUSED
        self.waiting.append(job)
        self._queued += 1
        return Admission.WAITING

    def prefilled(self, job: Job) -> None:
        """The job's prompt is computed: its chunks are now in the cache for whoever comes next."""
        self.cache.store(job.chunks)

    def token(self, job: Job) -> None:
        job.generated += 1
        self._generated += 1

    def leave(self, job: Job, now: float) -> list[Job]:
        """The job finished (or its caller left, perhaps while still waiting): the jobs that start now."""
        if self.running.pop(job.id, None) is not None:
            self._finished += 1
        elif job in self.waiting:
            self.waiting.remove(job)
        started: list[Job] = []
        while self.waiting and self._fits(self.waiting[0]):
            head = self.waiting.popleft()
            self._start(head, now)
            started.append(head)
        return started

    def uncached_tokens(self, job: Job) -> int:
        return job.prompt_tokens - job.cached_tokens

    def load(self) -> Load:
        used = sum(j.prompt_tokens + j.generated for j in self.running.values()) \
            + sum(j.prompt_tokens for j in self.waiting)
        return Load(running=len(self.running), waiting=len(self.waiting),
                    kv_usage=min(1.0, used / self.cfg.kv_tokens), kv_used_tokens=used,
                    batch_reserved_tokens=sum(j.reserved_tokens for j in self.running.values()),
                    requests=self._requests, refused=self._refused, finished=self._finished,
                    prompt_tokens=self._prompt, generation_tokens=self._generated,
                    prefix_query_tokens=self._queried, prefix_hit_tokens=self._hit,
                    queue_seconds=self._queue_s, started=self._started, queued=self._queued)

    def _fits(self, job: Job) -> bool:
        if len(self.running) >= self.cfg.max_batch:
            return False
        reserved = sum(j.reserved_tokens for j in self.running.values())
        return not self.running or reserved + job.reserved_tokens <= self.cfg.kv_tokens  # one always runs

    def _start(self, job: Job, now: float) -> None:
        job.started = now
        job.cached_tokens = self.cache.leading_hits(job.chunks) * self.cfg.chunk_tokens
        self.running[job.id] = job
        self._started += 1
        self._queue_s += now - job.arrived
        self._prompt += job.prompt_tokens
        self._queried += job.prompt_tokens
        self._hit += job.cached_tokens
