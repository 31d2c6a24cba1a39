"""What sharing state through Redis costs: latency added per request, and two workers' throughput.

    python tests/perf/shared_state.py [--seconds 8] [--rate 100] [--rounds 3]

A fast fake upstream, a private redis-server and the load generator share core 1; the gateway gets
core 0 (`taskset`). Every run has the same rate limit (rpm and tpm) and budget for the caller, so
each request does the same work; "local" keeps them in the process, "redis" shares them (one
limiter round trip per request, outcomes and spend batched every `sync_ms`). Prints numbers; never
asserts one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench import CHAT, GATEWAY_CORE, LOAD_CORE, bench_policy, free_port, recloser  # noqa: E402
from loadgen import Pool, build_request, closed_loop, open_loop, percentile  # noqa: E402
from procs import Proc  # noqa: E402

from tests import services  # noqa: E402

# Shedding on event-loop lag is off: on a shared machine it would measure the neighbours, not Redis.
REDIS_CORES = os.environ.get("BENCH_REDIS_CORES", LOAD_CORE)
LIMITS = """
limits: {max_loop_lag_ms: 0}
rate_limits:
  - {name: bench-team, team: default, rpm: 1000000000, tpm: 1000000000}
budgets:
  - {name: bench-daily, team: default, period: day, limit_usd: 1000000, action: reject}
"""


def policy(upstream_port: int, redis_url: str | None, rate_limits: bool = True) -> str:
    state = f'state: {{redis_url: "{redis_url}", timeout_ms: 50}}\n' if redis_url else ""
    limits = LIMITS if rate_limits else LIMITS.split("rate_limits:")[0] + "budgets:" + LIMITS.split("budgets:")[1]
    return bench_policy(upstream_port) + limits + state


async def latency(port: int, rate: float, seconds: float) -> tuple[float, float, int]:
    pool = Pool("127.0.0.1", port)
    request = build_request("127.0.0.1", port, "/v1/chat/completions", CHAT)
    await closed_loop(pool, request, 8, 1.0)   # warm up connections and caches
    results = await open_loop(pool, request, rate, seconds)
    pool.close()
    ok = [r.latency_s for r in results if r.status == 200]
    return percentile(ok, 50), percentile(ok, 99), len(results) - len(ok)


async def throughput(port: int, seconds: float) -> tuple[float, dict[int, int]]:
    pool = Pool("127.0.0.1", port)
    request = build_request("127.0.0.1", port, "/v1/chat/completions", CHAT)
    await closed_loop(pool, request, 8, 1.0)
    started = time.perf_counter()
    results = await closed_loop(pool, request, 64, seconds)
    elapsed = time.perf_counter() - started
    pool.close()
    ok = sum(1 for r in results if r.status == 200)
    return ok / elapsed, dict(Counter(r.status for r in results if r.status != 200))


async def round_trips(redis_url: str, n: int, deployments: int) -> dict[str, tuple[float, float]]:
    """Alone, against Redis: one limiter check-and-add (what each request waits for), and one exchange
    of the kind every replica makes each `sync_ms` for `deployments` deployments (30 s windows)."""
    from gateway.state.base import Ask, Draw, Outbox
    from gateway.state.redis import RedisState

    state = RedisState(redis_url, timeout_s=0.5, prefix="bench")
    await state.start()
    keys = [f"provider-{i}/model" for i in range(deployments)]
    ask = Ask(counts={f"out:{k}:{o}": 30 for k in keys for o in ("ok", "failed")},
              notes=[f"{n}:{k}" for k in keys for n in ("ejected", "recovered")], totals=["budget:bench:20261130"])
    took: dict[str, list[float]] = {"limiter": [], "exchange": []}
    for _ in range(n):
        started = time.perf_counter()
        await state.take([Draw("rl:bench:requests", 1_000_000_000, 1, 60)], time.time())
        took["limiter"].append(time.perf_counter() - started)
    for _ in range(n // 10):
        out = Outbox(horizon_s=61)
        for k in keys:
            out.count(f"out:{k}:ok", int(time.time()), 25)
        started = time.perf_counter()
        await state.exchange(out, ask, time.time())
        took["exchange"].append(time.perf_counter() - started)
    await state.close()
    return {name: (percentile(t, 50), percentile(t, 99)) for name, t in took.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recloser-shared-bench-"))
    upstream_port, redis_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    upstream = Proc("upstream", [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(upstream_port)],
                    LOAD_CORE, log=work / "upstream.log").start()
    redis = Proc("redis", [str(services.find("redis-server")), "--bind", "127.0.0.1", "--port", str(redis_port),
                           "--save", "", "--appendonly", "no"], REDIS_CORES, log=work / "redis.log").start()
    try:
        time.sleep(0.5)
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        # "redis, no rpm": the same budget, breakers shared, no rate limit: Redis stays off the request path.
        variants = (("local", None, True), ("redis", redis_url, True), ("redis, no rpm", redis_url, False))
        rows: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _, _ in variants}
        for _ in range(args.rounds):    # interleaved, so all see the same neighbours on average
            for name, url, rate_limits in variants:
                path = work / f"{name.replace(', ', '-').replace(' ', '-')}.yaml"
                path.write_text(policy(upstream_port, url, rate_limits))
                port = free_port()
                proc = recloser(path, port, work)
                proc.start()
                try:
                    proc.wait_ready(f"http://127.0.0.1:{port}/readyz")
                    rows[name].append(asyncio.run(latency(port, args.rate, args.seconds)))
                finally:
                    proc.stop()
        median = {name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                         sum(r[2] for r in runs)) for name, runs in rows.items()}
        for name, (p50, p99, errors) in median.items():
            print(f"{name:13s} {args.rate:.0f} req/s open loop, median of {args.rounds} runs: p50 {1000 * p50:.2f} ms, "
                  f"p99 {1000 * p99:.2f} ms, errors {errors}")
        for name in ("redis", "redis, no rpm"):
            print(f"added by Redis ({name}): p50 {1000 * (median[name][0] - median['local'][0]):+.2f} ms, "
                  f"p99 {1000 * (median[name][1] - median['local'][1]):+.2f} ms")
        trips = asyncio.run(round_trips(redis_url, 2000, 20))
        print(f"one limiter round trip to Redis: p50 {1000 * trips['limiter'][0]:.2f} ms, "
              f"p99 {1000 * trips['limiter'][1]:.2f} ms")
        print(f"one exchange for 20 deployments (every sync_ms, off the request path): "
              f"p50 {1000 * trips['exchange'][0]:.2f} ms, p99 {1000 * trips['exchange'][1]:.2f} ms")

        for name, url in (("local", None), ("redis", redis_url)):
            path = work / f"{name}.yaml"   # with the rate limit: every request goes through Redis
            port = free_port()
            proc = recloser(path, port, work, workers=2, cores="0,1")
            proc.start()
            try:
                proc.wait_ready(f"http://127.0.0.1:{port}/readyz")
                time.sleep(1.0)   # both workers up
                rps, errors = asyncio.run(throughput(port, args.seconds))
            finally:
                proc.stop()
            print(f"two workers ({name:5s}), 64 connections closed loop: {rps:.0f} req/s, errors by status {errors or 'none'}")
        shared = subprocess.run(["redis-cli", "-p", str(redis_port), "--scan", "--pattern", "recloser:c:rl:*"],
                                capture_output=True, text=True).stdout.split()
        print(f"shared rate-limit counters in Redis after the runs: {len(shared)} per-second keys")
    finally:
        redis.stop()
        upstream.stop()
        print(f"logs in {work}")


if __name__ == "__main__":
    main()
