"""A local GPU pool behind the gateway: four simulated replicas (one at half speed) balanced three ways.

    python tests/perf/pool_bench.py [--quick] [--seconds S] [--client-timeout S] [--modes a,b] [--write-docs]

The replicas are `gateway.sim` GPU servers (gateway/sim/gpu.py: a batch of 8, a FIFO queue behind
it, decode slower as the batch fills, a prefix cache, vLLM's /metrics), all four in one process on
core 1 with a "cloud" simulator (no capacity limit, 250 ms to its first token, frontier prices); the
gateway gets core 0; this process sends the load. Prints numbers; asserts none.

The traffic: 20 recurring system prompts (600 words each), 10 conversations on each, each request
the next turn of a random conversation (a conversation restarts after 4 turns), streamed, 20 tokens
answered. Open loop at 0.5×, 1×, 1.5× and 2× the pool's capacity, where capacity is what the four
replicas complete per second with full batches (`gateway.sim.gpu.capacity_per_s`: a batch of 8 over
one request's time, its prefill at the best possible prefix-cache hit rate plus 19 decode steps at
full-batch speed), summed over the replicas, the half-speed one counting half.

Modes:
  - **weighted targets**: the four replicas as four plain targets of equal weight (the planner's
    weighted random order, the faster of two first), the cloud target after them;
  - **least in-flight**: one pool of four endpoints, no /metrics read, no affinity (the gateway's
    own requests in flight decide), the cloud target after it;
  - **pool picker**: the pool reading each replica's vLLM /metrics every 250 ms, prefix affinity
    with bounded load, spilling to the cloud target when every replica has 2 or more waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from loadgen import percentile  # noqa: E402
from procs import Proc  # noqa: E402
from report import machine, render, replace_block  # noqa: E402

from gateway.sim.gpu import GpuConfig, PrefixCache, capacity_per_s, prefix_chunks, prompt_words  # noqa: E402

SIMS_CORE, GATEWAY_CORE = "1", "0"
MODES = ("weighted targets", "least in-flight", "pool picker")
LOADS = (0.5, 1.0, 1.5, 2.0)
SPEEDS = (1.0, 1.0, 1.0, 0.5)
REPLY_TOKENS = 20
REPLICA = GpuConfig(max_batch=8, server="vllm", prefill_ms_per_ktok=150.0, decode_ms_per_token=25.0,
                    slowdown=1.0, kv_tokens=200_000, prefix_cache_entries=700, chunk_tokens=32)
SYSTEM_PROMPTS, CONVERSATIONS_EACH, TURNS = 20, 10, 4
SYSTEM_WORDS, QUESTION_WORDS = 600, 25
WARM_S = 1.0          # about one request's time at full batch: throughput counts answers after it
LOCAL_PRICE = "{gpu_hour_usd: 2.0, tokens_per_second: 5000}"
CLOUD_PRICE = "{input_usd_per_mtok: 2.5, output_usd_per_mtok: 10.0, cached_input_usd_per_mtok: 1.25}"


# --- the simulators' process -------------------------------------------------------------------

async def serve_sims(ports: list[int], cloud_port: int) -> None:
    from dataclasses import replace

    from gateway.sim import SimConfig, SimServer

    servers = [SimServer(SimConfig(name=f"replica{i + 1}", reply_tokens=REPLY_TOKENS, models=("llama",),
                                   gpu=replace(REPLICA), speed=speed), port=port)
               for i, (port, speed) in enumerate(zip(ports, SPEEDS, strict=True))]
    servers.append(SimServer(SimConfig(name="cloud", reply_tokens=REPLY_TOKENS, first_token_delay_s=0.25,
                                       chunk_delay_s=0.01), port=cloud_port))
    for s in servers:
        await s.start()
    print("sims ready", flush=True)
    await asyncio.Event().wait()


# --- the traffic ---------------------------------------------------------------------------------

@dataclass
class Conversation:
    system: str
    opener: str
    turns: list[dict[str, str]] = field(default_factory=list)


class Workload:
    """Seeded: every mode meets the same requests in the same order."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.started = 0
        self.systems = [" ".join(f"s{p}w{w}" for w in range(SYSTEM_WORDS)) for p in range(SYSTEM_PROMPTS)]
        self.conversations = [self._new(p) for p in range(SYSTEM_PROMPTS) for _ in range(CONVERSATIONS_EACH)]

    def _new(self, p: int) -> Conversation:
        self.started += 1
        return Conversation(self.systems[p], " ".join(f"q{self.started}w{w}" for w in range(QUESTION_WORDS)))

    def next(self) -> dict[str, Any]:
        i = self.rng.randrange(len(self.conversations))
        c = self.conversations[i]
        if len(c.turns) >= 2 * (TURNS - 1):
            c = self.conversations[i] = self._new(self.systems.index(c.system))
        n = len(c.turns) // 2
        question = c.opener if n == 0 else " ".join(f"t{n}a{w}" for w in range(QUESTION_WORDS))
        messages = [{"role": "system", "content": c.system}, *c.turns, {"role": "user", "content": question}]
        c.turns += [{"role": "user", "content": question},
                    {"role": "assistant", "content": " ".join(f"r{n}w{w}" for w in range(REPLY_TOKENS))}]
        return {"model": "chat", "stream": True, "stream_options": {"include_usage": True}, "messages": messages}


