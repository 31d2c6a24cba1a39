"""A local GPU pool behind the gateway: three simulated replicas (one at a quarter speed), agent traffic.

    python tests/perf/pool_bench.py [--quick] [--seconds S] [--unloaded-seconds S] [--client-timeout S] [--modes a,b]
                                    [--previous-root DIR] [--write-docs]

The replicas are `gateway.sim` GPU servers (gateway/sim/gpu.py: 4 places in the batch, a FIFO queue
behind it, prefill 20 ms per 1,000 uncached prompt tokens, 16 ms a token, a prefix cache of 32,000
tokens, vLLM's /metrics): two take about 150 ms a request, one four times that; about 60 requests/s
together. All three run in one process on core 1 with a "cloud" simulator (no capacity limit, 250 ms
to its first token, frontier prices); the gateway gets core 0; this process sends the load.

The traffic (gateway/sim/workload.py): coding-agent sessions of two agents, each opening with its
agent's 1,200-word system prompt and 12 tools, growing by a tool call and a 120-word result per
turn (8 turns, then a new session; 24 open at once), beside short chats (30 %: a small system
prompt and one question). Streamed, 10 tokens answered. Open loop at ⅓×, 1× and 2× the pool's
capacity, where capacity is what the replicas complete per second with full batches
(`gateway.sim.gpu.capacity_per_s`, at the best possible prefix-cache hit rate).

Modes:
  - **least in-flight**: the pool with no /metrics read and no prefix (the gateway's own requests in
    flight decide), never spilling;
  - **previous picker**: the gateway at `--previous-root` (a checkout of the previous pass): /metrics
    every 250 ms, a hashed affinity key with bounded load, spill when every replica has 2 waiting;
  - **pool picker**: /metrics every 250 ms, the longest prefix each replica holds, spill by expected
    wait against the cloud's first token plus 0.1 s and the pool's first-token objective (the default
    `spill.ttft_factor: 2`: a wait of at most the pool's own unqueued time to first token);
  - **pool picker without objective**: the same with `ttft_factor: null` (it queues up to the cloud's
    first token plus 0.1 s);
  - **weighted targets** (only when asked for): the replicas as three plain targets of equal weight.

Reports per mode and load (tests/perf/pool_report.py): TTFT p50/p99 of every answer and of those the
pool served, throughput, the pool's completions against its capacity, its places in use (running ÷
places, sampled every 100 ms), spill, prefix hits against the best possible (one cache that never
forgets over the requests the pool served), cost per 1,000 requests and errors; and per phase where the
pool's mean first token went (replica queue, prefill, the rest). The gateway's loop-lag shedding is off
(`limits.max_loop_lag_ms: 0`) in every mode. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from loadgen import percentile  # noqa: E402
from pool_report import HEADER, Outcome, Row, Split, tables, write_docs  # noqa: E402
from procs import Proc  # noqa: E402

from gateway.sim.gpu import GpuConfig, PrefixCache, capacity_per_s, prefix_chunks, prompt_words  # noqa: E402
from gateway.sim.workload import AgentWorkload, Shape  # noqa: E402

SIMS_CORE, GATEWAY_CORE = "1", "0"
MODES = ("least in-flight", "previous picker", "pool picker", "pool picker without objective")
ALL_MODES = (*MODES, "weighted targets")
LOADS = (1 / 3, 1.0, 2.0)
SPEEDS = (0.25, 1.0, 1.0)
SHAPE = Shape()
REPLY_TOKENS = SHAPE.reply_tokens
REPLICA = GpuConfig(max_batch=4, server="vllm", prefill_ms_per_ktok=20.0, decode_ms_per_token=16.0,
                    slowdown=0.0, kv_tokens=200_000, prefix_cache_entries=500, chunk_tokens=64)
# The gateway counts 4 bytes a token; the sim's words ("s12t3w40") are about 9 bytes of JSON each.
CACHE_TOKENS = REPLICA.prefix_cache_entries * REPLICA.chunk_tokens * 9 // 4
# The admission's loop-lag shedding is off: on a shared machine the gateway's loop runs late for reasons
# of its neighbours', and this measures the pool, not the admission.
LIMITS = "limits: {max_loop_lag_ms: 0}\n"
LOCAL_PRICE = "{gpu_hour_usd: 2.0, tokens_per_second: 5000}"
CLOUD_PRICE = "{input_usd_per_mtok: 2.5, output_usd_per_mtok: 10.0, cached_input_usd_per_mtok: 1.25}"


# --- the simulators' process -------------------------------------------------------------------

async def serve_sims(ports: list[int], cloud_port: int) -> None:

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

class Workload(AgentWorkload):
    """Seeded: every mode meets the same requests in the same order."""

    def __init__(self, seed: int = 7) -> None:
        super().__init__(SHAPE, seed=seed, model="chat")


def best_hits(cache: PrefixCache, body: dict[str, Any]) -> tuple[int, int]:
    """(tokens found, tokens queried) for one request in a single cache that never forgets."""
    words = prompt_words(body["messages"], body.get("tools"))
    chunks = prefix_chunks(words, REPLICA.chunk_tokens)
    hit = cache.leading_hits(chunks) * REPLICA.chunk_tokens
    cache.store(chunks)
    return hit, len(words)


def pool_capacity(hit_rate: float, prompt_tokens: float) -> float:
    """Requests per second the replicas complete with full batches (see the module's docstring)."""
    cached = int(hit_rate * prompt_tokens)
    return sum(capacity_per_s(GpuConfig(**{**REPLICA.__dict__, "speed": s}), int(prompt_tokens), cached,
                              REPLY_TOKENS) for s in SPEEDS)


# --- one phase of load ---------------------------------------------------------------------------

async def one(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Outcome:
    started = time.perf_counter()
    first: float | None = None
    try:
        async with session.post(url, json=body) as resp:
            provider = resp.headers.get("x-recloser-provider", "")
            ended = False
            async for line in resp.content:
                if first is None and ((b'"content":"' in line and b'"content":""' not in line)
                                      or b'"tool_calls":' in line):
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


@dataclass(frozen=True, slots=True)
class Counters:
    """The replicas' counters summed: prefix-cache tokens hit and queried, seconds queued, requests started,
    and prefill seconds (each replica's uncached prompt tokens at its own speed)."""

    hits: int
    queried: int
    queue_s: float
    started: int
    prefill_s: float
    queued: int

    def since(self, before: Counters) -> tuple[float, Split | None]:
        asked, started = self.queried - before.queried, self.started - before.started
        rate = (self.hits - before.hits) / asked if asked else float("nan")
        split = Split((self.queue_s - before.queue_s) / started, (self.prefill_s - before.prefill_s) / started,
                      0.0, (self.queued - before.queued) / started) if started else None
        return rate, split


async def sim_stats(session: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    async with session.get(f"http://127.0.0.1:{port}/_sim/stats") as resp:
        gpu: dict[str, Any] = (await resp.json())["gpu"]
    return gpu


async def sim_counters(session: aiohttp.ClientSession, ports: list[int]) -> Counters:
    hits = queried = started = queued = 0
    queue_s = prefill_s = 0.0
    for port, speed in zip(ports, SPEEDS, strict=True):
        gpu = await sim_stats(session, port)
        hits, queried = hits + gpu["prefix_hit_tokens"], queried + gpu["prefix_query_tokens"]
        queue_s, started, queued = queue_s + gpu["queue_seconds"], started + gpu["started"], queued + gpu["queued"]
        uncached = gpu["prompt_tokens"] - gpu["prefix_hit_tokens"]
        prefill_s += uncached / 1000 * REPLICA.prefill_ms_per_ktok / 1000 / speed
    return Counters(hits, queried, queue_s, started, prefill_s, queued)


async def places_in_use(session: aiohttp.ClientSession, ports: list[int], until: asyncio.Future[Any]) -> float:
    """The share of the replicas' places running a request, sampled every 100 ms until `until` is done."""
    samples: list[float] = []
    while not until.done():
        running = [(await sim_stats(session, port))["running"] for port in ports]
        samples.append(sum(running) / (REPLICA.max_batch * len(ports)))
        await asyncio.sleep(0.1)
    return sum(samples) / len(samples) if samples else float("nan")


async def gateway_cost(session: aiohttp.ClientSession, port: int) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("recloser_cost_usd_total"))


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
        return (f"version: 1\n{LIMITS}providers:\n{providers}{cloud}routes:\n"
                f"  chat: {{targets: [{targets}, {{provider: cloud, model: gpt-4o, priority: 1}}]}}\n")
    load = {"least in-flight": "{affinity: none}",
            "previous picker": "{scrape_s: 0.25, affinity: prefix, spill: {queue: 2}}",
            "pool picker": f"{{scrape_s: 0.25, affinity: prefix, slots: {REPLICA.max_batch}, "
                           f"cache_tokens: {CACHE_TOKENS}, spill: {{margin_s: 0.1}}}}",
            "pool picker without objective": f"{{scrape_s: 0.25, affinity: prefix, slots: {REPLICA.max_batch}, "
                                             f"cache_tokens: {CACHE_TOKENS}, spill: {{margin_s: 0.1, ttft_factor: null}}}}",
            }[mode]
    server = "openai" if mode == "least in-flight" else "vllm"
    return (f"version: 1\n{LIMITS}providers:\n  local: {{kind: openai, endpoints: [{urls}], server: {server}, "
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
             client_timeout_s: float, gateway_root: Path = ROOT) -> tuple[list[Row], tuple[float, float]]:
    *ports, cloud_port, gw_port = free_ports(len(SPEEDS) + 2)
    sims = Proc("sims", [sys.executable, str(Path(__file__)), "--serve-sims", ",".join(map(str, ports)),
                         str(cloud_port)], SIMS_CORE, env={"PYTHONPATH": str(ROOT)}, log=work_dir / "sims.log")
    path = work_dir / f"{mode.replace(' ', '-')}.yaml"
    path.write_text(policy(mode, ports, cloud_port))
    gateway = Proc("recloser", [sys.executable, "-m", "gateway", "serve", "--policy", str(path), "--port",
                                str(gw_port)], GATEWAY_CORE, env={"PYTHONPATH": str(gateway_root)},
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
            best_hits(best, body)
        ttfts = [o.ttft_s for o in idle if o.status == 200 and o.ttft_s is not None and o.provider != "cloud"]
        unloaded = (percentile(ttfts, 50), percentile(ttfts, 99))
        for factor in LOADS:
            sent = []
            before = await sim_counters(session, ports)
            cost0 = await gateway_cost(session, gw_port)
            phase = asyncio.ensure_future(open_loop(session, url, work, factor * capacity, seconds, sent))
            busy = await places_in_use(session, ports, phase)
            outcomes = await phase
            hit_rate, split = (await sim_counters(session, ports)).since(before)
            cost1 = await gateway_cost(session, gw_port)
            found = asked = 0
            for body, o in zip(sent, outcomes, strict=True):
                if o.status == 200 and o.provider != "cloud":
                    h, q = best_hits(best, body)
                    found, asked = found + h, asked + q
            rows.append(Row(mode, f"{factor:.2g}×", factor * capacity, outcomes, hit_rate,
                            found / asked if asked else float("nan"), cost1 - cost0, capacity,
                            None if split is None else replace(split, busy=busy)))
            print(" | ".join(rows[-1].cells()), flush=True)
            print("  " + rows[-1].split_line(), flush=True)
    return rows, unloaded


def estimate() -> tuple[float, float, float]:
    """(capacity, best hit rate, mean prompt tokens) of the traffic, from the model and a dry run of it."""
    work, cache = Workload(), PrefixCache(entries=10**9)
    found = asked = 0
    for _ in range(2000):
        h, q = best_hits(cache, work.next())
        found, asked = found + h, asked + q
    rate, mean_prompt = found / asked, asked / 2000
    return pool_capacity(rate, mean_prompt), rate, mean_prompt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2.5 s phases: a smoke run")
    p.add_argument("--write-docs", action="store_true", help="write the table into docs/performance.md")
    p.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join(ALL_MODES)}")
    p.add_argument("--previous-root", type=Path, default=None,
                   help="a checkout of the previous pass, whose gateway plays 'previous picker' (skipped without)")
    p.add_argument("--seconds", type=float, default=6.0, help="each load's phase (default 6)")
    p.add_argument("--unloaded-seconds", type=float, default=4.0,
                   help="the warm-up, then one request at a time for the unloaded TTFT, each this long (default 4)")
    p.add_argument("--client-timeout", type=float, default=15.0,
                   help="a client gives up after this long (an error); bounds an overloaded phase's drain")
    p.add_argument("--logs", type=Path, default=None, help="keep the gateways' and sims' logs in this folder")
    p.add_argument("--serve-sims", default=None, help=argparse.SUPPRESS)
    p.add_argument("cloud_port", nargs="?", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_sims is not None:
        asyncio.run(serve_sims([int(x) for x in args.serve_sims.split(",")], args.cloud_port))
        return
    seconds, unloaded_s = (2.5, 1.0) if args.quick else (args.seconds, args.unloaded_seconds)
    load = "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"before the run: {load}", flush=True)
    capacity, best_rate, mean_prompt = estimate()
    print(f"capacity ≈ {capacity:.1f} requests/s (mean prompt {mean_prompt:.0f} tokens, best prefix hit rate "
          f"{best_rate:.0%})", flush=True)
    print(" | ".join(HEADER), flush=True)
    rows: list[Row] = []
    unloaded: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pool-bench-") as tmp:
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            tmp = str(args.logs)
        for mode in args.modes.split(","):
            if mode not in ALL_MODES:
                raise SystemExit(f"unknown mode {mode!r}: give some of {', '.join(ALL_MODES)}")
            if mode == "previous picker" and args.previous_root is None:
                print("previous picker: skipped (give --previous-root)", flush=True)
                continue
            root = args.previous_root.resolve() if mode == "previous picker" else ROOT
            mode_rows, unloaded[mode] = run_mode(mode, Path(tmp), seconds, unloaded_s, capacity,
                                                 args.client_timeout, root)
            rows += mode_rows
    table, idle = tables(rows, unloaded)
    print("\n" + table + "\n\n" + idle + "\n\n" + "\n".join(r.split_line() for r in rows))
    if args.write_docs:
        write_docs(ROOT / "docs" / "performance.md", table, idle, capacity, mean_prompt, best_rate, load)


if __name__ == "__main__":
    main()
