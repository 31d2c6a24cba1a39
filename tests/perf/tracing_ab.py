"""Traces off against traces on, alternating, on a machine others share.

    python tests/perf/tracing_ab.py [--rounds N] [--sampler-off] [--export-pinned]

Starts the gateway (as bench.py does: its own core, the fast path to the fake upstream) with traces
off, then on (spans to the fake upstream, standing in for a collector), and again, `--rounds` times,
so a change in the machine's load falls on both alike. Each start measures: CPU per request and
requests/s in a closed loop of 16 clients for 4 s, then p50 / p99 latency in an open loop at 100
requests/s for 8 s. CPU counts the gateway's process and its export process (traces on), and the
gateway's alone. The export process runs on any core, as bench.py lets it (`--export-pinned`: on the
gateway's core, where `taskset` would leave it). `--sampler-off` adds traces on with the `always_off` sampler (hooks run, no span
is made). Prints one line per start; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
from loadgen import Pool, build_request, closed_loop, open_loop, percentile  # noqa: E402
from procs import CLOCK_TICKS, Proc, cpu_seconds  # noqa: E402


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process alone (its export process apart)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def measure(policy: Path, work: Path, env: dict[str, str] | None, pinned: bool) -> str:
    port = bench.free_port()
    proc = bench.recloser(policy, port, work, env=env)
    proc.start()
    try:
        proc.wait_ready(f"http://127.0.0.1:{port}/readyz")
        if not pinned:
            bench.unpin_children(proc.pid)

        async def go() -> str:
            pool = Pool("127.0.0.1", port)
            chat = build_request("127.0.0.1", port, "/v1/chat/completions", bench.CHAT)
            await closed_loop(pool, chat, 8, 1.0)
            cpu, own, started = cpu_seconds(proc.pid), own_cpu_seconds(proc.pid), time.perf_counter()
            done = sum(1 for r in await closed_loop(pool, chat, 16, 4.0) if r.status == 200)
            per_request = 1000 * (cpu_seconds(proc.pid) - cpu) / max(1, done)
            own_per_request = 1000 * (own_cpu_seconds(proc.pid) - own) / max(1, done)
            rate = done / (time.perf_counter() - started)
            ok = [r.latency_s for r in await open_loop(pool, chat, 100, 8.0) if r.status == 200]
            pool.close()
            return (f"{per_request:.3f} ms CPU per request ({own_per_request:.3f} in the gateway's process), "
                    f"{rate:,.0f} req/s; at 100 req/s p50 "
                    f"{1000 * percentile(ok, 50):.2f} ms, p99 {1000 * percentile(ok, 99):.2f} ms")

        return asyncio.run(go())
    finally:
        proc.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--sampler-off", action="store_true")
    p.add_argument("--export-pinned", action="store_true")
    args = p.parse_args()
    os.sched_setaffinity(0, {int(bench.LOAD_CORE)})
    work = Path(tempfile.mkdtemp(prefix="recloser-tracing-ab-"))
    up = bench.free_port()
    upstream = Proc("fake upstream", [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(up)],
                    bench.LOAD_CORE, log=work / "upstream.log").start()
    policy = work / "bench.yaml"
    policy.write_text(bench.bench_policy(up))
    traced = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{up}/v1/traces"}
    variants: list[tuple[str, dict[str, str] | None]] = [("traces off", None), ("traces on", traced)]
    if args.sampler_off:
        variants.append(("traces on, sampler always_off", {**traced, "OTEL_TRACES_SAMPLER": "always_off"}))
    try:
        time.sleep(0.3)
        for round_ in range(1, args.rounds + 1):
            for label, env in variants:
                print(f"round {round_}, {label}: {measure(policy, work, env, args.export_pinned)}", flush=True)
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