def best_hits(cache: PrefixCache, messages: list[dict[str, Any]]) -> tuple[int, int]:
    """(tokens found, tokens queried) for one request in a single cache that never forgets."""
    chunks = prefix_chunks(prompt_words(messages), REPLICA.chunk_tokens)
    hit = cache.leading_hits(chunks) * REPLICA.chunk_tokens
    cache.store(chunks)
    return hit, len(prompt_words(messages))


def pool_capacity(hit_rate: float, prompt_tokens: float) -> float:
    """Requests per second the four replicas complete with full batches (see the module's docstring)."""
    cached = int(hit_rate * prompt_tokens)
    return sum(capacity_per_s(GpuConfig(**{**REPLICA.__dict__, "speed": s}), int(prompt_tokens), cached,
                              REPLY_TOKENS) for s in SPEEDS)


# --- one phase of load ---------------------------------------------------------------------------

@dataclass(slots=True)
class Outcome:
    sent_at: float
    status: int
    ttft_s: float | None
    done_at: float
    provider: str


async def one(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Outcome:
    started = time.perf_counter()
    first: float | None = None
    try:
        async with session.post(url, json=body) as resp:
            provider = resp.headers.get("x-recloser-provider", "")
            ended = False
            async for line in resp.content:
                if first is None and b'"content":"' in line and b'"content":""' not in line:
                    first = time.perf_counter()
                if line.startswith(b"data: [DONE]"):
                    ended = True
            status = resp.status if ended or resp.status != 200 else 0   # a stream cut short is an error
    except (aiohttp.ClientError, asyncio.TimeoutError):
        status, provider = 0, ""
    return Outcome(started, status, None if first is None else first - started, time.perf_counter(), provider)


async def open_loop(session: aiohttp.ClientSession, url: str, work: Workload, rate: float, seconds: float,
                    sent: list[dict[str, Any]]) -> list[Outcome]:
    n = max(1, int(rate * seconds))
    tasks = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = work.next()
        sent.append(body)
        tasks.append(asyncio.ensure_future(one(session, url, body)))
    return list(await asyncio.gather(*tasks))


async def closed_loop(session: aiohttp.ClientSession, url: str, work: Workload, seconds: float,
                      sent: list[dict[str, Any]]) -> list[Outcome]:
    out: list[Outcome] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        body = work.next()
        sent.append(body)
        out.append(await one(session, url, body))
    return out


async def sim_counters(session: aiohttp.ClientSession, ports: list[int]) -> tuple[int, int]:
    """(prefix-cache hit tokens, queried tokens) summed over the replicas."""
    hits = queried = 0
    for port in ports:
        async with session.get(f"http://127.0.0.1:{port}/_sim/stats") as resp:
            gpu = (await resp.json())["gpu"]
        hits, queried = hits + gpu["prefix_hit_tokens"], queried + gpu["prefix_query_tokens"]
    return hits, queried


async def gateway_cost(session: aiohttp.ClientSession, port: int) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("recloser_cost_usd_total"))


@dataclass
class Row:
    mode: str
    load: str
    offered_rps: float
    outcomes: list[Outcome]
    hit_rate: float
    best_rate: float
    cost_usd: float
    capacity: float

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]

    def cells(self) -> list[str]:
        ok = self.ok()
        ttfts = [o.ttft_s for o in ok if o.ttft_s is not None]
        # Throughput in the steady part of the phase: answers that ended after the first answers of
        # the phase could have (one request's time) and before the last request was sent.
        start = min(o.sent_at for o in self.outcomes)
        window = (start + WARM_S, max(o.sent_at for o in self.outcomes))
        steady = [o for o in ok if window[0] <= o.done_at <= window[1]]
        span = window[1] - window[0]
        local = [o for o in steady if o.provider != "cloud"]
        spilled = sum(1 for o in ok if o.provider == "cloud")
        share = spilled / len(ok) if ok else float("nan")
        per_k = 1000 * self.cost_usd / len(ok) if ok else float("nan")
        return [self.mode, self.load, f"{self.offered_rps:.1f}", f"{percentile(ttfts, 50) * 1000:.0f}",
                f"{percentile(ttfts, 99) * 1000:.0f}", f"{len(steady) / span:.1f}",
                f"{len(local) / span / self.capacity:.0%}", f"{share:.0%}",
                f"{self.hit_rate:.0%} / {self.best_rate:.0%}", f"{per_k:.3f}",
                str(len(self.outcomes) - len(ok))]


HEADER = ["mode", "load", "offered/s", "TTFT p50 ms", "TTFT p99 ms", "completed/s", "pool / capacity",
          "spilled", "prefix hits / best", "USD per 1k", "errors"]


# --- the policies --------------------------------------------------------------------------------

def policy(mode: str, ports: list[int], cloud_port: int) -> str:
    cloud = (f"  cloud: {{kind: openai, base_url: \"http://127.0.0.1:{cloud_port}/v1\", api_key: sk-cloud, "
             f"models: {{gpt-4o: {CLOUD_PRICE}}}}}\n")
    fallback = "{provider: cloud, model: gpt-4o}"
    urls = ", ".join(f"\"http://127.0.0.1:{p}/v1\"" for p in ports)
    if mode == "weighted targets":
        providers = "".join(f"  replica{i + 1}: {{kind: openai, base_url: \"http://127.0.0.1:{p}/v1\", "
                            f"api_key: sk-local, models: {{llama: {LOCAL_PRICE}}}}}\n" for i, p in enumerate(ports))
        targets = ", ".join(f"{{provider: replica{i + 1}, model: llama, weight: 1, priority: 0}}"
                            for i in range(len(ports)))
        return (f"version: 1\nproviders:\n{providers}{cloud}routes:\n"
                f"  chat: {{targets: [{targets}, {{provider: cloud, model: gpt-4o, priority: 1}}]}}\n")
    load = ("{affinity: none}" if mode == "least in-flight"
            else "{scrape_s: 0.25, affinity: prefix, spill: {queue: 2}}")
    server = "openai" if mode == "least in-flight" else "vllm"
    return (f"version: 1\nproviders:\n  local: {{kind: openai, endpoints: [{urls}], server: {server}, "
            f"api_key: sk-local, load: {load}, models: {{llama: {LOCAL_PRICE}}}}}\n{cloud}routes:\n"
            f"  chat: {{targets: [{{provider: local, model: llama}}, {fallback}]}}\n")


# --- a run ---------------------------------------------------------------------------------------

def free_ports(n: int) -> list[int]:
    import socket

    out, held = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
        out.append(int(s.getsockname()[1]))
    for s in held:
        s.close()
    return out


def run_mode(mode: str, work_dir: Path, seconds: float, unloaded_s: float, capacity: float,
             client_timeout_s: float) -> tuple[list[Row], tuple[float, float]]:
    *ports, cloud_port, gw_port = free_ports(6)
    sims = Proc("sims", [sys.executable, str(Path(__file__)), "--serve-sims", ",".join(map(str, ports)),
                         str(cloud_port)], SIMS_CORE, env={"PYTHONPATH": str(ROOT)}, log=work_dir / "sims.log")
    path = work_dir / f"{mode.replace(' ', '-')}.yaml"
    path.write_text(policy(mode, ports, cloud_port))
    gateway = Proc("recloser", [sys.executable, "-m", "gateway", "serve", "--policy", str(path), "--port",
                                str(gw_port)], GATEWAY_CORE, env={"PYTHONPATH": str(ROOT)},
                   log=work_dir / f"gateway-{mode.replace(' ', '-')}.log")
    sims.start()
    try:
        sims.wait_ready(f"http://127.0.0.1:{cloud_port}/_sim/stats")
        gateway.start()
        gateway.wait_ready(f"http://127.0.0.1:{gw_port}/readyz")
        return asyncio.run(_drive(mode, ports, gw_port, seconds, unloaded_s, capacity, client_timeout_s))
    finally:
        gateway.stop()
        sims.stop()


async def _drive(mode: str, ports: list[int], gw_port: int, seconds: float, unloaded_s: float,
                 capacity: float, client_timeout_s: float) -> tuple[list[Row], tuple[float, float]]:
    url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    work = Workload()
    best = PrefixCache(entries=10**9)
    rows: list[Row] = []
    timeout = aiohttp.ClientTimeout(total=client_timeout_s)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout,
                                     headers={"Authorization": "Bearer sk-bench"}) as session:
        sent: list[dict[str, Any]] = []
        # Warm-up at half capacity (the caches fill), then one request at a time: the unloaded TTFT.
        await open_loop(session, url, work, 0.5 * capacity, unloaded_s, sent)
        idle = await closed_loop(session, url, work, unloaded_s, sent)
        for body in sent:
            best_hits(best, body["messages"])
        ttfts = [o.ttft_s for o in idle if o.status == 200 and o.ttft_s is not None]
        unloaded = (percentile(ttfts, 50), percentile(ttfts, 99))
        for factor in LOADS:
            sent = []
            hits0, queried0 = await sim_counters(session, ports)
            cost0 = await gateway_cost(session, gw_port)
            outcomes = await open_loop(session, url, work, factor * capacity, seconds, sent)
            hits1, queried1 = await sim_counters(session, ports)
            cost1 = await gateway_cost(session, gw_port)
            found = asked = 0
            for body, o in zip(sent, outcomes, strict=True):
                if o.status == 200 and o.provider != "cloud":
                    h, q = best_hits(best, body["messages"])
                    found, asked = found + h, asked + q
            rows.append(Row(mode, f"{factor:g}×", factor * capacity, outcomes,
                            (hits1 - hits0) / (queried1 - queried0) if queried1 > queried0 else float("nan"),
                            found / asked if asked else float("nan"), cost1 - cost0, capacity))
            print(" | ".join(rows[-1].cells()), flush=True)
    return rows, unloaded


def estimate() -> tuple[float, float, float]:
    """(capacity, best hit rate, mean prompt tokens) of the traffic, from the model and a dry run of it."""
    work, cache = Workload(), PrefixCache(entries=10**9)
    found = asked = 0
    for _ in range(2000):
        h, q = best_hits(cache, work.next()["messages"])
        found, asked = found + h, asked + q
    rate, mean_prompt = found / asked, asked / 2000
    return pool_capacity(rate, mean_prompt), rate, mean_prompt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2.5 s phases: a smoke run")
    p.add_argument("--write-docs", action="store_true", help="write the table into docs/performance.md")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--seconds", type=float, default=6.0, help="each load's phase (default 6)")
    p.add_argument("--client-timeout", type=float, default=15.0,
                   help="a client gives up after this long (an error); bounds an overloaded phase's drain")
    p.add_argument("--serve-sims", default=None, help=argparse.SUPPRESS)
    p.add_argument("cloud_port", nargs="?", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_sims is not None:
        asyncio.run(serve_sims([int(x) for x in args.serve_sims.split(",")], args.cloud_port))
        return
    seconds, unloaded_s = (2.5, 1.0) if args.quick else (args.seconds, 4.0)
    capacity, best_rate, mean_prompt = estimate()
    print(f"capacity ≈ {capacity:.1f} requests/s (mean prompt {mean_prompt:.0f} tokens, best prefix hit rate "
          f"{best_rate:.0%})", flush=True)
    print(" | ".join(HEADER), flush=True)
    rows: list[Row] = []
    unloaded: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pool-bench-") as tmp:
        for mode in args.modes.split(","):
            mode_rows, unloaded[mode] = run_mode(mode, Path(tmp), seconds, unloaded_s, capacity,
                                                 args.client_timeout)
            rows += mode_rows
    table = render([HEADER] + [r.cells() for r in rows])
    idle = render([["mode", "unloaded TTFT p50 ms", "unloaded TTFT p99 ms"]]
                  + [[m, f"{a * 1000:.0f}", f"{b * 1000:.0f}"] for m, (a, b) in unloaded.items()])
    print("\n" + table + "\n\n" + idle)
    if args.write_docs:
        body = (f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}; capacity ≈ {capacity:.1f} requests/s "
                f"(mean prompt {mean_prompt:.0f} tokens, best prefix hit rate {best_rate:.0%}).\n\n"
                f"{table}\n\n{idle}\n")
        replace_block(ROOT / "docs" / "performance.md", "pool-bench", body)


if __name__ == "__main__":
    main()
